/* cmd_cluster_list.c - `lxcm cluster list`: one line per enrolled cluster. */
#include "cli/cli.h"

#include "cli/clusterfmt.h"
#include "cli/cmdrun.h"
#include "cli/util.h"

#define CLUSTER_LIST_COLS 9

/* A row per cluster object; anything else in the list is skipped. */
static int cluster_list_row(struct output_table *t, json_t *c, int64_t now)
{
	char members[24], instances[24], cpu[64], mem[40], storage[40], beat[32];
	const char *row[CLUSTER_LIST_COLS];

	if (!json_is_object(c))
		return 0;
	clusterfmt_count(c, "member_count", members, sizeof(members));
	clusterfmt_count(c, "instance_count", instances, sizeof(instances));
	clusterfmt_cpu(c, cpu, sizeof(cpu));
	clusterfmt_memory(c, mem, sizeof(mem));
	clusterfmt_storage(c, storage, sizeof(storage));
	clusterfmt_heartbeat(c, now, beat, sizeof(beat));
	row[0] = util_json_str(c, "name");
	row[1] = util_json_str(c, "status");
	row[2] = members;
	row[3] = instances;
	row[4] = cpu;
	row[5] = mem;
	row[6] = storage;
	row[7] = clusterfmt_tunnel(c);
	row[8] = beat;
	return output_table_add(t, row);
}

static const struct cmdrun_list cluster_list = {
    .bad = "the server did not send a list of clusters",
    .headers = {"NAME", "STATUS", "MEMBERS", "INSTANCES", "CPU", "MEMORY", "STORAGE", "TUNNEL",
		"LAST HEARTBEAT"},
    .row = cluster_list_row,
};

const struct cli_command cmd_cluster_list = {
    .name = "cluster list",
    .args = "",
    .summary = "List the enrolled clusters with their latest status",
    .help = "Columns: CPU is the 1-minute load over the number of CPUs; MEMORY and\n"
	    "STORAGE are used over total (storage summed over all pools); TUNNEL says\n"
	    "whether the cluster's tunnel is connected; LAST HEARTBEAT is the age of\n"
	    "the latest status report.\n",
    .fn = cmdrun_list,
    .path = "/1.0/remote-cluster",
    .list = &cluster_list,
};
