/* cmd_apitoken_revoke.c - `lxcm api-token revoke NAME`. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

static int apitoken_revoke_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			       char **argv)
{
	return cmdrun_delete(ctx, cmd, argc, argv, "/1.0/auth/tokens");
}

const struct cli_command cmd_apitoken_revoke = {
    .name = "api-token revoke",
    .args = "NAME",
    .summary = "Revoke an API token",
    .help = "Deletes the API token NAME: requests carrying it are refused from now on.\n"
	    "The last token cannot be revoked (nobody could use the API any more).\n",
    .fn = apitoken_revoke_run,
};
