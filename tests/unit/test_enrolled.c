/* test_enrolled.c - the in-memory set of enrolled fingerprints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/enrolled.h"

static void fp_of(int i, char out[65])
{
	snprintf(out, 65, "%064x", i);
}

static void test_add_remove(void **state)
{
	struct enrolled *e = enrolled_new();
	char fp[65];
	int i;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < 10000; i++) {
		fp_of(i, fp);
		assert_int_equal(enrolled_add(e, fp), 0);
	}
	fp_of(5, fp);
	assert_int_equal(enrolled_add(e, fp), 0); /* twice: still one */
	assert_int_equal(enrolled_count(e), 10000);
	for (i = 0; i < 10000; i += 2) {
		fp_of(i, fp);
		enrolled_remove(e, fp);
	}
	enrolled_remove(e, fp); /* not there any more: nothing happens */
	enrolled_remove(e, NULL);
	assert_int_equal(enrolled_count(e), 5000);
	for (i = 0; i < 10000; i++) {
		fp_of(i, fp);
		assert_int_equal(enrolled_has(e, fp), i % 2);
		assert_int_equal(enrolled_session_filter(fp, e), i % 2);
	}
	assert_false(enrolled_has(e, NULL));
	assert_int_equal(enrolled_add(e, "short"), -EINVAL);
	assert_int_equal(enrolled_add(e, NULL), -EINVAL);
	enrolled_free(e);
	enrolled_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
