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

/* --trusted-proxy and --proxy-protocol-from lists: appended, capped, strict. */
static void test_cidr_list(void **state)
{
	static const char *const bad[] = {"", ",", "10.0.0.0/8,", ",10.0.0.0/8", "10.0.0.0/8,,::1",
					  "10.0.0.0/33", "example.com"};
	struct net_cidr list[3];
	struct net_addr a;
	size_t n = 0;

	(void)state;
	assert_int_equal(net_cidr_list_parse("10.0.0.0/8,::1", list, 3, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(net_cidr_list_parse("192.0.2.7", list, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(net_addr_parse("192.0.2.7", 9, &a), 0);
	assert_true(net_cidr_list_contains(list, n, &a));
	assert_int_equal(net_addr_parse("::1", 3, &a), 0);
	assert_true(net_cidr_list_contains(list, n, &a));
	/* Full: one more is refused. */
	assert_int_not_equal(net_cidr_list_parse("10.0.0.1", list, 3, &n), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 0;
		assert_int_not_equal(net_cidr_list_parse(bad[i], list, 3, &n), 0);
	}
}

/* Raw addresses (PROXY protocol v2): 4 or 16 bytes, IPv4-mapped is IPv4. */
static void test_from_bytes(void **state)
{
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 192, 0, 2, 9};
	struct net_addr a;
	char out[NET_ADDR_TEXT_MAX];

	(void)state;
	net_addr_from_bytes(0, (const uint8_t *)"\x0a\x01\x02\x03", &a);
	net_addr_format(&a, out);
	assert_string_equal(out, "10.1.2.3");
	net_addr_from_bytes(1, v6, &a);
	assert_int_equal(a.v6, 1);
	net_addr_format(&a, out);
	assert_string_equal(out, "2001:db8::1");
	net_addr_from_bytes(1, mapped, &a);
	assert_int_equal(a.v6, 0);
	net_addr_format(&a, out);
	assert_string_equal(out, "192.0.2.9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_cidr_list),
	    cmocka_unit_test(test_from_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
