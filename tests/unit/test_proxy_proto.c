/*
 * test_proxy_proto.c - the PROXY protocol header parser (proxy_proto.c):
 * v1 TCP4/TCP6/UNKNOWN, v2 PROXY/LOCAL over IPv4/IPv6/UNIX/UNSPEC, TLVs,
 * every truncation point, oversize, bad signatures, bad fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/proxy_proto.h"

/* A header under test: bytes and length (v2 headers hold NULs). */
struct hdr {
	unsigned char b[PROXY_PROTO_MAX_LEN + 64];
	size_t len;
};

static void hdr_put(struct hdr *h, const void *p, size_t n)
{
	assert_true(h->len + n <= sizeof(h->b));
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

static struct hdr v1(const char *line)
{
	struct hdr h = {.len = 0};

	hdr_put(&h, line, strlen(line));
	return h;
}

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: version/command byte, family/transport byte, then body. */
static struct hdr v2(unsigned ver_cmd, unsigned fam, const void *body, size_t body_len)
{
	struct hdr h = {.len = 0};
	unsigned char head[4] = {(unsigned char)ver_cmd, (unsigned char)fam,
				 (unsigned char)(body_len >> 8), (unsigned char)body_len};

	hdr_put(&h, v2_sig, sizeof(v2_sig));
	hdr_put(&h, head, sizeof(head));
	if (body_len)
		hdr_put(&h, body, body_len);
	return h;
}

static const unsigned char v4_block[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};

static const unsigned char v6_block[36] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* 2001:db8::1 */
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, /* 2001:db8::2 */
	0x00, 0x50, 0xff, 0xff,					    /* 80, 65535 */
};

static void addr_is(const struct net_addr *a, const char *want)
{
	char text[NET_ADDR_TEXT_MAX];

	net_addr_format(a, text);
	assert_string_equal(text, want);
}

/*
 * h parses as DONE, also with payload behind it, and every shorter prefix
 * of it is MORE: the header may come split anywhere, down to byte by byte.
 */
static struct proxy_proto_header done(const struct hdr *h)
{
	struct proxy_proto_header out;
	struct hdr with = *h;
	size_t k;

	for (k = 0; k < h->len; k++) {
		assert_int_equal(proxy_proto_parse(h->b, k, &out), PROXY_PROTO_MORE);
		assert_null(out.error);
	}
	hdr_put(&with, "\x16\x03\x01\x02\x00", 5); /* a ClientHello behind it */
	assert_int_equal(proxy_proto_parse(with.b, with.len, &out), PROXY_PROTO_DONE);
	assert_int_equal(out.len, h->len);
	assert_int_equal(proxy_proto_parse(h->b, h->len, &out), PROXY_PROTO_DONE);
	assert_int_equal(out.len, h->len);
	assert_null(out.error);
	return out;
}

/* h is refused, and no later than when all of it is in. */
static void invalid(const struct hdr *h)
{
	struct proxy_proto_header out;

	assert_int_equal(proxy_proto_parse(h->b, h->len, &out), PROXY_PROTO_INVALID);
	assert_non_null(out.error);
}

static void invalid_v1(const char *line)
{
	struct hdr h = v1(line);

	invalid(&h);
}

