/* cmd_apitoken_revoke.c - `lxcm api-token revoke NAME`. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

const struct cli_command cmd_apitoken_revoke = {
    .name = "api-token revoke",
    .args = "NAME",
    .summary = "Revoke an API token",
    .help = "Deletes the API token NAME: requests carrying it are refused from now on.\n"
	    "The last token cannot be revoked (nobody could use the API any more).\n",
    .nargs = 1,
    .fn = cmdrun_delete,
    .path = "/1.0/auth/tokens",
};
