/*
 * cmdrun.h - the shapes several commands share: one request to the
 * management API, then either nothing, the reply as JSON (--json) or the
 * reply for people; a list of things as a table; a DELETE of a named thing.
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
 * printed. A good reply is printed as JSON with --json, else by print,
 * which is given arg and returns the exit code.
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
 * if ok is 0, md as JSON with --json, else print(md, arg). The exit code.
 */
int cmdrun_reply(const struct cli_ctx *ctx, json_t *md, int ok, const char *bad,
		 int (*print)(json_t *md, const void *arg), const void *arg);

/*
 * A list command (its table entry's fn, with path and list set): GET path,
 * which must answer with an array (else "Error: <bad>"), printed as JSON
 * with --json or as a table with one row per element (output_list).
 */
struct cmdrun_list {
	const char *bad;
	const char *headers[OUTPUT_MAX_COLS + 1]; /* NULL after the last */
	output_row_fn row;
};
int cmdrun_list(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a);

/*
 * A command whose one argument is NAME and which deletes path/NAME,
 * printing nothing when that worked (revoke, remove): its entry's fn, with
 * path and nargs 1.
 */
int cmdrun_delete(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a);

#endif
