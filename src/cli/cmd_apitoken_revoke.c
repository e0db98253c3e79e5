/* cmd_apitoken_revoke.c - `lxcm api-token revoke NAME`. */
#include "cli/cli.h"

static int apitoken_revoke_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			       char **argv)
{
	char path[1200];
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 1, 1, &first);
	if (rc >= 0)
		return rc;
	rc = client_path(path, sizeof(path), "/1.0/auth/tokens", argv[first]);
	if (rc != 0)
		return rc;
	return client_request(ctx, "DELETE", path, NULL, NULL);
}

const struct cli_command cmd_apitoken_revoke = {
    .name = "api-token revoke",
    .args = "NAME",
    .summary = "Revoke an API token",
    .help = "Deletes the API token NAME: requests carrying it are refused from now on.\n"
	    "The last token cannot be revoked (nobody could use the API any more).\n",
    .fn = apitoken_revoke_run,
};
