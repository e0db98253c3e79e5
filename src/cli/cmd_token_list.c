/* cmd_token_list.c - `lxcm token list`: the join tokens not used yet. */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "cli/util.h"

#define TOKEN_LIST_COLS 4

/* "in 23h", or "expired 2h ago" once past. */
static void token_list_expiry(int64_t t, int64_t now, char *out, size_t len)
{
	char rel[32];
	int n;

	util_reltime(t, now, rel, sizeof(rel));
	if (t <= 0 || t > now) {
		n = snprintf(out, len, "%s", rel);
	} else {
		n = snprintf(out, len, "expired %s", rel);
	}
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

static int token_list_row(struct output_table *t, json_t *tok, int64_t now)
{
	char expires[48], created[32];
	const char *row[TOKEN_LIST_COLS];

	token_list_expiry(util_json_time(tok, "expiry"), now, expires, sizeof(expires));
	util_reltime(util_json_time(tok, "created_at"), now, created, sizeof(created));
	row[0] = util_json_str(tok, "cluster_name");
	row[1] = util_json_str(tok, "description");
	row[2] = expires;
	row[3] = created;
	return output_table_add(t, row);
}

static const struct cmdrun_list token_list = {
    .bad = "the server did not send a list of tokens",
    .headers = {"NAME", "DESCRIPTION", "EXPIRES", "CREATED"},
    .row = token_list_row,
};

const struct cli_command cmd_token_list = {
    .name = "token list",
    .args = "",
    .summary = "List the join tokens that have not been used",
    .help = "Shows each pending token's cluster name, description, expiry and age.\n"
	    "The tokens themselves are secret and never shown again.\n",
    .fn = cmdrun_list,
    .path = "/1.0/remote-cluster-join-token",
    .list = &token_list,
};
