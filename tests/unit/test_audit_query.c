/*
 * test_audit_query.c - GET /1.0/audit's query string and cursor
 * (src/server/audit_query.c): defaults, each filter, percent-decoding,
 * and a 400 (with a reason) for everything malformed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/audit_query.h"

static struct audit_query q;

static void parse_ok(const char *s)
{
	const char *why = "unset";

	if (audit_query_parse(s ? slice_cstr(s) : SLICE_NULL, &q, &why) != 0)
		fail_msg("%s: refused: %s", s, why);
	assert_null(why);
}

static void parse_bad(const char *s)
{
	const char *why = NULL;

	if (audit_query_parse(slice_cstr(s), &q, &why) != -EINVAL)
		fail_msg("%s: accepted", s);
	assert_non_null(why);
	assert_true(strlen(why) > 10);
}

static void test_defaults(void **state)
{
	(void)state;
	parse_ok(NULL);
	assert_null(q.f.cluster);
	assert_null(q.f.actor);
	assert_null(q.f.owner);
	assert_int_equal(q.f.status_min, 0);
	assert_int_equal(q.f.status_max, 999);
	assert_int_equal(q.f.since, 0);
	assert_true(q.f.until == INT64_MAX);
	assert_int_equal(q.f.limit, AUDIT_QUERY_DEFAULT_LIMIT);
	assert_int_equal(q.f.has_after, 0);
	parse_ok("");
	parse_ok("&&");
	assert_int_equal(q.f.limit, 100);
}

static void test_filters(void **state)
{
	(void)state;
	parse_ok("cluster=lxd1&actor=token%3Aabcdef012345&status=404&limit=1000");
	assert_string_equal(q.f.cluster, "lxd1");
	assert_string_equal(q.f.actor, "token:abcdef012345");
	assert_int_equal(q.f.status_min, 404);
	assert_int_equal(q.f.status_max, 404);
	assert_int_equal(q.f.limit, 1000);
	parse_ok("status=5xx");
	assert_int_equal(q.f.status_min, 500);
	assert_int_equal(q.f.status_max, 599);
	parse_ok("status=2XX&limit=1");
	assert_int_equal(q.f.status_min, 200);
	assert_int_equal(q.f.status_max, 299);
	assert_int_equal(q.f.limit, 1);
	/* '+' is itself, so an offset can be written as it is. */
	parse_ok("since=2026-01-01T02:00:00+02:00&until=2026-01-01T00:00:10Z");
	assert_int_equal(q.f.since, 1767225600);
	assert_int_equal(q.f.until, 1767225610);
	parse_ok("since=2026-01-01T00%3A00%3A00Z&until=2026-01-01T00:00:00Z");
	assert_int_equal(q.f.since, q.f.until);
	parse_ok("actor=api-token%3Aci%2Dbot");
	assert_string_equal(q.f.actor, "api-token:ci-bot");
}

static void test_cursor(void **state)
{
	char c[AUDIT_CURSOR_LEN + 1], query[64];
	int64_t at = 0, id = 0;

	(void)state;
	audit_query_cursor_encode(1767225600, 42, c);
	assert_int_equal(strlen(c), AUDIT_CURSOR_LEN);
	assert_int_equal(audit_query_cursor_decode(slice_cstr(c), &at, &id), 0);
	assert_int_equal(at, 1767225600);
	assert_int_equal(id, 42);
	audit_query_cursor_encode(INT64_MAX, INT64_MAX, c);
	assert_int_equal(audit_query_cursor_decode(slice_cstr(c), &at, &id), 0);
	assert_true(at == INT64_MAX && id == INT64_MAX);
	assert_true((size_t)snprintf(query, sizeof(query), "cursor=%s", c) < sizeof(query));
	parse_ok(query);
	assert_int_equal(q.f.has_after, 1);
	assert_true(q.f.after_at == INT64_MAX && q.f.after_id == INT64_MAX);
	/* What the encoder never writes. */
	assert_int_equal(audit_query_cursor_decode(LIT(""), &at, &id), -EINVAL);
	assert_int_equal(audit_query_cursor_decode(LIT("00000000696a1a80000000000000002"), &at, &id),
			 -EINVAL);
	assert_int_equal(
	    audit_query_cursor_decode(LIT("00000000696a1a80000000000000002a0"), &at, &id), -EINVAL);
	assert_int_equal(audit_query_cursor_decode(LIT("00000000696A1A80000000000000002a"), &at, &id),
			 -EINVAL); /* upper case */
	assert_int_equal(audit_query_cursor_decode(LIT("8000000000000000000000000000002a"), &at, &id),
			 -EINVAL); /* above INT64_MAX */
	assert_int_equal(audit_query_cursor_decode(LIT("00000000696a1a800000000000000000"), &at, &id),
			 -EINVAL); /* id 0 */
	assert_int_equal(audit_query_cursor_decode(LIT("00000000696a1a8g000000000000002a"), &at, &id),
			 -EINVAL);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "limit=0",
	    "limit=1001",
	    "limit=-1",
	    "limit=abc",
	    "limit=1e3",
	    "limit=",
	    "limit",
	    "status=6xx",
	    "status=0xx",
	    "status=600",
	    "status=99",
	    "status=2x",
	    "status=20x",
	    "status=4040",
	    "since=yesterday",
	    "since=2026-01-01",
	    "until=2026-13-01T00:00:00Z",
	    "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
	    "cursor=abc",
	    "cursor=",
	    "cluster=",
	    "cluster=a%",
	    "cluster=a%4",
	    "cluster=a%zz",
	    "cluster=a%00b",
	    "cluster=a%0ab",
	    "actor=%7f",
	    "cluster=a&cluster=b",
	    "limit=5&limit=5",
	    "project=default",
	    "Cluster=a",
	    "recursion=1",
	    "=x",
	};
	char big[600];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
	memcpy(big, "actor=", 6);
	memset(big + 6, 'a', sizeof(big) - 7);
	big[sizeof(big) - 1] = '\0';
	parse_bad(big); /* longer than AUDIT_QUERY_VALUE_MAX */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_cursor),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
