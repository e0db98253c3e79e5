/*
 * fuzz_config_file.c - `--config FILE` parsing (src/common/config_file.c).
 *
 * Config files are written by people, often copied from elsewhere. The first
 * input byte picks the entry point:
 *   'M'                     the rest is a file given to config_file_merge
 *                           (through a memfd) with a fixed command line,
 *                           and the merged argv is read back by getopt_long;
 *   anything else           the rest is parsed in memory (config_file_parse).
 * A file that parses must give entries that are well-formed argv elements of
 * the table, whose lines rise, which config_file_where names, and which a
 * file written back from them parses to again. A refused file has an error
 * that names the file.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config_file.h"
#include "fuzz.h"

/* The shapes of the server's and the agent's tables. */
static const struct option fuzz_opts[] = {
    {"data-dir", required_argument, NULL, 'd'},
    {"interval", required_argument, NULL, 'i'},
    {"once", no_argument, NULL, 'o'},
    {"debug", no_argument, NULL, 'D'},
    {"allow-path", required_argument, NULL, 'a'},
    {"trusted-proxy", required_argument, NULL, 't'},
    {"management-addr", required_argument, NULL, 'm'},
    {"log-level", required_argument, NULL, 'l'},
    {"config", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

#define FUZZ_PATH "fuzz.conf"

static void fuzz_check_entry(struct config_file *cf, const struct config_file_entry *e)
{
	const char *name = fuzz_opts[e->opt].name, *rest, *p;
	size_t nlen = strlen(name);
	char where[64];

	FUZZ_CHECK(e->opt < sizeof(fuzz_opts) / sizeof(fuzz_opts[0]) - 1);
	FUZZ_CHECK(strcmp(name, "config") && strcmp(name, "help") && strcmp(name, "version"));
	FUZZ_CHECK(strncmp(e->arg, "--", 2) == 0 && strncmp(e->arg + 2, name, nlen) == 0);
	rest = e->arg + 2 + nlen;
	if (fuzz_opts[e->opt].has_arg == no_argument) {
		FUZZ_CHECK(*rest == '\0');
		return;
	}
	FUZZ_CHECK(rest[0] == '=' && rest[1] != '\0');
	for (p = rest + 1; *p; p++)
		FUZZ_CHECK(*p == '\t' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
	FUZZ_CHECK(strlen(rest + 1) <= CONFIG_FILE_MAX_LINE);
	FUZZ_CHECK(snprintf(where, sizeof(where), FUZZ_PATH ":%u: ", e->line) < (int)sizeof(where));
	FUZZ_CHECK(strcmp(config_file_where(cf, rest + 1), where) == 0);
}

/*
 * Writes the entries back as a file: quoted when blanks would be trimmed,
 * and without blanks around '=', so no line grows past the original.
 */
static char *fuzz_write_back(const struct config_file *cf, size_t *len)
{
	size_t i, cap = 64;
	char *out;

	for (i = 0; i < cf->nentries; i++)
		cap += strlen(cf->entries[i].arg) + 16;
	out = malloc(cap);
	if (out == NULL)
		abort();
	*len = 0;
	for (i = 0; i < cf->nentries; i++) {
		const char *arg = cf->entries[i].arg + 2, *eq = strchr(arg, '=');
		const char *v = eq ? eq + 1 : "true";
		size_t vl = strlen(v);
		int quote = v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t';
		int n = snprintf(out + *len, cap - *len, "%.*s=%s%s%s\n",
				 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg,
				 quote ? "\"" : "", v, quote ? "\"" : "");

		FUZZ_CHECK(n > 0 && (size_t)n < cap - *len);
		*len += (size_t)n;
	}
	return out;
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	struct config_file cf, again;
	size_t i, len;
	char *text;
	int rc;

	memset(&cf, 0, sizeof(cf));
	rc = config_file_parse(&cf, FUZZ_PATH, (const char *)data, size, fuzz_opts);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_CHECK(strncmp(cf.err, FUZZ_PATH ":", strlen(FUZZ_PATH ":")) == 0);
		config_file_free(&cf);
		return;
	}
	for (i = 0; i < cf.nentries; i++) {
		fuzz_check_entry(&cf, &cf.entries[i]);
		FUZZ_CHECK(i == 0 || cf.entries[i].line > cf.entries[i - 1].line);
	}
	text = fuzz_write_back(&cf, &len);
	memset(&again, 0, sizeof(again));
	FUZZ_CHECK(config_file_parse(&again, FUZZ_PATH, text, len, fuzz_opts) == 0);
	FUZZ_CHECK(again.nentries == cf.nentries);
	for (i = 0; i < cf.nentries; i++)
		FUZZ_CHECK(strcmp(again.entries[i].arg, cf.entries[i].arg) == 0);
	free(text);
	config_file_free(&again);
	config_file_free(&cf);
}

/*
 * The file through config_file_merge, with "--interval 7" and "--config
 * PATH" on the command line: the merged argv must end with the command
 * line, hold no interval line of the file, and read back to interval 7.
 */
static void fuzz_merge(const uint8_t *data, size_t size)
{
	char path[64], interval[] = "--interval", seven[] = "7", config[] = "--config";
	char *argv[] = {"fuzz", interval, seven, config, path, NULL};
	struct config_file cf;
	const char *got = NULL;
	int fd = memfd_create("fuzz.conf", 0), rc, ch, i;

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	FUZZ_CHECK(snprintf(path, sizeof(path), "/proc/self/fd/%d", fd) < (int)sizeof(path));
	rc = config_file_merge(&cf, 5, argv, "h", fuzz_opts);
	close(fd);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_CHECK(cf.argv == NULL && strncmp(cf.err, path, strlen(path)) == 0);
		return;
	}
	FUZZ_CHECK(cf.argv[0] == argv[0] && cf.argv[cf.argc] == NULL);
	for (i = 1; i <= 4; i++)
		FUZZ_CHECK(cf.argv[cf.argc - 5 + i] == argv[i]);
	for (i = 1; i < cf.argc - 4; i++)
		FUZZ_CHECK(strncmp(cf.argv[i], "--interval=", 11) != 0);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(cf.argc, cf.argv, "h", fuzz_opts, NULL)) != -1)
		if (ch == 'i')
			got = optarg;
	FUZZ_CHECK(got == argv[2] && optind == cf.argc);
	config_file_free(&cf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] == 'M')
		fuzz_merge(data + 1, size - 1);
	else
		fuzz_parse(data + 1, size - 1);
	return 0;
}
