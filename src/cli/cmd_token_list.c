/* cmd_token_list.c - `lxcm token list`: the join tokens not used yet. */
#include "cli/cli.h"

#include "cli/output.h"
#include "cli/util.h"
#include "common/timefmt.h"

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

static int token_list_table(json_t *list)
{
	static const char *const headers[] = {"NAME", "DESCRIPTION", "EXPIRES", "CREATED"};
	struct output_table t;
	char expires[48], created[32];
	const char *row[4];
	int64_t now = time_now();
	json_t *tok;
	size_t i;
	int rc = 0;

	output_table_init(&t, 4, headers);
	json_array_foreach(list, i, tok)
	{
		token_list_expiry(util_json_time(tok, "expiry"), now, expires, sizeof(expires));
		util_reltime(util_json_time(tok, "created_at"), now, created, sizeof(created));
		row[0] = util_json_str(tok, "cluster_name");
		row[1] = util_json_str(tok, "description");
		row[2] = expires;
		row[3] = created;
		if (output_table_add(&t, row) != 0) {
			rc = CLI_EXIT_FAIL;
			break;
		}
	}
	if (rc == 0)
		output_table_print(&t, stdout);
	output_table_free(&t);
	return rc;
}

static int token_list_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
	json_t *md;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first);
	if (rc >= 0)
		return rc;
	rc = client_request(ctx, "GET", "/1.0/remote-cluster-join-token", NULL, &md);
	if (rc != 0)
		return rc;
	if (!json_is_array(md)) {
		fputs("Error: the server did not send a list of tokens\n", stderr);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? 0 : CLI_EXIT_FAIL;
	} else {
		rc = token_list_table(md);
	}
	json_decref(md);
	return rc;
}

const struct cli_command cmd_token_list = {
    .name = "token list",
    .args = "",
    .summary = "List the join tokens that have not been used",
    .help = "Shows each pending token's cluster name, description, expiry and age.\n"
	    "The tokens themselves are secret and never shown again.\n",
    .fn = token_list_run,
};
