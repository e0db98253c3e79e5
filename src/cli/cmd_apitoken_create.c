/* cmd_apitoken_create.c - `lxcm api-token create NAME`: a new operator token. */
#include "cli/cli.h"

#include "cli/output.h"
#include "cli/util.h"

static int apitoken_create_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			       char **argv)
{
	json_t *body, *md = NULL;
	const char *token;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first);
	if (rc >= 0)
		return rc;
	body = json_pack("{s:s}", "name", argv[first]);
	if (body == NULL)
		return CLI_EXIT_FAIL;
	rc = client_request(ctx, "POST", "/1.0/auth/tokens", body, &md);
	json_decref(body);
	if (rc != 0)
		return rc;
	token = util_json_str(md, "token");
	if (token == NULL) {
		fputs("Error: the server's reply holds no token\n", stderr);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? 0 : CLI_EXIT_FAIL;
	} else {
		printf("%s\n", token);
		fprintf(stderr, "API token %s created. It is shown only now: keep it in a file of\n"
				"mode 0600 and pass it with --token-file or LXCM_TOKEN_FILE.\n",
			argv[first]);
	}
	json_decref(md);
	return rc;
}

const struct cli_command cmd_apitoken_create = {
    .name = "api-token create",
    .args = "NAME",
    .summary = "Create an API token for an operator or a tool",
    .help = "Creates a bearer token for the management API and prints it once.\n"
	    "The server keeps only its SHA-256. Revoke it with 'lxcm api-token revoke NAME'.\n",
    .fn = apitoken_create_run,
};
