/* cmd_cluster_list.c - `lxcm cluster list`: one line per enrolled cluster. */
#include "cli/cli.h"

#include "cli/clusterfmt.h"
#include "cli/output.h"
#include "cli/util.h"
#include "common/timefmt.h"

#define CLUSTER_LIST_COLS 9

static int cluster_list_row(struct output_table *t, json_t *c, int64_t now)
{
	char members[24], instances[24], cpu[64], mem[40], storage[40], beat[32];
	const char *row[CLUSTER_LIST_COLS];

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

static int cluster_list_table(json_t *list)
{
	static const char *const headers[CLUSTER_LIST_COLS] = {
	    "NAME",   "STATUS",	 "MEMBERS", "INSTANCES",     "CPU",
	    "MEMORY", "STORAGE", "TUNNEL",  "LAST HEARTBEAT"};
	struct output_table t;
	int64_t now = time_now();
	json_t *c;
	size_t i;
	int rc = 0;

	output_table_init(&t, CLUSTER_LIST_COLS, headers);
	json_array_foreach(list, i, c)
	{
		if (json_is_object(c) && cluster_list_row(&t, c, now) != 0) {
			rc = CLI_EXIT_FAIL;
			break;
		}
	}
	if (rc == 0)
		output_table_print(&t, stdout);
	output_table_free(&t);
	return rc;
}

static int cluster_list_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			    char **argv)
{
	json_t *md;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first);
	if (rc >= 0)
		return rc;
	rc = client_request(ctx, "GET", "/1.0/remote-cluster", NULL, &md);
	if (rc != 0)
		return rc;
	if (!json_is_array(md)) {
		fputs("Error: the server did not send a list of clusters\n", stderr);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? 0 : CLI_EXIT_FAIL;
	} else {
		rc = cluster_list_table(md);
	}
	json_decref(md);
	return rc;
}

const struct cli_command cmd_cluster_list = {
    .name = "cluster list",
    .args = "",
    .summary = "List the enrolled clusters with their latest status",
    .help = "Columns: CPU is the 1-minute load over the number of CPUs; MEMORY and\n"
	    "STORAGE are used over total (storage summed over all pools); TUNNEL says\n"
	    "whether the cluster's tunnel is connected; LAST HEARTBEAT is the age of\n"
	    "the latest status report.\n",
    .fn = cluster_list_run,
};
