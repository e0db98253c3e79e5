/* http_hdr.c - the one header table, token-list parser, bearer and path rule (http_hdr.h). */
#include "net/http_hdr.h"

#include <errno.h>

struct http_hdr_entry {
	struct slice name;
	unsigned flags;
};

/* Every header name some hop treats specially; see http_hdr.h for the flags. */
static const struct http_hdr_entry http_hdr_table[] = {
    {LIT("Connection"), HTTP_HDR_HOP},
    {LIT("Keep-Alive"), HTTP_HDR_HOP},
    {LIT("TE"), HTTP_HDR_HOP},
    {LIT("Trailer"), HTTP_HDR_HOP},
    {LIT("Trailers"), HTTP_HDR_HOP}, /* RFC 2616's misspelling, still sent */
    {LIT("Transfer-Encoding"), HTTP_HDR_HOP},
    {LIT("Upgrade"), HTTP_HDR_HOP},
    {LIT("HTTP2-Settings"), HTTP_HDR_HOP},
    {LIT("Host"), HTTP_HDR_FRAMING},
    {LIT("Content-Length"), HTTP_HDR_FRAMING},
    {LIT("Expect"), HTTP_HDR_FRAMING},
    {LIT("Sec-WebSocket-Key"), HTTP_HDR_WS},
    {LIT("Sec-WebSocket-Version"), HTTP_HDR_WS},
    {LIT("Sec-WebSocket-Extensions"), HTTP_HDR_WS},
    {LIT("Sec-WebSocket-Accept"), HTTP_HDR_WS},
    {LIT("Authorization"), HTTP_HDR_NO_CLUSTER},
    {LIT("Forwarded"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
    {LIT("X-Forwarded-For"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
    {LIT("X-Forwarded-Proto"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
    {LIT("X-Forwarded-Host"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
    {LIT("X-Request-Id"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
    {LIT("X-Lxcm-User"), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER},
};

/* Proxy-Connection, Proxy-Authorization, Proxy-Authenticate and any other Proxy-*. */
static const struct slice http_hdr_proxy_prefix = LIT("Proxy-");

unsigned http_hdr_flags(struct slice name)
{
	size_t i;

	for (i = 0; i < sizeof(http_hdr_table) / sizeof(http_hdr_table[0]); i++)
		if (slice_eq_nocase(name, http_hdr_table[i].name))
			return http_hdr_table[i].flags;
	if (name.len > http_hdr_proxy_prefix.len &&
	    slice_eq_nocase(slice_make(name.base, http_hdr_proxy_prefix.len),
			    http_hdr_proxy_prefix))
		return HTTP_HDR_HOP;
	return 0;
}

/* ---- token lists ---- */

static int http_hdr_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

int http_hdr_list_next(struct slice *list, struct slice *tok)
{
	size_t i = 0, start;

	while (i < list->len && http_hdr_list_sep(list->base[i]))
		i++;
	start = i;
	while (i < list->len && !http_hdr_list_sep(list->base[i]))
		i++;
	*tok = slice_make(list->base + start, i - start);
	*list = slice_make(list->base + i, list->len - i);
	return tok->len > 0;
}

int http_hdr_list_has(struct slice list, struct slice token)
{
	struct slice tok;

	if (list.base == NULL)
		return 0;
	while (http_hdr_list_next(&list, &tok))
		if (slice_eq_nocase(tok, token))
			return 1;
	return 0;
}

int http_hdr_has_token(const struct http_header *hdrs, size_t n, struct slice name,
		       struct slice token)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slice_eq_nocase(hdrs[i].name, name) && http_hdr_list_has(hdrs[i].value, token))
			return 1;
	return 0;
}

struct slice http_hdr_get(const struct http_header *hdrs, size_t n, struct slice name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slice_eq_nocase(hdrs[i].name, name))
			return hdrs[i].value;
	return SLICE_NULL;
}

int http_hdr_append(struct http_header *hdrs, size_t *n, size_t cap, struct slice name,
		    struct slice value)
{
	if (*n >= cap)
		return -E2BIG;
	hdrs[*n].name = name;
	hdrs[*n].value = value;
	(*n)++;
	return 0;
}

int http_hdr_drop(const struct http_header *hdrs, size_t n, struct slice name, unsigned mask)
{
	return (http_hdr_flags(name) & mask) != 0 ||
	       http_hdr_has_token(hdrs, n, LIT("Connection"), name);
}

/* ---- credentials ---- */

int http_hdr_cookies_for_cluster(struct slice v, struct buf *out)
{
	size_t a = 0, b;
	int rc;

	while (a < v.len) {
		while (a < v.len && (v.base[a] == ' ' || v.base[a] == ';'))
			a++;
		b = a;
		while (b < v.len && v.base[b] != ';')
			b++;
		if (b > a && !slice_starts_with(slice_make(v.base + a, b - a), LIT("lxcm_"))) {
			if ((out->len && (rc = buf_append(out, "; ", 2)) < 0) ||
			    (rc = buf_append(out, v.base + a, b - a)) < 0)
				return rc;
		}
		a = b;
	}
	return 0;
}

struct slice http_hdr_bearer(struct slice authorization)
{
	static const struct slice scheme = LIT("Bearer ");
	struct slice a = authorization;

	if (a.base == NULL || a.len <= scheme.len || a.len > HTTP_HDR_AUTH_MAX ||
	    !slice_eq_nocase(slice_make(a.base, scheme.len), scheme))
		return SLICE_NULL;
	return slice_make(a.base + scheme.len, a.len - scheme.len);
}

/* ---- the path rule ---- */

/*
 * Checks the escape at p[i] ('%'); NULL when it is two hex digits that
 * decode to a byte allowed in a path, else the reason.
 */
static const char *http_hdr_escape_bad(struct slice p, size_t i)
{
	int hi, lo, c;

	if (p.len - i < 3)
		return "a truncated percent-encoding";
	hi = slice_hexval(p.base[i + 1]);
	lo = slice_hexval(p.base[i + 2]);
	if (hi < 0 || lo < 0)
		return "an invalid percent-encoding";
	c = hi * 16 + lo;
	if (c == '.')
		return "an encoded dot";
	if (c == '/' || c == '\\')
		return "an encoded slash or backslash";
	if (c == 0)
		return "an encoded NUL";
	return NULL;
}

/* The reason the segment seg (no '/' inside) breaks the rule, or NULL. */
static const char *http_hdr_segment_bad(struct slice seg, int last)
{
	if (seg.len == 0 && !last)
		return "an empty segment";
	if (slice_eq(seg, LIT(".")) || slice_eq(seg, LIT("..")))
		return "a dot segment";
	return NULL;
}

/* The byte-level part of the rule for p.base[i]; NULL when fine. */
static const char *http_hdr_byte_bad(struct slice p, size_t i)
{
	unsigned char c = (unsigned char)p.base[i];

	if (c == 0)
		return "a NUL byte";
	if (c < 0x21 || c > 0x7e)
		return "a byte that is not visible ASCII";
	if (c == '\\')
		return "a backslash";
	if (c == '%')
		return http_hdr_escape_bad(p, i);
	return NULL;
}

/* The rule on the segments of p from offset start on (just after a '/'). */
static const char *http_hdr_segments_bad(struct slice p, size_t start)
{
	const char *bad = NULL;
	size_t i;

	for (i = start; bad == NULL && i <= p.len; i++) {
		if (i < p.len && p.base[i] != '/') {
			bad = http_hdr_byte_bad(p, i);
			continue;
		}
		bad = http_hdr_segment_bad(slice_make(p.base + start, i - start), i == p.len);
		start = i + 1;
	}
	return bad;
}

int http_hdr_path_check(struct slice path, const char **why)
{
	const char *bad;

	if (path.len == 0 || path.base[0] != '/')
		bad = "a path that does not start with '/'";
	else
		bad = http_hdr_segments_bad(path, 1);
	if (why)
		*why = bad;
	return bad ? -EINVAL : 0;
}

int http_hdr_path_tail_check(struct slice tail, const char **why)
{
	const char *bad = http_hdr_segments_bad(tail, 0);

	if (why)
		*why = bad;
	return bad ? -EINVAL : 0;
}

struct slice http_hdr_target_path(struct slice target)
{
	const char *q = target.len ? memchr(target.base, '?', target.len) : NULL;

	return q ? slice_make(target.base, (size_t)(q - target.base)) : target;
}
