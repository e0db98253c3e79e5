/*
 * test_agent_status.c - unit tests for src/agent/status.c: the heartbeat body
 * from real LXD 5.0.2 responses (tests/fixtures/lxd, captured from the daemon
 * of scripts/lxd-test-env.sh) and from hostile input.
 *
 * The agent's sources are not in a library, so the .c is included (which
 * also reaches its statics, STYLE.md rule 11).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/status.c"

/* The protocol's fields, in the order MICROCLOUD-PROTOCOL.md lists them. */
static const char *const body_keys[] = {
    "cpu_total_count",
    "cpu_load_1",
    "cpu_load_5",
    "cpu_load_15",
    "memory_total_amount",
    "memory_usage",
    "instance_statuses",
    "member_statuses",
    "ceph_statuses",
    "storage_pool_usages",
    "ui_url",
    "server_metrics",
};

/* tests/fixtures/lxd: from $LXCM_FIXTURES (a fixtures dir), else next to
 * this file (CMake compiles with absolute paths). */
static void fixture_path(char *out, size_t len, const char *name)
{
	const char *env = getenv("LXCM_FIXTURES");
	const char *file = __FILE__;
	const char *end = strstr(file, "/unit/test_agent_status.c");
	int n;

	if (env != NULL && env[0] != '\0')
		n = snprintf(out, len, "%s/lxd/%s", env, name);
	else if (end != NULL)
		n = snprintf(out, len, "%.*s/fixtures/lxd/%s", (int)(end - file), file, name);
	else
		n = snprintf(out, len, "tests/fixtures/lxd/%s", name);
	assert_true(n > 0 && (size_t)n < len);
}

/* The whole parsed response of a fixture; fails the test if it is missing. */
static json_t *load_response(const char *name)
{
	char path[PATH_MAX];
	json_error_t err;
	json_t *resp;

	fixture_path(path, sizeof(path), name);
	resp = json_load_file(path, 0, &err);
	if (resp == NULL)
		fail_msg("%s: %s", path, err.text);
	return resp;
}

/* A new reference to the metadata of a fixture response. */
static json_t *load_metadata(const char *name)
{
	json_t *resp = load_response(name);
	json_t *md = json_incref(json_object_get(resp, "metadata"));

	json_decref(resp);
	assert_non_null(md);
	return md;
}

/* The bytes of a text fixture, malloc'd; *len set. */
static char *load_text(const char *name, size_t *len)
{
	char path[PATH_MAX];
	FILE *f;
	char *buf;
	long n;

	fixture_path(path, sizeof(path), name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);

	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", err.text, text);
	return v;
}

/* Asserts that v equals the JSON in text (jansson's deep equality). */
static void assert_json(json_t *v, const char *text)
{
	json_t *want = parse(text);

	if (!json_equal(v, want)) {
		char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		fail_msg("got %s\nwant %s", got ? got : "(null)", text);
	}
	json_decref(want);
}

/* The body has exactly the protocol's keys with the protocol's types, and
 * serializes (no NaN, valid UTF-8). */
static void assert_shape(json_t *body)
{
	size_t i;
	char *dump;

	assert_true(json_is_object(body));
	assert_int_equal(json_object_size(body), sizeof(body_keys) / sizeof(body_keys[0]));
	for (i = 0; i < sizeof(body_keys) / sizeof(body_keys[0]); i++)
		assert_non_null(json_object_get(body, body_keys[i]));
	assert_true(json_is_integer(json_object_get(body, "cpu_total_count")));
	assert_true(json_is_integer(json_object_get(body, "memory_total_amount")));
	assert_true(json_is_integer(json_object_get(body, "memory_usage")));
	assert_true(json_is_string(json_object_get(body, "cpu_load_1")));
	assert_true(json_is_string(json_object_get(body, "cpu_load_5")));
	assert_true(json_is_string(json_object_get(body, "cpu_load_15")));
	assert_true(json_is_string(json_object_get(body, "ui_url")));
	assert_true(json_is_array(json_object_get(body, "instance_statuses")));
	assert_true(json_is_array(json_object_get(body, "member_statuses")));
	assert_true(json_is_array(json_object_get(body, "ceph_statuses")));
	assert_true(json_is_array(json_object_get(body, "storage_pool_usages")));
	assert_true(json_is_array(json_object_get(body, "server_metrics")));
	dump = json_dumps(body, JSON_COMPACT);
	assert_non_null(dump);
	free(dump);
}

