/* cmd_cluster_remove.c - `lxcm cluster remove NAME`: forget a cluster. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

const struct cli_command cmd_cluster_remove = CMDRUN_DELETE_ENTRY(
    "cluster remove", "Remove the cluster NAME from the manager",
    "Deletes the cluster and its status from the manager; its certificate is\n"
    "no longer accepted and its live tunnel, if any, is closed at once. Nothing\n"
    "is changed on the cluster itself: to enroll it again, create a new token.\n",
    "/1.0/remote-cluster");
