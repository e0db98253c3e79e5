/* test_netaddr.c - addresses and CIDR ranges for --trusted-proxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/netaddr.h"

static int in(const char *cidr, const char *addr)
{
	struct net_cidr c;
	struct net_addr a;

	assert_int_equal(net_cidr_parse(cidr, &c), 0);
	assert_int_equal(net_addr_parse(addr, strlen(addr), &a), 0);
	return net_cidr_contains(&c, &a);
}

static void test_parse(void **state)
{
	static const char *const bad[] = {"",	     " ",	  "1.2.3",     "1.2.3.4.5", "256.1.1.1",
					  "1.2.3.4x", "::g",	  "[::1",      "1.2.3.4:80", "[1.2.3.4]x",
					  "unknown",  "_hidden", "1.2.3.4 5"};
	struct net_addr a;
	char out[NET_ADDR_TEXT_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(net_addr_parse(bad[i], strlen(bad[i]), &a), 0);
	assert_int_equal(net_addr_parse(" 192.0.2.1\t", 11, &a), 0);
	net_addr_format(&a, out);
	assert_string_equal(out, "192.0.2.1");
	assert_int_equal(net_addr_parse("[2001:DB8::1]", 13, &a), 0);
	net_addr_format(&a, out);
	assert_string_equal(out, "2001:db8::1");
	/* IPv4-mapped IPv6 is the IPv4 address. */
	assert_int_equal(net_addr_parse("::ffff:10.1.2.3", 15, &a), 0);
	assert_int_equal(a.v6, 0);
	net_addr_format(&a, out);
	assert_string_equal(out, "10.1.2.3");
	/* An embedded NUL is not an address. */
	assert_int_not_equal(net_addr_parse("1.2.3.4\0", 8, &a), 0);
}

static void test_cidr(void **state)
{
	struct net_cidr c;
	static const char *const bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "::/129",
					  "10.0.0.0/8x", "/8",	      "10.0.0.0/ 8", ""};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(net_cidr_parse(bad[i], &c), 0);
	assert_true(in("10.0.0.0/8", "10.255.1.2"));
	assert_false(in("10.0.0.0/8", "11.0.0.1"));
	assert_true(in("192.168.1.0/25", "192.168.1.127"));
	assert_false(in("192.168.1.0/25", "192.168.1.128"));
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	assert_false(in("0.0.0.0/0", "::1"));
	assert_true(in("127.0.0.1", "127.0.0.1"));
	assert_false(in("127.0.0.1", "127.0.0.2"));
	assert_true(in("fd00::/8", "fdab::1"));
	assert_false(in("fd00::/8", "fe80::1"));
	assert_true(in("::1", "[::1]"));
	assert_true(in("10.0.0.0/8", "::ffff:10.9.9.9"));
	assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_cidr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
