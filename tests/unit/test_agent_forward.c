/*
 * test_agent_forward.c - the agent's path allow-list: what a tunnelled
 * request may reach on the local LXD.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "agent/forward.h"

static int allowed(const char *path)
{
	return forward_path_allowed(slice_cstr(path), NULL, 0);
}

static void test_default_list(void **state)
{
	(void)state;
	assert_true(allowed("/1.0"));
	assert_true(allowed("/1.0/"));
	assert_true(allowed("/1.0/instances?recursion=1"));
	assert_true(allowed("/1.0?x=1"));
	assert_true(allowed("/ui"));
	assert_true(allowed("/ui/assets/app.js"));
	assert_false(allowed("/"));
	assert_false(allowed(""));
	assert_false(allowed("1.0"));
	assert_false(allowed("/1.00"));
	assert_false(allowed("/1.0x/instances"));
	assert_false(allowed("/uix"));
	assert_false(allowed("/internal/database"));
	assert_false(allowed("/1.0/../internal"));
	assert_false(allowed("/1.0/./instances"));
	assert_false(allowed("/1.0/.."));
	assert_false(allowed("/1.0/%2e%2e/internal"));
	assert_false(allowed("/1.0/%2E%2E/internal"));
	assert_false(allowed("/1.0/%2finternal"));
	/* A dot inside a name is fine. */
	assert_true(allowed("/1.0/images/ubuntu.22.04"));
	/* The query is not a path: dots there are fine. */
	assert_true(allowed("/1.0/instances?filter=../x"));
}

/*
 * The path rule of every hop (net/http_hdr.c) replaced the agent's own: it
 * now also refuses, under an allowed prefix, what it used to let through:
 * an encoded backslash or NUL, a raw backslash and empty segments.
 */
static void test_strict_path_rule(void **state)
{
	(void)state;
	assert_false(allowed("/1.0/a%5cb"));
	assert_false(allowed("/1.0/a%5C..%5Cb"));
	assert_false(allowed("/1.0/a\\b"));
	assert_false(allowed("/1.0/a%00"));
	assert_false(allowed("/1.0//instances"));
	assert_false(allowed("/1.0/.%2e/internal"));
	assert_false(allowed("/1.0/%2E./internal"));
	assert_false(allowed("/1.0/a b"));
	assert_true(allowed("/1.0/instances/c1/files?path=/etc/../etc/hosts"));
	assert_true(allowed("/1.0/instances?filter=a//b%2f"));
}

static void test_configured_list(void **state)
{
	struct agent ag;
	const char *const root[] = {"/"};

	(void)state;
	memset(&ag, 0, sizeof(ag));
	assert_int_equal(forward_allow_add(&ag, "/1.0/instances"), 0);
	assert_int_equal(forward_allow_add(&ag, "relative"), -EINVAL);
	assert_int_equal(forward_allow_add(&ag, "/a/../b"), -EINVAL);
	assert_int_equal(forward_allow_add(&ag, "/a%2e"), -EINVAL);
	assert_true(forward_path_allowed(LIT("/1.0/instances/x"), ag.allow, ag.nallow));
	assert_false(forward_path_allowed(LIT("/1.0/images"), ag.allow, ag.nallow));
	assert_false(forward_path_allowed(LIT("/ui"), ag.allow, ag.nallow));
	/* "/" allows every clean path, and still no dot segments. */
	assert_true(forward_path_allowed(LIT("/anything"), root, 1));
	assert_false(forward_path_allowed(LIT("/a/../b"), root, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_list),
		cmocka_unit_test(test_strict_path_rule),
		cmocka_unit_test(test_configured_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
