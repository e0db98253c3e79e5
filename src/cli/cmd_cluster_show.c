/* cmd_cluster_show.c - `lxcm cluster show NAME`: one cluster in detail. */
#include "cli/cli.h"

#include <string.h>

#include "cli/clusterfmt.h"
#include "cli/cmdrun.h"
#include "cli/output.h"
#include "cli/util.h"
#include "common/cert.h"
#include "common/timefmt.h"

/* "members: 3" then one indented "STATUS: count" line per entry. */
static void cluster_show_statuses(json_t *c, const char *label, const char *count_key,
				  const char *list_key)
{
	json_t *list = json_object_get(c, list_key), *e;
	char count[24], status[128];
	uint64_t n;
	size_t i;

	clusterfmt_count(c, count_key, 0, count, sizeof(count));
	output_kv(label, count);
	json_array_foreach(list, i, e)
	{
		if (util_json_u64(e, "count", &n) != 0)
			continue;
		util_sanitize(util_json_str(e, "status"), status, sizeof(status));
		printf("  %s: %llu\n", status[0] ? status : "-", (unsigned long long)n);
	}
}

/* "  local on member1: 1.0GiB/10.0GiB" per pool ("shared" pools have no member). */
static void cluster_show_pools(json_t *c)
{
	json_t *list = json_object_get(c, "storage_pool_usages"), *p;
	char name[128], member[128], used[16], total[16];
	uint64_t u, t;
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0) {
		output_kv("storage pools", NULL);
		return;
	}
	printf("storage pools:\n");
	json_array_foreach(list, i, p)
	{
		util_sanitize(util_json_str(p, "name"), name, sizeof(name));
		util_sanitize(util_json_str(p, "member"), member, sizeof(member));
		util_human_bytes(util_json_u64(p, "usage", &u) == 0 ? u : 0, used, sizeof(used));
		util_human_bytes(util_json_u64(p, "total", &t) == 0 ? t : 0, total, sizeof(total));
		printf("  %s%s%s: %s/%s\n", name[0] ? name : "-", member[0] ? " on " : " (shared)",
		       member, used, total);
	}
}

static void cluster_show_cpu(json_t *c)
{
	const char *l1 = util_json_str(c, "cpu_load_1"), *l5 = util_json_str(c, "cpu_load_5"),
		   *l15 = util_json_str(c, "cpu_load_15");
	char count[24], loads[128], line[200];
	int n;

	clusterfmt_count(c, "cpu_total_count", 0, count, sizeof(count));
	if (l1 == NULL && strcmp(count, "-") == 0) {
		output_kv("cpu", NULL);
		return;
	}
	util_sanitize(l1 ? l1 : "-", loads, sizeof(loads));
	n = snprintf(line, sizeof(line), "%s CPUs, load %s", count, loads);
	if (n > 0 && (size_t)n < sizeof(line) && l5 && l15) {
		int m = snprintf(line + n, sizeof(line) - (size_t)n, " %s %s", l5, l15);
		if (m < 0 || (size_t)m >= sizeof(line) - (size_t)n)
			line[n] = '\0';
	}
	output_kv("cpu", (n > 0 && (size_t)n < sizeof(line)) ? line : NULL);
}

static void cluster_show_percent(json_t *c, const char *label, const char *key)
{
	char v[24];
	int n;

	clusterfmt_count(c, key, 0, v, sizeof(v));
	n = (strcmp(v, "-") == 0) ? 0 : (int)strlen(v);
	if (n > 0 && (size_t)n + 1 < sizeof(v)) {
		v[n] = '%';
		v[n + 1] = '\0';
	}
	output_kv(label, v);
}

static void cluster_show_fingerprint(json_t *c)
{
	const char *pem = util_json_str(c, "cluster_certificate");
	char fp[65];

	if (pem != NULL && cert_fingerprint_pem(pem, strlen(pem), fp) == 0)
		output_kv("certificate fingerprint", fp);
	else
		output_kv("certificate fingerprint", NULL);
}

static int cluster_show_print(json_t *c, const void *arg)
{
	int64_t now = time_now();
	char buf[64];

	(void)arg;
	output_kv("name", util_json_str(c, "name"));
	output_kv("description", util_json_str(c, "description"));
	output_kv("status", util_json_str(c, "status"));
	cluster_show_fingerprint(c);
	output_kv("tunnel", clusterfmt_tunnel(c, NULL, now, buf, sizeof(buf)));
	output_kv("ui url", util_json_str(c, "ui_url"));
	clusterfmt_when(c, "created_at", now, buf, sizeof(buf));
	output_kv("created", buf);
	clusterfmt_when(c, "joined_at", now, buf, sizeof(buf));
	output_kv("joined", buf);
	clusterfmt_when(c, "last_status_update_at", now, buf, sizeof(buf));
	output_kv("last heartbeat", buf);
	cluster_show_percent(c, "disk threshold", "disk_threshold");
	cluster_show_percent(c, "memory threshold", "memory_threshold");
	cluster_show_cpu(c);
	output_kv("memory", clusterfmt_memory(c, NULL, now, buf, sizeof(buf)));
	output_kv("storage", clusterfmt_storage(c, NULL, now, buf, sizeof(buf)));
	cluster_show_pools(c);
	cluster_show_statuses(c, "members", "member_count", "member_statuses");
	cluster_show_statuses(c, "instances", "instance_count", "instance_statuses");
	cluster_show_statuses(c, "ceph", "ceph_count", "ceph_statuses");
	return CLI_EXIT_OK;
}

static int cluster_show_valid(json_t *c)
{
	return util_json_str(c, "name") != NULL;
}

static int cluster_show_run(struct cli_ctx *ctx, const struct cli_command *cmd,
			    const struct cli_args *a)
{
	return cmdrun_request(ctx,
			      &(const struct cmdrun_req){.method = "GET",
							 .prefix = cmd->path,
							 .name = a->pos[0],
							 .check = cluster_show_valid,
							 .bad = "the server did not send a cluster",
							 .print = cluster_show_print});
}

const struct cli_command cmd_cluster_show = {
    .name = "cluster show",
    .args = "NAME",
    .summary = "Show one cluster's details and latest status",
    .help = "Prints the cluster's settings and its latest status report, one\n"
	    "\"key: value\" per line; --json prints the API object instead.\n",
    .nargs = 1,
    .fn = cluster_show_run,
    .path = "/1.0/remote-cluster",
};
