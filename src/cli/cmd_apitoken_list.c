/* cmd_apitoken_list.c - `lxcm api-token list`: the names of the API tokens. */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "cli/util.h"

#define APITOKEN_LIST_COLS 4

static int apitoken_list_row(struct output_table *t, json_t *tok, int64_t now)
{
	char created[32];
	const char *row[APITOKEN_LIST_COLS];

	util_reltime(util_json_time(tok, "created_at"), now, created, sizeof(created));
	row[0] = util_json_str(tok, "name");
	row[1] = util_json_str(tok, "role"); /* "-" from a server without roles */
	row[2] = created;
	row[3] = util_json_str(tok, "audit_actor");
	return output_table_add(t, row);
}

static const struct cmdrun_list apitoken_list = {
    .bad = "the server did not send a list of tokens",
    .headers = {"NAME", "ROLE", "CREATED", "AUDIT ACTOR"},
    .row = apitoken_list_row,
};

const struct cli_command cmd_apitoken_list = {
    .name = "api-token list",
    .args = "",
    .summary = "List the API tokens by name",
    .help = "Shows each API token's name, role (admin, operator or viewer; '-' from a\n"
	    "server without roles), age and the actor its requests have in the audit log\n"
	    "(token: and the first 12 hex digits of the token's SHA-256); the secrets are\n"
	    "never shown again.\n",
    .fn = cmdrun_list,
    .path = "/1.0/auth/tokens",
    .list = &apitoken_list,
};
