/* cmd_cluster_list.c - `lxcm cluster list`: one line per enrolled cluster. */
#include "cli/cli.h"

#include "cli/clusterfmt.h"
#include "cli/cmdrun.h"

/* clang-format off */
static const struct output_column cluster_list_columns[] = {
    {'n', "name", "NAME", "the cluster's name", "name", NULL},
    {'d', "description", "DESCRIPTION", "the note set with 'cluster set'", "description", NULL},
    {'s', "status", "STATUS", "the cluster's status (ACTIVE once enrolled)", "status", NULL},
    {'m', "members", "MEMBERS", "how many members the cluster has", "member_count",
     clusterfmt_count},
    {'i', "instances", "INSTANCES", "how many instances run on it", "instance_count",
     clusterfmt_count},
    {'c', "cpu", "CPU", "the 1-minute load over the number of CPUs", NULL, clusterfmt_cpu},
    {'M', "memory", "MEMORY", "memory used over total", NULL, clusterfmt_memory},
    {'D', "storage", "STORAGE", "storage used over total, summed over all pools", NULL,
     clusterfmt_storage},
    {'t', "tunnel", "TUNNEL", "whether the cluster's tunnel is connected", NULL,
     clusterfmt_tunnel},
    {'l', "heartbeat", "LAST HEARTBEAT", "the age of the latest status report",
     "last_status_update_at", output_cell_age},
    {'j', "joined", "JOINED", "how long ago the cluster enrolled", "joined_at", output_cell_age},
    {'u', "ui-url", "UI URL", "the address of the cluster's web UI", "ui_url", NULL},
    {0, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */

static const struct cmdrun_list cluster_list = {
    .bad = "the server did not send a list of clusters",
    .columns = {cluster_list_columns, "nsmicMDtl"},
};

const struct cli_command cmd_cluster_list =
    CMDRUN_LIST_ENTRY("cluster list", "List the enrolled clusters with their latest status", "",
		      "/1.0/remote-cluster", &cluster_list);
