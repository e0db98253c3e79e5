/* cmd_apitoken_list.c - `lxcm api-token list`: the names of the API tokens. */
#include "cli/cli.h"

#include "cli/output.h"
#include "cli/util.h"
#include "common/timefmt.h"

static int apitoken_list_table(json_t *list)
{
	static const char *const headers[] = {"NAME", "CREATED", "AUDIT ACTOR"};
	struct output_table t;
	char created[32];
	const char *row[3];
	int64_t now = time_now();
	json_t *tok;
	size_t i;
	int rc = 0;

	output_table_init(&t, 3, headers);
	json_array_foreach(list, i, tok)
	{
		util_reltime(util_json_time(tok, "created_at"), now, created, sizeof(created));
		row[0] = util_json_str(tok, "name");
		row[1] = created;
		row[2] = util_json_str(tok, "audit_actor");
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

static int apitoken_list_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			     char **argv)
{
	json_t *md;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first);
	if (rc >= 0)
		return rc;
	rc = client_request(ctx, "GET", "/1.0/auth/tokens", NULL, &md);
	if (rc != 0)
		return rc;
	if (!json_is_array(md)) {
		fputs("Error: the server did not send a list of tokens\n", stderr);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? 0 : CLI_EXIT_FAIL;
	} else {
		rc = apitoken_list_table(md);
	}
	json_decref(md);
	return rc;
}

const struct cli_command cmd_apitoken_list = {
    .name = "api-token list",
    .args = "",
    .summary = "List the API tokens by name",
    .help = "Shows each API token's name, age and the actor its requests have in the\n"
	    "audit log (token: and the first 12 hex digits of the token's SHA-256); the\n"
	    "secrets are never shown again.\n",
    .fn = apitoken_list_run,
};
