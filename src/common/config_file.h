/*
 * config_file.h - command-line flags read from a file: `--config FILE` of
 * lxcm-server and `lxcm-agent run` (format in docs/configuration.md).
 *
 * The module knows no flag by itself. It works from the program's own
 * getopt_long table: a line `key = value` becomes the argv element
 * "--key=value" (a boolean flag: `key = true` becomes "--key"), and the
 * program parses the merged argv with its usual getopt loop, so every flag's
 * value goes through that flag's own checks and a new flag needs no code
 * here. The file's flags come first, so the command line overrides them; a
 * flag given on the command line drops every line of that key from the
 * file, so for repeatable flags too the command line replaces the file.
 *
 * Errors name the file and the line: unknown keys, malformed lines, a line
 * over CONFIG_FILE_MAX_LINE, NUL and control bytes, a file over
 * CONFIG_FILE_MAX_BYTES. A bad value is found later by the program's
 * parser, which asks config_file_where() for the "FILE:LINE: " to print.
 */
#ifndef LXCM_CONFIG_FILE_H
#define LXCM_CONFIG_FILE_H

#include <getopt.h>
#include <stddef.h>

/* Caps on what a config file can make us hold: the file and one line. */
#define CONFIG_FILE_MAX_BYTES (256 * 1024)
#define CONFIG_FILE_MAX_LINE 4096

/* The option a table must have for config_file_merge to look for. */
#define CONFIG_FILE_OPTION "config"

struct config_file_entry {
	char *arg;     /* "--key=value" or "--key", an argv element */
	unsigned line; /* 1-based line in the file */
	size_t opt;    /* index of the key in the option table */
};

struct config_file {
	const char *path; /* the --config argument (points into argv) */
	struct config_file_entry *entries;
	size_t nentries;
	/* The merged argv (NULL-terminated): argv itself when there is no --config. */
	char **argv;
	int argc;
	char err[512];	 /* why the last call failed: "FILE:LINE: reason" */
	char where[320]; /* config_file_where's answer */
};

/*
 * Looks for --config FILE among argv's options (as getopt_long would read
 * them with optstring and opts; opts must have a required_argument entry
 * named CONFIG_FILE_OPTION, which the program's loop then ignores). Without
 * it, cf->argv/argc are argv/argc. With it, the file is read and cf->argv is
 * argv[0], the file's flags not given on the command line, then argv[1..].
 * getopt is left ready to start over (optind = 0). The strings of cf->argv
 * live until config_file_free(cf): keep cf as long as optarg pointers into
 * it are used. Returns 0, -EINVAL (cf->err says why; cf->argv is NULL) or
 * -ENOMEM.
 */
int config_file_merge(struct config_file *cf, int argc, char **argv, const char *optstring,
		      const struct option *opts);

/*
 * Reads path into cf->entries (at most CONFIG_FILE_MAX_BYTES). 0, or
 * -errno with cf->err set: the read error, -E2BIG, -EINVAL for bad content.
 */
int config_file_load(struct config_file *cf, const char *path, const struct option *opts);

/* The same on len bytes in memory; path only names them in messages. */
int config_file_parse(struct config_file *cf, const char *path, const char *data, size_t len,
		      const struct option *opts);

/*
 * "FILE:LINE: " when arg (an optarg from cf->argv) comes from the file,
 * else "". For error messages about a flag's value.
 */
const char *config_file_where(struct config_file *cf, const char *arg);

/* Frees the entries and the merged argv; cf is left empty. NULL-safe. */
void config_file_free(struct config_file *cf);

#endif