static const char *str(json_t *body, const char *key)
{
	const char *s = json_string_value(json_object_get(body, key));

	assert_non_null(s);
	return s;
}

static long long num(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);

	assert_true(json_is_integer(v));
	return (long long)json_integer_value(v);
}

/* A standalone LXD 5.0.2 exactly as scripts/lxd-test-env.sh leaves it: two
 * stopped instances in two projects, one running, one dir pool. */
static void test_standalone_fixtures(void **state)
{
	json_t *server = load_response("server.json");
	json_t *pool_res = json_object();
	const char *name;
	size_t metrics_len;
	char *metrics = load_text("metrics.txt", &metrics_len);
	struct lxd_snapshot snap = {
	    .instances = load_metadata("instances-all-projects.json"),
	    .resources = load_metadata("resources.json"),
	    .members = NULL, /* cluster-members-standalone.json is a 500 */
	    .pools = load_metadata("storage-pools.json"),
	    .pool_resources = pool_res,
	    .metrics = metrics,
	    .metrics_len = metrics_len,
	    .ui_url = "https://lxd.example:8443",
	    .load = {0.42, 1.5, 15.999},
	};
	json_t *body, *sm;

	(void)state;
	assert_int_equal(json_object_set_new(pool_res, "default",
					     load_metadata("storage-pool-default-resources.json")),
			 0);
	name = json_string_value(json_object_get(
	    json_object_get(json_object_get(server, "metadata"), "environment"), "server_name"));
	assert_string_equal(name, "vm");
	snap.member_name = name;

	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_int_equal(num(body, "cpu_total_count"), 2);
	assert_string_equal(str(body, "cpu_load_1"), "0.42");
	assert_string_equal(str(body, "cpu_load_5"), "1.50");
	assert_string_equal(str(body, "cpu_load_15"), "16.00");
	assert_int_equal(num(body, "memory_total_amount"), 25769803776LL);
	assert_int_equal(num(body, "memory_usage"), 692748288LL);
	assert_json(json_object_get(body, "instance_statuses"),
		    "[{\"status\":\"Stopped\",\"count\":2},{\"status\":\"Running\",\"count\":1}]");
	assert_json(json_object_get(body, "member_statuses"),
		    "[{\"status\":\"Online\",\"count\":1}]");
	assert_json(json_object_get(body, "ceph_statuses"), "[]");
	assert_json(json_object_get(body, "storage_pool_usages"),
		    "[{\"name\":\"default\",\"member\":\"vm\",\"total\":270553174016,"
		    "\"usage\":17132703744}]");
	assert_string_equal(str(body, "ui_url"), "https://lxd.example:8443");

	sm = json_array_get(json_object_get(body, "server_metrics"), 0);
	assert_int_equal(json_array_size(json_object_get(body, "server_metrics")), 1);
	assert_string_equal(str(sm, "member"), "vm");
	assert_string_equal(str(sm, "service"), "LXD");
	assert_int_equal(json_string_length(json_object_get(sm, "metrics")), metrics_len);
	assert_memory_equal(json_string_value(json_object_get(sm, "metrics")), metrics,
			    metrics_len);
	assert_non_null(strstr(json_string_value(json_object_get(sm, "metrics")),
			       "lxd_procs_total{name=\"lxcm-test-running\""));

	json_decref(body);
	json_decref(snap.instances);
	json_decref(snap.resources);
	json_decref(snap.pools);
	json_decref(pool_res);
	json_decref(server);
	free(metrics);
}

