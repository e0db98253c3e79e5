/* proxy_proto.c - the PROXY protocol header, v1 and v2 (see proxy_proto.h). */
#include "net/proxy_proto.h"

#include <string.h>

#include "common/slice.h"

static const char proxy_proto_v1_sig[] = "PROXY ";
static const unsigned char proxy_proto_v2_sig[PROXY_PROTO_V2_SIG_LEN] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* v2 families and transports (high and low nibble of the 14th byte). */
enum { PP2_AF_UNSPEC, PP2_AF_INET, PP2_AF_INET6, PP2_AF_UNIX, PP2_AF_MAX = PP2_AF_UNIX };
enum { PP2_TP_UNSPEC, PP2_TP_STREAM, PP2_TP_DGRAM, PP2_TP_MAX = PP2_TP_DGRAM };
#define PP2_CMD_LOCAL 0x0
#define PP2_CMD_PROXY 0x1
#define PP2_TLV_HEAD 3 /* type, 16-bit length */

/* Bytes of the address block of each family: two addresses, two ports. */
static const size_t pp2_addr_len[PP2_AF_MAX + 1] = {0, 2 * 4 + 2 * 2, 2 * 16 + 2 * 2, 2 * 108};

static enum proxy_proto_status pp_invalid(struct proxy_proto_header *out, const char *why)
{
	out->error = why;
	return PROXY_PROTO_INVALID;
}

/* Whether the n bytes at p match the start of the n-or-longer sig. */
static int pp_prefix_matches(const unsigned char *p, size_t n, const void *sig, size_t siglen)
{
	return memcmp(p, sig, n < siglen ? n : siglen) == 0;
}

static unsigned pp_be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* ---- version 1 ---- */

/* The protocol token after "PROXY ": what follows it, and its length. */
struct pp_v1_proto {
	const char *name;
	size_t len;
	int v6; /* -1: UNKNOWN */
};

static const struct pp_v1_proto pp_v1_protos[] = {
	{"TCP4 ", 5, 0},
	{"TCP6 ", 5, 1},
	{"UNKNOWN", 7, -1},
};

/*
 * The token the bytes after "PROXY " are (or may become): NULL when they
 * match none. With fewer bytes than the shortest token more than one could
 * match; the first is returned, which is fine as every caller then waits.
 */
static const struct pp_v1_proto *pp_v1_proto_of(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(pp_v1_protos) / sizeof(pp_v1_protos[0]); i++)
		if (pp_prefix_matches(p, n, pp_v1_protos[i].name, pp_v1_protos[i].len))
			return &pp_v1_protos[i];
	return NULL;
}

static int pp_v1_addr_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
	       ch == '.' || ch == ':' || ch == ' ';
}

