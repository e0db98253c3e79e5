/*
 * cmdrun.h - the shapes several commands share: one request to the
 * management API, then either nothing, the reply as JSON or YAML (--format)
 * or the reply for people; a list of things in any --format; a DELETE of a
 * named thing.
 *
 * A cmd_*.c keeps what is its own (its table entry, its options, its
 * columns, how it prints a reply) and hands the rest to these functions.
 * They print every error themselves and return an exit code (cli.h).
 */
#ifndef LXCM_CLI_CMDRUN_H
#define LXCM_CLI_CMDRUN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/output.h"

/*
 * One request and what to do with its reply. path, or prefix and name:
 * the request goes to path, else to prefix/NAME with NAME percent-encoded
 * (client_path says why a name cannot be used). body, if not NULL, is sent
 * as JSON; the caller keeps its reference.
 *
 * With print NULL the reply is not looked at and nothing is printed, even
 * with --json (revoke, remove, set). Else check (if not NULL) tells whether
 * the reply is what was asked for; when it is not, "Error: <bad>" is
 * printed. A good reply is printed as JSON or YAML with --format json or
 * yaml (--json), else by print, which is given arg and returns the exit
 * code.
 */
struct cmdrun_req {
	const char *method;
	const char *path;
	const char *prefix;
	const char *name;
	json_t *body;
	int (*check)(json_t *md);
	const char *bad;
	int (*print)(json_t *md, const void *arg);
	const void *arg;
};
int cmdrun_request(struct cli_ctx *ctx, const struct cmdrun_req *r);

/*
 * Prints a reply (taking md, a reference, and dropping it): "Error: <bad>"
 * if ok is 0, md as JSON or YAML when --format asks for it, else
 * print(md, arg) (table, compact and csv change only lists). The exit code.
 */
int cmdrun_reply(const struct cli_ctx *ctx, json_t *md, int ok, const char *bad,
		 int (*print)(json_t *md, const void *arg), const void *arg);

/*
 * A list command: GET path, which must answer with an array (else
 * "Error: <bad>"), printed in the --format asked for (output_list) with
 * the columns its own option -c / --columns selects (the defaults
 * otherwise). An unknown column is a usage error before any request.
 */
struct cmdrun_list {
	const char *bad;
	struct output_columns columns;
};
int cmdrun_list(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a);

/* The options every list command has (-c, --columns), and its usage. */
extern const struct option cmdrun_list_options[];
#define CMDRUN_LIST_ARGS "[--format FORMAT] [-c COLUMNS]"

/* The part of a list command's --help that its columns make: options and columns. */
void cmdrun_list_help(const struct cli_command *cmd, FILE *out);

/*
 * The table entry of a list command: what it is called, one line, its own
 * prose (may be ""), the resource it lists and its struct cmdrun_list.
 * What every list shares (usage, options, runner) is said here once.
 */
#define CMDRUN_LIST_ENTRY(name_, summary_, help_, path_, list_)                                    \
	{                                                                                          \
		.name = (name_), .args = CMDRUN_LIST_ARGS, .summary = (summary_), .help = (help_), \
		.options = cmdrun_list_options, .fn = cmdrun_list, .path = (path_),                \
		.list = (list_)                                                                    \
	}

/*
 * A command whose one argument is NAME and which deletes path/NAME,
 * printing nothing when that worked (revoke, remove): its entry's fn, with
 * path and nargs 1. CMDRUN_DELETE_ENTRY makes such an entry.
 */
int cmdrun_delete(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a);
#define CMDRUN_DELETE_ENTRY(name_, summary_, help_, path_)                                         \
	{                                                                                          \
		.name = (name_), .args = "NAME", .summary = (summary_), .help = (help_),           \
		.nargs = 1, .fn = cmdrun_delete, .path = (path_)                                   \
	}

#endif
