/* cmd_apitoken_revoke.c - `lxcm api-token revoke NAME`. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

const struct cli_command cmd_apitoken_revoke = CMDRUN_DELETE_ENTRY(
    "api-token revoke", "Revoke an API token",
    "Deletes the API token NAME: requests carrying it are refused from now on.\n"
    "The last token cannot be revoked (nobody could use the API any more).\n",
    "/1.0/auth/tokens");
