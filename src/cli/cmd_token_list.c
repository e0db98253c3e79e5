/* cmd_token_list.c - `lxcm token list`: the join tokens not used yet. */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "cli/util.h"

/* "in 23h", or "expired 2h ago" once past. */
static const char *token_list_expiry(json_t *tok, const char *key, int64_t now, char *out,
				     size_t len)
{
	int64_t t = util_json_time(tok, key);
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
	return out;
}

/* clang-format off */
static const struct output_column token_list_columns[] = {
    {'n', "name", "NAME", "the cluster the token enrolls", "cluster_name", NULL},
    {'d', "description", "DESCRIPTION", "the note given with the token", "description", NULL},
    {'e', "expires", "EXPIRES", "when the token stops working", "expiry", token_list_expiry},
    {'c', "created", "CREATED", "the token's age", "created_at", output_cell_age},
    {0, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */

static const struct cmdrun_list token_list = {
    .bad = "the server did not send a list of tokens",
    .columns = {token_list_columns, "ndec"},
};

const struct cli_command cmd_token_list =
    CMDRUN_LIST_ENTRY("token list", "List the join tokens that have not been used",
		      "The tokens themselves are secret and never shown again.\n",
		      "/1.0/remote-cluster-join-token", &token_list);
