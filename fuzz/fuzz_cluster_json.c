/*
 * fuzz_cluster_json.c - the cluster object of the management API rendered
 * from a stored heartbeat (cluster_to_json, src/server/cluster_json.c).
 *
 * status_json is whatever an enrolled cluster posted (the connector checks
 * only the types of a few fields), so it is peer data. The object must
 * always come out whole: every field present with its documented type, the
 * counts non-negative sums of the lists, and the whole thing serializable.
 */
#include "fuzz.h"
#include "server/server.h"

static const char *const fuzz_string_fields[] = {
	"name", "description", "cluster_certificate", "status", "cpu_load_1", "cpu_load_5",
	"cpu_load_15", "ui_url", "joined_at", "created_at", "last_status_update_at",
};
static const char *const fuzz_int_fields[] = {
	"disk_threshold", "memory_threshold", "ceph_count", "cpu_total_count",
	"memory_total_amount", "memory_usage", "member_count", "instance_count",
};
static const char *const fuzz_list_fields[] = {
	"ceph_statuses", "storage_pool_usages", "member_statuses", "instance_statuses",
};

#define FUZZ_N(a) (sizeof(a) / sizeof((a)[0]))

static void fuzz_check_list_sum(json_t *o, const char *list, const char *count)
{
	json_t *e;
	json_int_t sum = 0;
	size_t i;
	int overflow = 0;

	json_array_foreach(json_object_get(o, list), i, e) {
		json_t *c = json_object_get(e, "count");

		FUZZ_CHECK(json_is_string(json_object_get(e, "status")));
		FUZZ_CHECK(json_is_integer(c) && json_integer_value(c) >= 0);
		overflow |= __builtin_add_overflow(sum, json_integer_value(c), &sum);
	}
	/* A sum past INT64_MAX may be capped or refused; it must not go negative. */
	FUZZ_CHECK(json_integer_value(json_object_get(o, count)) >= 0);
	if (!overflow)
		FUZZ_CHECK(json_integer_value(json_object_get(o, count)) == sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_cluster c = {
		.id = 1,
		.name = "fuzz",
		.description = "a cluster",
		.certificate = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
		.fingerprint = "00",
		.status = "ACTIVE",
		.disk_threshold = 80,
		.memory_threshold = 80,
		.joined_at = 1700000000,
		.created_at = 1700000000,
		.last_status_update_at = (int64_t)size * 1000003,
	};
	json_t *o;
	char *text;
	size_t i;

	c.status_json = fuzz_strndup(data, size);
	o = cluster_to_json(&c);
	FUZZ_CHECK(json_is_object(o));
	for (i = 0; i < FUZZ_N(fuzz_string_fields); i++)
		FUZZ_CHECK(json_is_string(json_object_get(o, fuzz_string_fields[i])));
	for (i = 0; i < FUZZ_N(fuzz_int_fields); i++)
		FUZZ_CHECK(json_is_integer(json_object_get(o, fuzz_int_fields[i])));
	for (i = 0; i < FUZZ_N(fuzz_list_fields); i++)
		FUZZ_CHECK(json_is_array(json_object_get(o, fuzz_list_fields[i])));
	fuzz_check_list_sum(o, "ceph_statuses", "ceph_count");
	fuzz_check_list_sum(o, "member_statuses", "member_count");
	fuzz_check_list_sum(o, "instance_statuses", "instance_count");
	text = json_dumps(o, JSON_COMPACT);
	FUZZ_CHECK(text != NULL);
	free(text);
	json_decref(o);
	free(c.status_json);
	return 0;
}
