/*
 * test_cluster_json.c - the cluster object built from a heartbeat, which is
 * peer data: counts are summed without overflow and odd types are ignored.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "server/server.h"

static json_int_t count_of(const char *status_json, const char *key)
{
	struct store_cluster c = {0};
	json_t *o;
	json_int_t v;

	c.name = (char *)"c1";
	c.status_json = (char *)status_json;
	c.disk_threshold = c.memory_threshold = 80;
	o = cluster_to_json(&c);
	v = json_integer_value(json_object_get(o, key));
	json_decref(o);
	return v;
}

static void test_counts(void **state)
{
	(void)state;
	assert_int_equal(count_of("{\"instance_statuses\":[{\"status\":\"Running\",\"count\":2},"
				  "{\"status\":\"Stopped\",\"count\":3}]}",
				  "instance_count"),
			 5);
	/* Found by fuzz_cluster_json: two huge counts overflowed the sum (UB). */
	assert_int_equal(count_of("{\"instance_statuses\":[{\"status\":\"A\",\"count\":"
				  "9223372036854775807},{\"status\":\"B\",\"count\":"
				  "9223372036854775807}]}",
				  "instance_count"),
			 LLONG_MAX);
	/* Negative counts and wrong types are left out. */
	assert_int_equal(count_of("{\"member_statuses\":[{\"status\":\"Online\",\"count\":-4},"
				  "{\"status\":\"Online\",\"count\":\"x\"},{\"status\":1,\"count\":1}]}",
				  "member_count"),
			 0);
	assert_int_equal(count_of("not json", "member_count"), 0);
	assert_int_equal(count_of(NULL, "ceph_count"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
