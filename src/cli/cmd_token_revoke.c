/* cmd_token_revoke.c - `lxcm token revoke NAME`: delete an unused join token. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

const struct cli_command cmd_token_revoke = CMDRUN_DELETE_ENTRY(
    "token revoke", "Revoke the join token of cluster NAME",
    "Deletes the pending join token for NAME, so it can no longer be used.\n"
    "A cluster that already joined is not affected (see 'lxcm cluster remove').\n",
    "/1.0/remote-cluster-join-token");
