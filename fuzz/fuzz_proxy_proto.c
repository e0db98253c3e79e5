/*
 * fuzz_proxy_proto.c - the PROXY protocol header parser (src/net/proxy_proto.c).
 *
 * The input is the first bytes of a connection from a listed load balancer.
 * Invariants, beyond "no crash, no out-of-bounds read":
 *   - the answer for the whole input agrees with the answers for its
 *     prefixes: a complete header of N bytes is MORE for every shorter
 *     prefix (sampled) and the same header with anything behind it; an
 *     invalid input stays invalid whatever follows;
 *   - MORE only below the cap (conn.c then ends the connection), INVALID
 *     always with a reason;
 *   - a complete header has the shape of its version: v1 at most 107 bytes
 *     ending in CRLF, v2 exactly 16 + its length field; a v1 TCP4 line is
 *     canonical, so printing what was parsed gives the same bytes back; a v2
 *     address is the bytes of the header.
 */
#include <stdio.h>

#include "fuzz.h"
#include "net/proxy_proto.h"

static struct proxy_proto_header fuzz_pp_last;

static enum proxy_proto_status fuzz_parse(const uint8_t *data, size_t len)
{
	enum proxy_proto_status st = proxy_proto_parse(data, len, &fuzz_pp_last);

	FUZZ_CHECK(st == PROXY_PROTO_MORE || st == PROXY_PROTO_DONE || st == PROXY_PROTO_INVALID);
	FUZZ_CHECK((st == PROXY_PROTO_INVALID) == (fuzz_pp_last.error != NULL));
	FUZZ_CHECK(st != PROXY_PROTO_MORE || len < PROXY_PROTO_MAX_LEN);
	FUZZ_CHECK(st != PROXY_PROTO_DONE || (fuzz_pp_last.len > 0 && fuzz_pp_last.len <= len));
	return st;
}

static void fuzz_check_v1(const uint8_t *data, const struct proxy_proto_header *h)
{
	char line[PROXY_PROTO_V1_MAX_LEN + 1], src[NET_ADDR_TEXT_MAX], dst[NET_ADDR_TEXT_MAX];
	int n;

	FUZZ_CHECK(h->len >= 15 && h->len <= PROXY_PROTO_V1_MAX_LEN);
	FUZZ_CHECK(memcmp(data, "PROXY ", 6) == 0);
	FUZZ_CHECK(data[h->len - 2] == '\r' && data[h->len - 1] == '\n');
	FUZZ_CHECK(memchr(data, '\n', h->len - 1) == NULL);
	if (!h->has_addr || memcmp(data + 6, "TCP4 ", 5) != 0)
		return;
	FUZZ_CHECK(!h->src.v6 && !h->dst.v6);
	net_addr_format(&h->src, src);
	net_addr_format(&h->dst, dst);
	n = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n", src, dst,
		     (unsigned)h->src_port, (unsigned)h->dst_port);
	FUZZ_CHECK(n > 0 && (size_t)n == h->len && memcmp(line, data, h->len) == 0);
}

static void fuzz_check_v2(const uint8_t *data, const struct proxy_proto_header *h)
{
	size_t alen;

	FUZZ_CHECK(h->len == PROXY_PROTO_V2_HEAD_LEN + ((size_t)data[14] << 8 | data[15]));
	FUZZ_CHECK(h->len <= PROXY_PROTO_MAX_LEN);
	FUZZ_CHECK((data[12] >> 4) == 2);
	if (!h->has_addr)
		return;
	FUZZ_CHECK(data[12] == 0x21 && (data[13] == 0x11 || data[13] == 0x21));
	alen = data[13] == 0x11 ? 4 : 16;
	if (h->src.v6)
		FUZZ_CHECK(memcmp(h->src.bytes, data + 16, 16) == 0);
	else
		FUZZ_CHECK(memcmp(h->src.bytes, data + 16 + alen - 4, 4) == 0);
	FUZZ_CHECK(h->src_port == (data[16 + 2 * alen] << 8 | data[17 + 2 * alen]));
	FUZZ_CHECK(h->dst_port == (data[18 + 2 * alen] << 8 | data[19 + 2 * alen]));
}

/* Shorter prefixes of a complete or incomplete header are MORE (sampled). */
static void fuzz_check_prefixes(const uint8_t *data, size_t end)
{
	size_t k, step = end > 256 ? end / 64 : 1;

	for (k = 0; k < end; k += step)
		FUZZ_CHECK(fuzz_parse(data, k) == PROXY_PROTO_MORE);
	if (end > 0)
		FUZZ_CHECK(fuzz_parse(data, end - 1) == PROXY_PROTO_MORE);
}

/* What follows the bytes so far cannot make an invalid input valid. */
static void fuzz_check_stays_invalid(const uint8_t *data, size_t size)
{
	static const char tails[][8] = {"\r\n", "\n", " 1 2\r\n", "\0\0\0\0"};
	uint8_t *more = malloc(size + 8);
	size_t i;

	if (more == NULL)
		abort();
	memcpy(more, data, size);
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		memcpy(more + size, tails[i], 8);
		FUZZ_CHECK(fuzz_parse(more, size + 8) == PROXY_PROTO_INVALID);
	}
	free(more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_proto_header h;
	enum proxy_proto_status st = fuzz_parse(data, size);

	h = fuzz_pp_last;
	if (st == PROXY_PROTO_INVALID) {
		fuzz_check_stays_invalid(data, size);
		return 0;
	}
	if (st == PROXY_PROTO_MORE) {
		fuzz_check_prefixes(data, size);
		return 0;
	}
	FUZZ_CHECK(h.version == 1 || h.version == 2);
	if (h.version == 1)
		fuzz_check_v1(data, &h);
	else
		fuzz_check_v2(data, &h);
	fuzz_check_prefixes(data, h.len);
	/* Only the header's own bytes decide. */
	FUZZ_CHECK(fuzz_parse(data, h.len) == PROXY_PROTO_DONE);
	FUZZ_CHECK(fuzz_pp_last.len == h.len && fuzz_pp_last.has_addr == h.has_addr &&
		   memcmp(&fuzz_pp_last.src, &h.src, sizeof(h.src)) == 0 &&
		   fuzz_pp_last.src_port == h.src_port);
	return 0;
}
