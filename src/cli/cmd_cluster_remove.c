/* cmd_cluster_remove.c - `lxcm cluster remove NAME`: forget a cluster. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

static int cluster_remove_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			      char **argv)
{
	return cmdrun_delete(ctx, cmd, argc, argv, "/1.0/remote-cluster");
}

const struct cli_command cmd_cluster_remove = {
    .name = "cluster remove",
    .args = "NAME",
    .summary = "Remove the cluster NAME from the manager",
    .help = "Deletes the cluster and its status from the manager; its certificate is\n"
	    "no longer accepted and its live tunnel, if any, is closed at once. Nothing\n"
	    "is changed on the cluster itself: to enroll it again, create a new token.\n",
    .fn = cluster_remove_run,
};