/* The same LXD turned into a one-member cluster (`lxc cluster enable vm`). */
static void test_clustered_fixtures(void **state)
{
	struct lxd_snapshot snap = {
	    .members = load_metadata("cluster-members-clustered.json"),
	    .pools = load_metadata("storage-pools-clustered.json"),
	    .pool_resources = parse("{\"default\":{\"space\":{\"used\":5,\"total\":10}}}"),
	    .member_name = "vm",
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_json(json_object_get(body, "member_statuses"),
		    "[{\"status\":\"Online\",\"count\":1}]");
	assert_json(json_object_get(body, "storage_pool_usages"),
		    "[{\"name\":\"default\",\"member\":\"vm\",\"total\":10,\"usage\":5}]");
	/* No metrics given: an empty list, not a null member. */
	assert_json(json_object_get(body, "server_metrics"), "[]");
	json_decref(body);
	json_decref(snap.members);
	json_decref(snap.pools);
	json_decref(snap.pool_resources);
}

/* Three members: statuses counted, capacity summed over member_resources,
 * a local pool once per member, a shared pool once with member "". */
static void test_cluster_members(void **state)
{
	struct lxd_snapshot snap = {
	    .members = parse("[{\"server_name\":\"a\",\"status\":\"Online\"},"
			     "{\"server_name\":\"b\",\"status\":\"Evacuated\"},"
			     "{\"server_name\":\"c\",\"status\":\"Online\"}]"),
	    .resources = parse("{\"cpu\":{\"total\":999},\"memory\":{\"total\":1,\"used\":1}}"),
	    .member_resources =
		parse("{\"a\":{\"cpu\":{\"total\":4},\"memory\":{\"total\":100,\"used\":10}},"
		      "\"b\":{\"cpu\":{\"total\":8},\"memory\":{\"total\":200,\"used\":20}},"
		      "\"c\":{\"cpu\":{\"total\":\"16\"},\"memory\":{\"total\":300}}}"),
	    .pools = parse("[{\"name\":\"local\",\"driver\":\"zfs\"},"
			   "{\"name\":\"remote\",\"driver\":\"ceph\"},"
			   "{\"name\":\"fs\",\"driver\":\"cephfs\"}]"),
	    .pool_resources = parse("{\"local\":{\"space\":{\"used\":1,\"total\":2}},"
				    "\"remote\":{\"space\":{\"used\":30,\"total\":90}}}"),
	    .member_pool_resources =
		parse("{\"a\":{\"local\":{\"space\":{\"used\":3,\"total\":10}}},"
		      "\"b\":{\"local\":{\"space\":{\"used\":4,\"total\":20}}},"
		      "\"c\":{}}"),
	    .member_name = "a",
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_json(json_object_get(body, "member_statuses"),
		    "[{\"status\":\"Online\",\"count\":2},{\"status\":\"Evacuated\",\"count\":1}]");
	/* c's cpu.total is a string: skipped; c has no memory.used. */
	assert_int_equal(num(body, "cpu_total_count"), 12);
	assert_int_equal(num(body, "memory_total_amount"), 600);
	assert_int_equal(num(body, "memory_usage"), 30);
	assert_json(json_object_get(body, "storage_pool_usages"),
		    "[{\"name\":\"local\",\"member\":\"a\",\"total\":10,\"usage\":3},"
		    "{\"name\":\"local\",\"member\":\"b\",\"total\":20,\"usage\":4},"
		    "{\"name\":\"remote\",\"member\":\"\",\"total\":90,\"usage\":30}]");
	json_decref(body);
	json_decref(snap.members);
	json_decref(snap.resources);
	json_decref(snap.member_resources);
	json_decref(snap.pools);
	json_decref(snap.pool_resources);
	json_decref(snap.member_pool_resources);
}

/* Nothing at all: a valid body of zeros and empty lists. */
static void test_empty_snapshot(void **state)
{
	struct lxd_snapshot snap = {0};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_json(body, "{\"cpu_total_count\":0,\"cpu_load_1\":\"0.00\",\"cpu_load_5\":\"0.00\","
			  "\"cpu_load_15\":\"0.00\",\"memory_total_amount\":0,\"memory_usage\":0,"
			  "\"instance_statuses\":[],"
			  "\"member_statuses\":[{\"status\":\"Online\",\"count\":1}],"
			  "\"ceph_statuses\":[],\"storage_pool_usages\":[],\"ui_url\":\"\","
			  "\"server_metrics\":[]}");
	json_decref(body);
}

/* Every field of the wrong type or shape: skipped, never a crash. */
static void test_wrong_types(void **state)
{
	static const char bad_metrics[] = "\xff\xfe not utf-8";
	struct lxd_snapshot snap = {
	    .instances = parse("[1, null, \"Running\", [], {}, {\"status\":7},"
			       "{\"status\":null}, {\"status\":\"\"}, {\"status\":\"a\\u0000b\"},"
			       "{\"status\":\"Frozen\"}, {\"status\":{\"x\":1}}]"),
	    .resources = parse("{\"cpu\":{\"total\":-4},\"memory\":{\"total\":1.5e9,"
			       "\"used\":\"12\"}}"),
	    .members = parse("[null, 3, {\"status\":false}]"),
	    .pools = parse("[null, {\"driver\":\"dir\"}, {\"name\":5}, {\"name\":\"\"},"
			   "{\"name\":\"nores\"}, {\"name\":\"str\",\"driver\":7},"
			   "{\"name\":\"zero\"}, {\"name\":\"neg\"}, {\"name\":\"nospace\"},"
			   "{\"name\":\"ok\",\"driver\":[]}]"),
	    .pool_resources = parse("{\"str\":{\"space\":{\"total\":\"10\",\"used\":1}},"
				    "\"zero\":{\"space\":{\"total\":0,\"used\":0}},"
				    "\"neg\":{\"space\":{\"total\":10,\"used\":-1}},"
				    "\"nospace\":{\"space\":[]},"
				    "\"ok\":{\"space\":{\"total\":10,\"used\":0}}}"),
	    .member_resources = parse("[]"),	 /* not an object: ignored */
	    .member_pool_resources = parse("7"), /* not an object: ignored */
	    .metrics = bad_metrics,
	    .metrics_len = sizeof(bad_metrics) - 1,
	    .member_name = "\xc3", /* cut UTF-8 sequence */
	    .ui_url = "\xff",
	    .load = {NAN, -1.0, INFINITY},
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_json(body, "{\"cpu_total_count\":0,\"cpu_load_1\":\"0.00\",\"cpu_load_5\":\"0.00\","
			  "\"cpu_load_15\":\"0.00\",\"memory_total_amount\":0,\"memory_usage\":0,"
			  "\"instance_statuses\":[{\"status\":\"Frozen\",\"count\":1}],"
			  "\"member_statuses\":[],"
			  "\"ceph_statuses\":[],"
			  "\"storage_pool_usages\":[{\"name\":\"ok\",\"member\":\"\",\"total\":10,"
			  "\"usage\":0}],"
			  "\"ui_url\":\"\",\"server_metrics\":[]}");
	json_decref(body);
	json_decref(snap.instances);
	json_decref(snap.resources);
	json_decref(snap.members);
	json_decref(snap.pools);
	json_decref(snap.pool_resources);
	json_decref(snap.member_resources);
	json_decref(snap.member_pool_resources);
}

/* Top-level inputs of the wrong JSON type. */
static void test_wrong_containers(void **state)
{
	struct lxd_snapshot snap = {
	    .instances = parse("{\"status\":\"Running\"}"),
	    .resources = parse("[]"),
	    .members = parse("{\"status\":\"Online\"}"),
	    .pools = parse("\"default\""),
	    .pool_resources = parse("[{\"space\":{\"total\":1,\"used\":1}}]"),
	    .member_name = "m",
	    .load = {1e300, 3.14159, 0.005},
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_shape(body);
	assert_json(json_object_get(body, "instance_statuses"), "[]");
	/* Not an array: treated like a standalone LXD. */
	assert_json(json_object_get(body, "member_statuses"),
		    "[{\"status\":\"Online\",\"count\":1}]");
	/* pools not an array, pool_resources not an object: nothing. */
	assert_json(json_object_get(body, "storage_pool_usages"), "[]");
	assert_string_equal(str(body, "cpu_load_1"), "0.00");
	assert_string_equal(str(body, "cpu_load_5"), "3.14");
	assert_true(strcmp(str(body, "cpu_load_15"), "0.01") == 0 ||
		    strcmp(str(body, "cpu_load_15"), "0.00") == 0);
	json_decref(body);
	json_decref(snap.instances);
	json_decref(snap.resources);
	json_decref(snap.members);
	json_decref(snap.pools);
	json_decref(snap.pool_resources);
}

/* Without a pools list, the keys of pool_resources are local pools. */
static void test_pools_without_list(void **state)
{
	struct lxd_snapshot snap = {
	    .pool_resources = parse("{\"p1\":{\"space\":{\"total\":7,\"used\":2}},"
				    "\"p2\":{\"space\":{\"total\":9,\"used\":9}}}"),
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	/* No member_name: "" rather than null. */
	assert_json(json_object_get(body, "storage_pool_usages"),
		    "[{\"name\":\"p1\",\"member\":\"\",\"total\":7,\"usage\":2},"
		    "{\"name\":\"p2\",\"member\":\"\",\"total\":9,\"usage\":9}]");
	json_decref(body);
	json_decref(snap.pool_resources);
}

/* Metrics with a NUL byte are still valid JSON text; empty metrics are
 * present metrics; a NULL member_name is "". */
static void test_metrics_edges(void **state)
{
	static const char text[] = "a 1\n\0b 2\n";
	struct lxd_snapshot snap = {.metrics = text, .metrics_len = sizeof(text) - 1};
	json_t *body, *m;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	m = json_array_get(json_object_get(body, "server_metrics"), 0);
	assert_string_equal(str(m, "member"), "");
	assert_int_equal(json_string_length(json_object_get(m, "metrics")), sizeof(text) - 1);
	json_decref(body);

	snap.metrics = "";
	snap.metrics_len = 0;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_json(json_object_get(body, "server_metrics"),
		    "[{\"member\":\"\",\"service\":\"LXD\",\"metrics\":\"\"}]");
	json_decref(body);
}

/* Many distinct statuses: at most AGENT_STATUS_MAX_KINDS entries and no
 * instance lost from the total. */
static void test_status_kinds_cap(void **state)
{
	json_t *instances = json_array(), *body, *list, *item;
	struct lxd_snapshot snap = {0};
	char status[32];
	long long total = 0;
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < 100; i++) {
		n = snprintf(status, sizeof(status), "S%zu", i % 50);
		assert_true(n > 0 && (size_t)n < sizeof(status));
		assert_int_equal(
		    json_array_append_new(instances, json_pack("{s:s}", "status", status)), 0);
	}
	snap.instances = instances;
	body = agent_status_build(&snap);
	assert_non_null(body);
	list = json_object_get(body, "instance_statuses");
	assert_int_equal(json_array_size(list), AGENT_STATUS_MAX_KINDS);
	json_array_foreach(list, i, item) {
		total += num(item, "count");
	}
	assert_int_equal(total, 100);
	item = json_array_get(list, AGENT_STATUS_MAX_KINDS - 1);
	assert_string_equal(str(item, "status"), "Other");
	assert_int_equal(num(item, "count"), 2 * (50 - (AGENT_STATUS_MAX_KINDS - 1)));
	json_decref(body);
	json_decref(instances);
}

/* Many pools: at most AGENT_STATUS_MAX_POOL_USAGES entries. */
static void test_pool_usages_cap(void **state)
{
	json_t *pools = json_array(), *res = json_object(), *body;
	struct lxd_snapshot snap = {.member_name = "m"};
	char name[32];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < AGENT_STATUS_MAX_POOL_USAGES + 50; i++) {
		n = snprintf(name, sizeof(name), "p%zu", i);
		assert_true(n > 0 && (size_t)n < sizeof(name));
		assert_int_equal(json_array_append_new(pools, json_pack("{s:s}", "name", name)), 0);
		assert_int_equal(
		    json_object_set_new(
			res, name, json_pack("{s:{s:i,s:i}}", "space", "total", 10, "used", 1)),
		    0);
	}
	snap.pools = pools;
	snap.pool_resources = res;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_int_equal(json_array_size(json_object_get(body, "storage_pool_usages")),
			 AGENT_STATUS_MAX_POOL_USAGES);
	json_decref(body);
	json_decref(pools);
	json_decref(res);
}

/* Sums of hostile member figures saturate instead of overflowing. */
static void test_capacity_saturates(void **state)
{
	struct lxd_snapshot snap = {
	    .member_resources = parse("{\"a\":{\"memory\":{\"total\":9223372036854775807}},"
				      "\"b\":{\"memory\":{\"total\":9223372036854775807}}}"),
	};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	assert_int_equal(num(body, "memory_total_amount"), INT64_MAX);
	json_decref(body);
	json_decref(snap.member_resources);
}

/* The input is borrowed: reference counts are unchanged afterwards. */
static void test_inputs_borrowed(void **state)
{
	json_t *instances = parse("[{\"status\":\"Running\"}]");
	struct lxd_snapshot snap = {.instances = instances};
	json_t *body;

	(void)state;
	body = agent_status_build(&snap);
	assert_non_null(body);
	json_decref(body);
	assert_int_equal(instances->refcount, 1);
	json_decref(instances);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_standalone_fixtures), cmocka_unit_test(test_clustered_fixtures),
	    cmocka_unit_test(test_cluster_members),	cmocka_unit_test(test_empty_snapshot),
	    cmocka_unit_test(test_wrong_types),		cmocka_unit_test(test_wrong_containers),
	    cmocka_unit_test(test_pools_without_list),	cmocka_unit_test(test_metrics_edges),
	    cmocka_unit_test(test_status_kinds_cap),	cmocka_unit_test(test_pool_usages_cap),
	    cmocka_unit_test(test_capacity_saturates),	cmocka_unit_test(test_inputs_borrowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