static void test_v1_tcp4(void **state)
{
	struct hdr h = v1("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
	struct proxy_proto_header out = done(&h);

	(void)state;
	assert_int_equal(out.version, 1);
	assert_int_equal(out.has_addr, 1);
	addr_is(&out.src, "192.0.2.1");
	addr_is(&out.dst, "198.51.100.2");
	assert_int_equal(out.src_port, 56324);
	assert_int_equal(out.dst_port, 443);
	/* The longest TCP4 line, and the smallest numbers. */
	h = v1("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
	assert_int_equal(h.len, 56);
	out = done(&h);
	assert_int_equal(out.src_port, 65535);
	h = v1("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
	out = done(&h);
	addr_is(&out.src, "0.0.0.0");
	assert_int_equal(out.src_port, 0);
}

static void test_v1_tcp6(void **state)
{
	struct hdr h = v1("PROXY TCP6 2001:db8::1 2001:DB8::2 1 65535\r\n");
	struct proxy_proto_header out = done(&h);

	(void)state;
	assert_int_equal(out.has_addr, 1);
	assert_int_equal(out.src.v6, 1);
	addr_is(&out.src, "2001:db8::1");
	addr_is(&out.dst, "2001:db8::2");
	assert_int_equal(out.src_port, 1);
	assert_int_equal(out.dst_port, 65535);
	/* The longest TCP6 line (104 bytes). */
	h = v1("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	assert_int_equal(h.len, 104);
	done(&h);
	/* An IPv4-mapped address is the IPv4 address, as everywhere else. */
	h = v1("PROXY TCP6 ::ffff:192.0.2.7 ::1 1000 443\r\n");
	out = done(&h);
	assert_int_equal(out.src.v6, 0);
	addr_is(&out.src, "192.0.2.7");
}

static void test_v1_unknown(void **state)
{
	struct hdr h = v1("PROXY UNKNOWN\r\n");
	struct proxy_proto_header out = done(&h);
	char line[200];

	(void)state;
	assert_int_equal(out.len, 15);
	assert_int_equal(out.has_addr, 0);
	/* Anything before the CRLF is ignored, up to the 107-byte worst case. */
	h = v1("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	assert_int_equal(h.len, PROXY_PROTO_V1_MAX_LEN);
	out = done(&h);
	assert_int_equal(out.has_addr, 0);
	h = v1("PROXY UNKNOWN whatever, even TCP4 1.2.3.4\r\n");
	assert_int_equal(done(&h).has_addr, 0);
	/* One byte more than 107 is refused, whenever the 107th is not LF. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 3);
	invalid_v1(line);
	line[106] = 'x';
	line[107] = '\0';
	invalid_v1(line);
	line[106] = '\r';
	assert_int_equal(proxy_proto_parse(line, 107, &out), PROXY_PROTO_INVALID);
}

static void test_v1_bad(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",  /* two spaces */
		"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",  /* trailing space */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",     /* a field missing */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", /* one too many */
		"PROXY TCP4 192.0.2.1\r\n",
		"PROXY TCP4 \r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
		"PROXY\r\n",
		"PROXY TCP4 192.000.2.1 198.51.100.2 1 2\r\n", /* leading zeros */
		"PROXY TCP4 01.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1.5 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0..1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 .0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 1111.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", /* family mismatch */
		"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
		"PROXY TCP6 2001:db8::1 192.0.2.1 1 2\r\n",
		"PROXY TCP6 2001:db8:::1 2001:db8::2 1 2\r\n",
		"PROXY TCP6 [2001:db8::1] 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", /* bad ports */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 99999\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 0443 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 00 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 +2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2x\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 123456 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",	/* lone LF */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",	/* lone CR */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r\n",
		"PROXY UNKNOWN\n",
		"PROXY UNKNOWN\rx\r\n",
		"PROXY TCP4\t192.0.2.1 198.51.100.2 1 2\r\n", /* not a space */
		"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY UNK\r\n",
		"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXYTCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 GET / HTTP/1.1\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proxy_proto_header out;

		if (proxy_proto_parse(bad[i], strlen(bad[i]), &out) != PROXY_PROTO_INVALID)
			fail_msg("not refused: %s", bad[i]);
		assert_non_null(out.error);
	}
	{
		/* An embedded NUL is not an address character. */
		struct hdr h = v1("PROXY TCP4 192.0.2.1");

		hdr_put(&h, "\0 198.51.100.2 1 2\r\n", 20);
		invalid(&h);
	}
}

/* Garbage in an address is refused as soon as it is seen, before any CRLF. */
static void test_v1_early_reject(void **state)
{
	struct proxy_proto_header out;

	(void)state;
	assert_int_equal(proxy_proto_parse("PROXY TCP4 192.0.2.1 x", 22, &out),
			 PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("PROXY TCP7", 10, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("PROXZ", 5, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("PROXY TCP4 192.0.2.1", 20, &out), PROXY_PROTO_MORE);
	/* No CRLF in the first 107 bytes of an address line. */
	{
		char line[120];

		memset(line, '1', sizeof(line));
		memcpy(line, "PROXY TCP4 ", 11);
		assert_int_equal(proxy_proto_parse(line, 106, &out), PROXY_PROTO_MORE);
		assert_int_equal(proxy_proto_parse(line, 107, &out), PROXY_PROTO_INVALID);
		assert_int_equal(proxy_proto_parse(line, sizeof(line), &out), PROXY_PROTO_INVALID);
	}
}

static void test_v2_proxy_ipv4(void **state)
{
	struct hdr h = v2(0x21, 0x11, v4_block, sizeof(v4_block));
	struct proxy_proto_header out = done(&h);

	(void)state;
	assert_int_equal(out.version, 2);
	assert_int_equal(out.len, 28);
	assert_int_equal(out.has_addr, 1);
	addr_is(&out.src, "192.0.2.1");
	addr_is(&out.dst, "198.51.100.2");
	assert_int_equal(out.src_port, 56324);
	assert_int_equal(out.dst_port, 443);
}

static void test_v2_proxy_ipv6(void **state)
{
	struct hdr h = v2(0x21, 0x21, v6_block, sizeof(v6_block));
	struct proxy_proto_header out = done(&h);
	unsigned char mapped[36] = {0};

	(void)state;
	assert_int_equal(out.len, 52);
	assert_int_equal(out.src.v6, 1);
	addr_is(&out.src, "2001:db8::1");
	addr_is(&out.dst, "2001:db8::2");
	assert_int_equal(out.src_port, 80);
	assert_int_equal(out.dst_port, 65535);
	/* ::ffff:203.0.113.9 is the IPv4 address. */
	mapped[10] = mapped[11] = 0xff;
	memcpy(mapped + 12, "\xcb\x00\x71\x09", 4); /* 203.0.113.9 */
	h = v2(0x21, 0x21, mapped, sizeof(mapped));
	out = done(&h);
	assert_int_equal(out.src.v6, 0);
	addr_is(&out.src, "203.0.113.9");
}

/* TLVs after the addresses are skipped (as HAProxy's and AWS's), if whole. */
static void test_v2_tlvs(void **state)
{
	unsigned char body[12 + 3 + 2 + 3 + 0 + 3 + 300];
	struct proxy_proto_header out;
	struct hdr h;
	size_t n = 0;

	(void)state;
	memcpy(body, v4_block, 12);
	n = 12;
	memcpy(body + n, "\x01\x00\x02h2", 5); /* ALPN "h2" */
	n += 5;
	memcpy(body + n, "\x04\x00\x00", 3); /* NOOP, empty */
	n += 3;
	memcpy(body + n, "\xea\x01\x2c", 3); /* AWS-style, 300 bytes */
	n += 3;
	memset(body + n, 'v', 300);
	n += 300;
	h = v2(0x21, 0x11, body, n);
	out = done(&h);
	assert_int_equal(out.len, 16 + n);
	addr_is(&out.src, "192.0.2.1");
	/* After IPv6 addresses too. */
	{
		unsigned char b6[36 + 4];

		memcpy(b6, v6_block, 36);
		memcpy(b6 + 36, "\x02\x00\x01x", 4);
		h = v2(0x21, 0x21, b6, sizeof(b6));
		out = done(&h);
		addr_is(&out.src, "2001:db8::1");
	}
	/* A TLV cut short, or only part of a TLV head, is refused. */
	h = v2(0x21, 0x11, body, 12 + 4);
	invalid(&h);
	h = v2(0x21, 0x11, body, 12 + 2);
	invalid(&h);
	h = v2(0x21, 0x11, body, 12 + 1);
	invalid(&h);
	h = v2(0x21, 0x11, body, n - 1);
	invalid(&h);
}

static void test_v2_local_and_others(void **state)
{
	static unsigned char unix_block[216 + 3];
	struct proxy_proto_header out;
	struct hdr h;

	(void)state;
	/* LOCAL (health checks): the socket's address stays. */
	h = v2(0x20, 0x00, NULL, 0);
	out = done(&h);
	assert_int_equal(out.len, 16);
	assert_int_equal(out.has_addr, 0);
	/* Its length is honoured even with a block, which is ignored. */
	h = v2(0x20, 0x11, v4_block, sizeof(v4_block));
	out = done(&h);
	assert_int_equal(out.len, 28);
	assert_int_equal(out.has_addr, 0);
	h = v2(0x20, 0x11, v4_block, 5);
	assert_int_equal(done(&h).has_addr, 0);
	/* PROXY with UNSPEC, UNIX or DGRAM: valid, socket address kept. */
	h = v2(0x21, 0x00, NULL, 0);
	assert_int_equal(done(&h).has_addr, 0);
	h = v2(0x21, 0x00, "whatever", 8);
	assert_int_equal(done(&h).has_addr, 0);
	memcpy(unix_block, "/run/a.sock", 11);
	memcpy(unix_block + 216, "\x04\x00\x00", 3);
	h = v2(0x21, 0x31, unix_block, sizeof(unix_block));
	assert_int_equal(done(&h).has_addr, 0);
	h = v2(0x21, 0x32, unix_block, 216);
	assert_int_equal(done(&h).has_addr, 0);
	h = v2(0x21, 0x12, v4_block, sizeof(v4_block)); /* UDP */
	assert_int_equal(done(&h).has_addr, 0);
	h = v2(0x21, 0x22, v6_block, sizeof(v6_block));
	assert_int_equal(done(&h).has_addr, 0);
	h = v2(0x21, 0x10, v4_block, sizeof(v4_block)); /* INET, UNSPEC transport */
	assert_int_equal(done(&h).has_addr, 0);
}

static void test_v2_bad(void **state)
{
	struct proxy_proto_header out;
	struct hdr h;

	(void)state;
	h = v2(0x11, 0x11, v4_block, 12); /* version 1 */
	invalid(&h);
	h = v2(0x31, 0x11, v4_block, 12); /* version 3 */
	invalid(&h);
	h = v2(0x22, 0x11, v4_block, 12); /* command 2 */
	invalid(&h);
	h = v2(0x2f, 0x11, v4_block, 12);
	invalid(&h);
	h = v2(0x21, 0x41, v4_block, 12); /* family 4 */
	invalid(&h);
	h = v2(0x21, 0x13, v4_block, 12); /* transport 3 */
	invalid(&h);
	h = v2(0x20, 0xf0, NULL, 0); /* also for LOCAL */
	invalid(&h);
	/* An address block shorter than the family's addresses. */
	h = v2(0x21, 0x11, v4_block, 11);
	invalid(&h);
	h = v2(0x21, 0x21, v6_block, 35);
	invalid(&h);
	h = v2(0x21, 0x31, v6_block, 36);
	invalid(&h);
	/* Wrong bytes are refused at the byte that shows it. */
	h = v2(0x11, 0x11, NULL, 0);
	assert_int_equal(proxy_proto_parse(h.b, 13, &out), PROXY_PROTO_INVALID);
	h = v2(0x21, 0x51, NULL, 0);
	assert_int_equal(proxy_proto_parse(h.b, 13, &out), PROXY_PROTO_MORE);
	assert_int_equal(proxy_proto_parse(h.b, 14, &out), PROXY_PROTO_INVALID);
}

/* The whole v2 header is at most PROXY_PROTO_MAX_LEN bytes, TLVs included. */
static void test_v2_oversize(void **state)
{
	static unsigned char body[PROXY_PROTO_MAX_LEN];
	struct proxy_proto_header out;
	size_t room = PROXY_PROTO_MAX_LEN - 16 - 12 - 3;
	struct hdr h;

	(void)state;
	memcpy(body, v4_block, 12);
	body[12] = 0x04; /* one NOOP TLV filling the rest */
	body[13] = (unsigned char)(room >> 8);
	body[14] = (unsigned char)room;
	h = v2(0x21, 0x11, body, 12 + 3 + room);
	assert_int_equal(h.len, PROXY_PROTO_MAX_LEN);
	assert_int_equal(proxy_proto_parse(h.b, h.len, &out), PROXY_PROTO_DONE);
	assert_int_equal(out.len, PROXY_PROTO_MAX_LEN);
	/* One byte more: refused as soon as the length field is in. */
	body[14] = (unsigned char)(room + 1);
	h = v2(0x21, 0x11, body, 12 + 3 + room + 1);
	assert_int_equal(proxy_proto_parse(h.b, 16, &out), PROXY_PROTO_INVALID);
	h = v2(0x21, 0x11, body, 0);
	h.b[14] = h.b[15] = 0xff;
	assert_int_equal(proxy_proto_parse(h.b, 16, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse(h.b, 15, &out), PROXY_PROTO_MORE);
}

/* Whatever is not a PROXY header is refused at its first wrong byte. */
static void test_signatures(void **state)
{
	struct proxy_proto_header out;
	unsigned char sig[16];
	size_t i;

	(void)state;
	assert_int_equal(proxy_proto_parse("", 0, &out), PROXY_PROTO_MORE);
	assert_int_equal(proxy_proto_parse("\x16\x03\x01", 1, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("GET / HTTP/1.1\r\n", 16, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("POST", 2, &out), PROXY_PROTO_INVALID);
	assert_int_equal(proxy_proto_parse("P", 1, &out), PROXY_PROTO_MORE);
	assert_int_equal(proxy_proto_parse("\r\n\r\n", 4, &out), PROXY_PROTO_MORE);
	assert_int_equal(proxy_proto_parse("\r\n\r\n\r\n", 6, &out), PROXY_PROTO_INVALID);
	/* Each byte of the v2 signature matters, seen at its own position. */
	for (i = 0; i < sizeof(v2_sig); i++) {
		memcpy(sig, v2_sig, sizeof(v2_sig));
		memcpy(sig + 12, "\x21\x11\x00\x0c", 4);
		sig[i] ^= 0x20;
		assert_int_equal(proxy_proto_parse(sig, i + 1, &out), PROXY_PROTO_INVALID);
		assert_int_equal(proxy_proto_parse(sig, sizeof(sig), &out), PROXY_PROTO_INVALID);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v1_early_reject),
		cmocka_unit_test(test_v2_proxy_ipv4),
		cmocka_unit_test(test_v2_proxy_ipv6),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_local_and_others),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_v2_oversize),
		cmocka_unit_test(test_signatures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
