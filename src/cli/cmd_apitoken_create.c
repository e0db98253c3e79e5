/* cmd_apitoken_create.c - `lxcm api-token create NAME`: a new operator token. */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "cli/util.h"

static int apitoken_create_valid(json_t *md)
{
	return util_json_str(md, "token") != NULL;
}

static int apitoken_create_print(json_t *md, const void *arg)
{
	printf("%s\n", util_json_str(md, "token"));
	fprintf(stderr,
		"API token %s created. It is shown only now: keep it in a file of\n"
		"mode 0600 and pass it with --token-file or LXCM_TOKEN_FILE.\n",
		(const char *)arg);
	return CLI_EXIT_OK;
}

static int apitoken_create_run(struct cli_ctx *ctx, const struct cli_command *cmd,
			       const struct cli_args *a)
{
	json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	int rc;

	if (body == NULL)
		return CLI_EXIT_FAIL;
	rc = cmdrun_request(ctx,
			    &(const struct cmdrun_req){.method = "POST",
						       .path = cmd->path,
						       .body = body,
						       .check = apitoken_create_valid,
						       .bad = "the server's reply holds no token",
						       .print = apitoken_create_print,
						       .arg = a->pos[0]});
	json_decref(body);
	return rc;
}

const struct cli_command cmd_apitoken_create = {
    .name = "api-token create",
    .args = "NAME",
    .summary = "Create an API token for an operator or a tool",
    .help = "Creates a bearer token for the management API and prints it once.\n"
	    "The server keeps only its SHA-256. Revoke it with 'lxcm api-token revoke NAME'.\n",
    .nargs = 1,
    .fn = apitoken_create_run,
    .path = "/1.0/auth/tokens",
};