/* A decimal number of at most max_digits digits without a leading zero. */
static int pp_v1_decimal(struct slice s, size_t max_digits, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (s.len == 0 || s.len > max_digits || (s.len > 1 && s.base[0] == '0'))
		return -1;
	for (i = 0; i < s.len; i++) {
		if (s.base[i] < '0' || s.base[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s.base[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Exactly four decimal numbers 0..255 without leading zeros, dot-separated. */
static int pp_v1_ipv4(struct slice s, struct net_addr *out)
{
	size_t start = 0, i, part = 0;
	unsigned long v;

	memset(out, 0, sizeof(*out));
	for (i = 0; i <= s.len; i++) {
		if (i < s.len && s.base[i] != '.')
			continue;
		if (part == 4 ||
		    pp_v1_decimal(slice_make(s.base + start, i - start), 3, 255, &v) < 0)
			return -1;
		out->bytes[part++] = (uint8_t)v;
		start = i + 1;
	}
	return part == 4 ? 0 : -1;
}

/* IPv6 text: hex digits, colons (at least one) and the dots of an embedded IPv4. */
static int pp_v1_ipv6(struct slice s, struct net_addr *out)
{
	if (s.len == 0 || memchr(s.base, ':', s.len) == NULL)
		return -1;
	return net_addr_parse(s.base, s.len, out);
}

static int pp_v1_port(struct slice s, uint16_t *out)
{
	unsigned long v;

	if (pp_v1_decimal(s, 5, 65535, &v) < 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* The next field of *rest up to a single space (or the end); empty: -1. */
static int pp_v1_field(struct slice *rest, int last, struct slice *field)
{
	const char *sp = memchr(rest->base, ' ', rest->len);
	size_t n = sp ? (size_t)(sp - rest->base) : rest->len;

	if (n == 0 || (last ? sp != NULL : sp == NULL))
		return -1;
	*field = slice_make(rest->base, n);
	rest->base += sp ? n + 1 : n;
	rest->len -= sp ? n + 1 : n;
	return 0;
}

/* "SRC DST SPORT DPORT" of a TCP4 or TCP6 line (without the CRLF). */
static enum proxy_proto_status pp_v1_addresses(struct slice rest, int v6,
					       struct proxy_proto_header *out)
{
	struct slice src, dst, sport, dport;
	int (*addr)(struct slice, struct net_addr *) = v6 ? pp_v1_ipv6 : pp_v1_ipv4;

	if (pp_v1_field(&rest, 0, &src) < 0 || pp_v1_field(&rest, 0, &dst) < 0 ||
	    pp_v1_field(&rest, 0, &sport) < 0 || pp_v1_field(&rest, 1, &dport) < 0)
		return pp_invalid(out, "v1: not four single-space separated fields");
	if (addr(src, &out->src) < 0 || addr(dst, &out->dst) < 0)
		return pp_invalid(out, "v1: bad address");
	if (pp_v1_port(sport, &out->src_port) < 0 || pp_v1_port(dport, &out->dst_port) < 0)
		return pp_invalid(out, "v1: bad port");
	out->has_addr = 1;
	return PROXY_PROTO_DONE;
}

/*
 * The end of the line: the offset of its CR (CRLF complete) or -1 with
 * *status MORE (not yet seen) or INVALID (a lone CR or LF, or no CRLF in
 * the first PROXY_PROTO_V1_MAX_LEN bytes).
 */
static long pp_v1_line_end(const unsigned char *p, size_t len, struct proxy_proto_header *out,
			   enum proxy_proto_status *status)
{
	size_t n = len < PROXY_PROTO_V1_MAX_LEN ? len : PROXY_PROTO_V1_MAX_LEN, i;

	*status = PROXY_PROTO_MORE;
	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			*status = pp_invalid(out, "v1: LF without CR");
			return -1;
		}
		if (p[i] != '\r')
			continue;
		if (i + 1 >= n) {
			if (i + 1 == PROXY_PROTO_V1_MAX_LEN)
				*status = pp_invalid(out, "v1: no CRLF within 107 bytes");
			return -1;
		}
		if (p[i + 1] != '\n')
			*status = pp_invalid(out, "v1: CR without LF");
		return *status == PROXY_PROTO_MORE ? (long)i : -1;
	}
	if (n == PROXY_PROTO_V1_MAX_LEN)
		*status = pp_invalid(out, "v1: no CRLF within 107 bytes");
	return -1;
}

static enum proxy_proto_status pp_v1(const unsigned char *p, size_t len,
				     struct proxy_proto_header *out)
{
	const size_t siglen = sizeof(proxy_proto_v1_sig) - 1;
	const struct pp_v1_proto *proto;
	enum proxy_proto_status st;
	long end;
	size_t i;

	out->version = 1;
	if (len <= siglen)
		return PROXY_PROTO_MORE;
	proto = pp_v1_proto_of(p + siglen, len - siglen);
	if (proto == NULL)
		return pp_invalid(out, "v1: protocol not TCP4, TCP6 or UNKNOWN");
	/* Characters are checked as they come, the fields once the line is whole. */
	for (i = siglen + proto->len; proto->v6 >= 0 && i < len && p[i] != '\r' && p[i] != '\n';
	     i++)
		if (!pp_v1_addr_char(p[i]))
			return pp_invalid(out, "v1: unexpected character");
	end = pp_v1_line_end(p, len, out, &st);
	if (end < 0)
		return st;
	if ((size_t)end < siglen + proto->len)
		return pp_invalid(out, "v1: line ends inside the protocol");
	out->len = (size_t)end + 2;
	if (proto->v6 < 0)
		return PROXY_PROTO_DONE; /* UNKNOWN: the rest of the line is ignored */
	return pp_v1_addresses(slice_make((const char *)p + siglen + proto->len,
					  (size_t)end - siglen - proto->len),
			       proto->v6, out);
}

/* ---- version 2 ---- */

/* The TLVs after the addresses must be whole; their content is ignored. */
static int pp_v2_tlvs_whole(const unsigned char *p, size_t off, size_t end)
{
	while (off < end) {
		if (end - off < PP2_TLV_HEAD || end - off - PP2_TLV_HEAD < pp_be16(p + off + 1))
			return -1;
		off += PP2_TLV_HEAD + pp_be16(p + off + 1);
	}
	return 0;
}

static void pp_v2_take_addresses(const unsigned char *a, int fam, struct proxy_proto_header *out)
{
	size_t alen = fam == PP2_AF_INET ? 4 : 16;

	net_addr_from_bytes(fam == PP2_AF_INET6, a, &out->src);
	net_addr_from_bytes(fam == PP2_AF_INET6, a + alen, &out->dst);
	out->src_port = (uint16_t)pp_be16(a + 2 * alen);
	out->dst_port = (uint16_t)pp_be16(a + 2 * alen + 2);
	out->has_addr = 1;
}

/* Checks the fixed 16 bytes as far as they have come. */
static enum proxy_proto_status pp_v2_head(const unsigned char *p, size_t len,
					  struct proxy_proto_header *out)
{
	size_t total;
	int fam;

	if (len > 12 && (p[12] >> 4) != 2)
		return pp_invalid(out, "v2: version not 2");
	if (len > 12 && (p[12] & 0xf) > PP2_CMD_PROXY)
		return pp_invalid(out, "v2: unknown command");
	if (len > 13 && ((p[13] >> 4) > PP2_AF_MAX || (p[13] & 0xf) > PP2_TP_MAX))
		return pp_invalid(out, "v2: unknown address family or transport");
	if (len < PROXY_PROTO_V2_HEAD_LEN)
		return PROXY_PROTO_MORE;
	total = PROXY_PROTO_V2_HEAD_LEN + pp_be16(p + 14);
	if (total > PROXY_PROTO_MAX_LEN)
		return pp_invalid(out, "v2: header longer than 4096 bytes");
	fam = p[13] >> 4;
	if ((p[12] & 0xf) == PP2_CMD_PROXY && total - PROXY_PROTO_V2_HEAD_LEN < pp2_addr_len[fam])
		return pp_invalid(out, "v2: address block shorter than its family's addresses");
	out->len = total;
	return len < total ? PROXY_PROTO_MORE : PROXY_PROTO_DONE;
}

static enum proxy_proto_status pp_v2(const unsigned char *p, size_t len,
				     struct proxy_proto_header *out)
{
	enum proxy_proto_status st;
	int fam;

	out->version = 2;
	st = pp_v2_head(p, len, out);
	if (st != PROXY_PROTO_DONE) {
		if (st == PROXY_PROTO_MORE)
			out->len = 0;
		return st;
	}
	/* LOCAL (a health check): the block, family included, is ignored. */
	if ((p[12] & 0xf) == PP2_CMD_LOCAL)
		return PROXY_PROTO_DONE;
	fam = p[13] >> 4;
	/* With an UNSPEC family nothing says where TLVs would start. */
	if (fam != PP2_AF_UNSPEC &&
	    pp_v2_tlvs_whole(p, PROXY_PROTO_V2_HEAD_LEN + pp2_addr_len[fam], out->len) < 0)
		return pp_invalid(out, "v2: truncated TLV");
	if ((fam == PP2_AF_INET || fam == PP2_AF_INET6) && (p[13] & 0xf) == PP2_TP_STREAM)
		pp_v2_take_addresses(p + PROXY_PROTO_V2_HEAD_LEN, fam, out);
	return PROXY_PROTO_DONE;
}

enum proxy_proto_status proxy_proto_parse(const void *data, size_t len,
					  struct proxy_proto_header *out)
{
	const unsigned char *p = data;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PROXY_PROTO_MORE;
	if (pp_prefix_matches(p, len, proxy_proto_v1_sig, sizeof(proxy_proto_v1_sig) - 1))
		return pp_v1(p, len, out);
	if (pp_prefix_matches(p, len, proxy_proto_v2_sig, sizeof(proxy_proto_v2_sig)))
		return pp_v2(p, len, out);
	return pp_invalid(out, "no PROXY protocol signature");
}
