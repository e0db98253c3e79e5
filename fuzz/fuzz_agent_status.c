/*
 * fuzz_agent_status.c - the agent's heartbeat body built from LXD's
 * answers (agent_status_build, src/agent/status.c, compiled in here as the
 * unit test does).
 *
 * LXD's answers are peer data. The input is split at lines "----" into, in
 * order: instances, resources, members, pools, pool_resources,
 * member_resources, member_pool_resources (each parsed as JSON as the agent
 * does, NULL when it does not parse), member_name, ui_url (raw text, cut at
 * a NUL as a C string would be), three load averages (8 raw bytes each, any
 * double including NaN), and the metrics text (the rest, raw bytes;
 * absent means no metrics).
 *
 * The body must be a JSON object that serializes and that the manager's
 * connector would accept (the type checks of connector_status_invalid).
 */
#include "agent/status.c"
#include "fuzz.h"

#define FUZZ_NJSON 7

static json_t *fuzz_json_part(const uint8_t *p, size_t len)
{
	return p ? json_loadb((const char *)p, len, JSON_DECODE_ANY, NULL) : NULL;
}

static void fuzz_check_body(json_t *b)
{
	static const char *const ints[] = {"cpu_total_count", "memory_total_amount",
					   "memory_usage"};
	static const char *const strs[] = {"cpu_load_1", "cpu_load_5", "cpu_load_15", "ui_url"};
	static const char *const lists[] = {"instance_statuses", "member_statuses",
					    "ceph_statuses", "storage_pool_usages",
					    "server_metrics"};
	char *text;
	size_t i;

	FUZZ_CHECK(json_is_object(b));
	for (i = 0; i < 3; i++)
		FUZZ_CHECK(json_is_integer(json_object_get(b, ints[i])) &&
			   json_integer_value(json_object_get(b, ints[i])) >= 0);
	for (i = 0; i < 4; i++)
		FUZZ_CHECK(json_is_string(json_object_get(b, strs[i])));
	for (i = 0; i < 5; i++)
		FUZZ_CHECK(json_is_array(json_object_get(b, lists[i])));
	FUZZ_CHECK(json_array_size(json_object_get(b, "storage_pool_usages")) <=
		   AGENT_STATUS_MAX_POOL_USAGES);
	FUZZ_CHECK(json_array_size(json_object_get(b, "instance_statuses")) <=
		   AGENT_STATUS_MAX_KINDS);
	FUZZ_CHECK(json_array_size(json_object_get(b, "member_statuses")) <=
		   AGENT_STATUS_MAX_KINDS);
	text = json_dumps(b, JSON_COMPACT);
	FUZZ_CHECK(text != NULL);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *parts[FUZZ_NJSON] = {0};
	struct lxd_snapshot snap = {0};
	char *name = NULL, *ui = NULL, *metrics = NULL;
	const uint8_t *p;
	size_t len, i;
	json_t *body;

	for (i = 0; i < FUZZ_NJSON; i++) {
		p = fuzz_next_part(&data, &size, &len);
		parts[i] = fuzz_json_part(p, len);
	}
	if ((p = fuzz_next_part(&data, &size, &len)) != NULL)
		name = fuzz_strndup(p, len);
	if ((p = fuzz_next_part(&data, &size, &len)) != NULL)
		ui = fuzz_strndup(p, len);
	if ((p = fuzz_next_part(&data, &size, &len)) != NULL)
		memcpy(snap.load, p, len < sizeof(snap.load) ? len : sizeof(snap.load));
	if ((p = fuzz_next_part(&data, &size, &len)) != NULL) {
		metrics = malloc(len ? len : 1); /* exact size, not NUL-terminated */
		if (metrics == NULL)
			abort();
		memcpy(metrics, p, len);
		snap.metrics = metrics;
		snap.metrics_len = len;
	}
	snap.instances = parts[0];
	snap.resources = parts[1];
	snap.members = parts[2];
	snap.pools = parts[3];
	snap.pool_resources = parts[4];
	snap.member_resources = parts[5];
	snap.member_pool_resources = parts[6];
	snap.member_name = name;
	snap.ui_url = ui;
	body = agent_status_build(&snap);
	FUZZ_CHECK(body != NULL);
	fuzz_check_body(body);
	json_decref(body);
	for (i = 0; i < FUZZ_NJSON; i++)
		json_decref(parts[i]);
	free(name);
	free(ui);
	free(metrics);
	return 0;
}
