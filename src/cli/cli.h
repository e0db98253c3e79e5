/*
 * cli.h - the lxcm command-line client: shared context, the command table
 * entry every cmd_*.c exports, option parsing and the API request helper.
 *
 * One command is one file exporting one struct cli_command (tmux cmd-*.c).
 * main.c lists the entries; a command's name is one or two words ("version",
 * "token create"); the first word of a two-word name is a group ("token")
 * that has its own help.
 *
 * Exit codes: 0 success, 1 failure (API or connection error, already printed
 * on stderr), 2 usage error (usage printed on stderr).
 */
#ifndef LXCM_CLI_H
#define LXCM_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/output.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_DEFAULT_SERVER "https://127.0.0.1:8443"

/* Largest API response the CLI buffers (a list of many clusters). */
#define CLI_MAX_RESPONSE (32 * 1024 * 1024)

/*
 * What the user asked for, from global options, per-command options and the
 * environment, plus what client.c resolves from it on the first request.
 * Strings point into argv or the environment unless noted.
 */
struct cli_ctx {
	const char *prog;	   /* "lxcm" */
	const char *server;	   /* --server, or NULL for LXCM_SERVER / default */
	const char *token_file;	   /* --token-file, or NULL */
	const char *fingerprint;   /* --server-fingerprint, or NULL */
	enum output_format format; /* --format, or --json (its alias) */

	/* Owned by client.c, released by client_ctx_free. */
	struct client_state *client;
};

/*
 * What main.c parsed from a command's arguments before running it: the
 * positional ones (exactly the command's nargs) and the value of each of
 * its own options.
 */
#define CLI_MAX_OPTS 8
struct cli_args {
	const char *name; /* "lxcm token create", for messages */
	char **pos;	  /* nargs positional arguments */
	/*
	 * opt[i] belongs to the command's options[i]: its argument (the last
	 * one when given twice), "" for a flag that was given, NULL when
	 * absent.
	 */
	const char *opt[CLI_MAX_OPTS];
};

struct cmdrun_list;

struct cli_command {
	const char *name;    /* "token create" */
	const char *args;    /* "NAME [--description D] [--expiry T]" */
	const char *summary; /* one line, for command lists */
	const char *help;    /* paragraphs and the command's own options */
	int nargs;	     /* how many positional arguments, exactly */
	/* The command's own long options, zero-terminated, or NULL. */
	const struct option *options;
	/* Runs after the arguments were parsed. Returns an exit code. */
	int (*fn)(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a);
	/* Only for the shared runners of cmdrun.h: what the command acts on. */
	const char *path;
	const struct cmdrun_list *list;
};

/* The table, in main.c, terminated by an entry with a NULL name. */
extern const struct cli_command *const cli_commands[];

/* Help text. Usage errors go to stderr, --help to stdout. */
void cli_usage(const struct cli_command *cmd, FILE *out);
void cli_help(const struct cli_command *cmd);

/*
 * Options of commands. A command's options[i] has val CLI_OPT_OWN + i,
 * i < CLI_MAX_OPTS, or a letter when it also has that one-letter form
 * ('c' for -c, --columns). main.c adds the common ones (--help, --format,
 * --json, --server, --token-file, --server-fingerprint), so they may also
 * follow the command name, and checks the number of positional arguments.
 */
#define CLI_OPT_OWN 1000
/* Applies one global option; 0, or -1 when val is not one or (said on stderr) arg is bad. */
int cli_global_option(struct cli_ctx *ctx, int val, const char *arg);
#define CLI_OPT_SERVER 900
#define CLI_OPT_TOKEN_FILE 901
#define CLI_OPT_FINGERPRINT 902
#define CLI_OPT_JSON 903
#define CLI_OPT_FORMAT 904
/* clang-format off */
#define CLI_GLOBAL_LONGOPTS                                                    \
	{"server", required_argument, NULL, CLI_OPT_SERVER},                   \
	{"token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE},           \
	{"server-fingerprint", required_argument, NULL, CLI_OPT_FINGERPRINT},  \
	{"format", required_argument, NULL, CLI_OPT_FORMAT},                   \
	{"json", no_argument, NULL, CLI_OPT_JSON},                             \
	{"help", no_argument, NULL, 'h'}
/* clang-format on */

/*
 * client.c: one request to the management API.
 *
 * Resolves the server, the API token and the certificate pin on first use
 * (trust on first use through known_servers, see client.c). body, if not
 * NULL, is sent as JSON (the caller keeps its reference). On success returns
 * 0 and, if metadata is not NULL, stores a new reference to the envelope's
 * metadata (JSON null when absent). On failure prints one "Error: ..." line
 * (or a short block) on stderr and returns the exit code: CLI_EXIT_USAGE for
 * a malformed server URL or fingerprint, CLI_EXIT_FAIL for the rest.
 */
int client_request(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		   json_t **metadata);
/* Wipes the token and frees what client.c holds. NULL-safe. */
void client_ctx_free(struct cli_ctx *ctx);

/*
 * For commands that talk to the server on their own event loop (lxcm
 * proxy). client_resolve does what client_request does first, once per
 * process: server URL, API token, certificate pin with trust on first use
 * (which may make the probe request). 0, or the exit code after printing
 * why. The functions below need it to have succeeded.
 */
int client_resolve(struct cli_ctx *ctx);
/* Options for a connection pinned to the server's certificate; -EINVAL before resolving. */
struct http_client_opts;
int client_conn_opts(const struct cli_ctx *ctx, struct http_client_opts *o);
/* "https://host:port" for messages, and "host:port"; NULL before resolving. */
const char *client_server_url(const struct cli_ctx *ctx);
const char *client_server_key(const struct cli_ctx *ctx);
/*
 * "Bearer <token>" for an Authorization header, malloc'd: the caller wipes
 * (secret_wipe) and frees it. *out is NULL when no token was given.
 * 0 or -ENOMEM.
 */
int client_bearer(const struct cli_ctx *ctx, char **out);
/* What a connection error code (conn/http_client) means, for people. */
void client_conn_error_text(const char *url, int err, char *out, size_t len);

/*
 * Builds "prefix/<NAME percent-encoded>" into out. On a name that cannot
 * make a path segment (empty, "." or "..", too long) prints why and returns
 * CLI_EXIT_USAGE; else 0.
 */
int client_path(char *out, size_t len, const char *prefix, const char *name);

#endif
