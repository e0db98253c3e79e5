/* test_duration.c - duration_parse and duration_format (src/common/duration.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/duration.h"

static int64_t parse_ok(const char *s)
{
	int64_t v = -1;

	assert_int_equal(duration_parse(slice_cstr(s), &v), 0);
	return v;
}

static void test_duration_units(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("90s"), 90);
	assert_int_equal(parse_ok("15m"), 900);
	assert_int_equal(parse_ok("12h"), 12 * 3600);
	assert_int_equal(parse_ok("7d"), 7 * 86400);
	assert_int_equal(parse_ok("90d"), 90 * 86400);
	assert_int_equal(parse_ok("2w"), 14 * 86400);
	assert_int_equal(parse_ok("1h30m"), 5400);
	assert_int_equal(parse_ok("30m1h"), 5400); /* any order */
	assert_int_equal(parse_ok("1d0h"), 86400);
	assert_int_equal(parse_ok("007s"), 7);
	assert_int_equal(parse_ok("2s"), 2);
}

static void test_duration_refused(void **state)
{
	static const char *const bad[] = {
	    "",	   "0s",  "0",	  "90",	 "s",	"10x",	 "-5s",	  "+5s",   " 5s", "5s ",
	    "5 s", "5S",  "1.5h", "5ss", "h5",	"1h-1m", "5s\n", "1e3s", "0x10s", "5μs",
	};
	int64_t v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(duration_parse(slice_cstr(bad[i]), &v), -EINVAL);
		assert_int_equal(v, 42); /* untouched on failure */
	}
	assert_int_equal(duration_parse(SLICE_NULL, &v), -EINVAL);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(duration_parse(slice_make("15mXX", 3), &v), 0);
	assert_int_equal(v, 900);
	assert_int_equal(duration_parse(slice_make("15mXX", 2), &v), -EINVAL);
}

static void test_duration_limits(void **state)
{
	int64_t v = 0;

	(void)state;
	assert_int_equal(duration_parse(LIT("36600d"), &v), 0);
	assert_int_equal(v, DURATION_MAX);
	assert_int_equal(duration_parse(LIT("36601d"), &v), -EINVAL);
	assert_int_equal(duration_parse(LIT("36600d1s"), &v), -EINVAL);
	assert_int_equal(duration_parse(LIT("99999999999999999999999s"), &v), -EINVAL);
	assert_int_equal(duration_parse(LIT("9223372036854775807w"), &v), -EINVAL);
}

static void test_duration_format(void **state)
{
	char out[24];

	(void)state;
	assert_int_equal(duration_format(90 * 86400, out, sizeof(out)), 0);
	assert_string_equal(out, "90d");
	assert_int_equal(duration_format(14 * 86400, out, sizeof(out)), 0);
	assert_string_equal(out, "2w");
	assert_int_equal(duration_format(900, out, sizeof(out)), 0);
	assert_string_equal(out, "15m");
	assert_int_equal(duration_format(5400, out, sizeof(out)), 0);
	assert_string_equal(out, "90m");
	assert_int_equal(duration_format(61, out, sizeof(out)), 0);
	assert_string_equal(out, "61s");
	assert_int_equal(duration_format(0, out, sizeof(out)), 0);
	assert_string_equal(out, "0s");
	assert_int_equal(duration_format(86400, out, 2), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_units),
	    cmocka_unit_test(test_duration_refused),
	    cmocka_unit_test(test_duration_limits),
	    cmocka_unit_test(test_duration_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
