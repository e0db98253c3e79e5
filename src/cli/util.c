/* util.c - pure parsing and formatting helpers of the lxcm CLI (util.h). */
#include "cli/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/slice.h"
#include "common/timefmt.h"

/*
 * snprintf for fixed, small outputs that cannot fail in practice: on error
 * or truncation out becomes "?" (or "" if even that does not fit) so a
 * caller never shows a silently cut value.
 */
__attribute__((format(printf, 3, 4))) static void util_put(char *out, size_t len, const char *fmt,
							   ...)
{
	va_list ap;
	int n;

	if (len == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		out[0] = len > 1 ? '?' : '\0';
		if (len > 1)
			out[1] = '\0';
	}
}

int util_parse_duration(const char *s, int64_t *secs)
{
	int64_t v;

	/* The one parser (common/duration.c); a duration from now must be more than nothing. */
	if (s == NULL || duration_parse(slice_cstr(s), &v) < 0 || v == 0)
		return -EINVAL;
	*secs = v;
	return 0;
}

int util_parse_expiry(const char *s, int64_t now, char *out, size_t len)
{
	int64_t t, d;

	if (s == NULL)
		return -EINVAL;
	if (time_parse_rfc3339(s, strlen(s), &t) != 0) {
		if (util_parse_duration(s, &d) != 0)
			return -EINVAL;
		t = now + d;
	}
	if (t <= now)
		return -EINVAL;
	return time_format_rfc3339(t, out, len) == 0 ? 0 : -EINVAL;
}

int util_parse_percent(const char *s, int *out)
{
	long long v;

	if (s == NULL || slice_to_int64(slice_cstr(s), 0, 100, &v) != 0)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int util_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char util_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* 1 when each of the n bytes at s is one of set (and not NUL). */
static int util_all_in(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return 0;
	return 1;
}

/* A DNS name or IPv4 address: letters, digits, '-', '.', '_'. */
static int util_valid_hostname(const char *h, size_t n)
{
	return n > 0 && n <= 253 &&
	       util_all_in(h, n,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._");
}

/* The inside of "[...]": hex digits, ':' and '.' (IPv4-mapped). */
static int util_valid_ipv6(const char *h, size_t n)
{
	return n >= 2 && n <= 45 && util_all_in(h, n, "0123456789abcdefABCDEF:.");
}

/* Splits an authority into host (borrowed) and port. */
static int util_split_authority(const char *a, size_t n, const char **host, size_t *hlen, int *v6,
				int *port)
{
	const char *colon = NULL;
	long long p = 8443;

	*v6 = n > 0 && a[0] == '[';
	if (*v6) {
		const char *close = memchr(a, ']', n);
		if (close == NULL)
			return -EINVAL;
		*host = a + 1;
		*hlen = (size_t)(close - a) - 1;
		if (close + 1 < a + n) {
			if (close[1] != ':')
				return -EINVAL;
			colon = close + 1;
		}
		if (!util_valid_ipv6(*host, *hlen))
			return -EINVAL;
	} else {
		colon = memchr(a, ':', n);
		*host = a;
		*hlen = colon ? (size_t)(colon - a) : n;
		if (!util_valid_hostname(*host, *hlen))
			return -EINVAL;
	}
	if (colon &&
	    slice_to_int64(slice_make(colon + 1, (size_t)(a + n - colon - 1)), 1, 65535, &p) != 0)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

int util_parse_server(const char *url, struct util_server *out)
{
	const char *a = url, *sep, *host;
	size_t n, hlen, i;
	int v6, port, rc;

	if (url == NULL)
		return -EINVAL;
	if (strncmp(a, "https://", 8) == 0)
		a += 8;
	else if (strstr(a, "://") != NULL)
		return -EPROTONOSUPPORT;
	sep = strchr(a, '/');
	n = sep ? (size_t)(sep - a) : strlen(a);
	if (sep && sep[1] != '\0')
		return -EINVAL; /* a path prefix is not supported */
	rc = util_split_authority(a, n, &host, &hlen, &v6, &port);
	if (rc < 0)
		return rc;
	if (hlen >= sizeof(out->host))
		return -EINVAL;
	for (i = 0; i < hlen; i++)
		out->host[i] = util_lower(host[i]);
	out->host[hlen] = '\0';
	out->port = port;
	rc = snprintf(out->key, sizeof(out->key), v6 ? "[%s]:%d" : "%s:%d", out->host, port);
	if (rc < 0 || (size_t)rc >= sizeof(out->key))
		return -EINVAL;
	return 0;
}

int util_fingerprint_normalize(const char *in, char out[65])
{
	size_t n = 0;

	if (in == NULL)
		return -EINVAL;
	for (; *in != '\0'; in++) {
		if (*in == ':')
			continue;
		if (!util_is_hex(*in) || n == 64)
			return -EINVAL;
		out[n++] = util_lower(*in);
	}
	if (n != 64)
		return -EINVAL;
	out[64] = '\0';
	return 0;
}

static int util_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int util_urlencode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (s == NULL || *s == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return -EINVAL;
	for (; *p != '\0'; p++) {
		if (util_unreserved(*p)) {
			if (o + 1 >= len)
				return -ENOSPC;
			out[o++] = (char)*p;
			continue;
		}
		if (o + 3 >= len)
			return -ENOSPC;
		out[o++] = '%';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 15];
	}
	out[o] = '\0';
	return 0;
}

void util_human_bytes(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	size_t i = 0;

	if (n < 1024) {
		util_put(out, len, "%lluB", (unsigned long long)n);
		return;
	}
	/* Move up while one decimal would round to 1024.0 of this unit. */
	while (v >= 1023.95 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		i++;
	}
	util_put(out, len, "%.1f%s", v, units[i]);
}

void util_reltime(int64_t t, int64_t now, char *out, size_t len)
{
	int64_t d;
	int future;
	long long v;
	char unit;

	if (t <= 0) {
		util_put(out, len, "never");
		return;
	}
	d = now - t;
	/* A few seconds into the future is clock skew, not a schedule. */
	if (d > -5 && d < 1) {
		util_put(out, len, "just now");
		return;
	}
	future = d < 0;
	if (future)
		d = -d;
	if (d < 60)
		v = d, unit = 's';
	else if (d < 3600)
		v = d / 60, unit = 'm';
	else if (d < 86400)
		v = d / 3600, unit = 'h';
	else
		v = d / 86400, unit = 'd';
	if (future)
		util_put(out, len, "in %lld%c", v, unit);
	else
		util_put(out, len, "%lld%c ago", v, unit);
}

/*
 * Decodes one UTF-8 character at p. Returns its length (1..4) and stores the
 * code point, or returns 0 for an invalid, overlong or surrogate sequence.
 * Stops at a NUL, which is never a continuation byte.
 */
static size_t util_utf8_decode(const unsigned char *p, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, c = p[0] & 0x1fu, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, c = p[0] & 0x0fu, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, c = p[0] & 0x07u, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3fu);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Walks s as util_sanitize does; writes to out unless out is NULL. */
static size_t util_sanitize_walk(const char *s, char *out, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, chars = 0, n, take;
	const void *src;
	uint32_t cp;

	while (*p != '\0') {
		n = util_utf8_decode(p, &cp);
		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			src = "?";
			take = 1;
		} else {
			src = p;
			take = n;
		}
		if (out != NULL) {
			if (o + take >= len)
				break;
			memcpy(out + o, src, take);
		}
		o += take;
		chars++;
		p += n ? n : 1;
	}
	if (out != NULL)
		out[o] = '\0';
	return chars;
}

size_t util_sanitize(const char *s, char *out, size_t len)
{
	if (len == 0)
		return 0;
	if (s == NULL) {
		out[0] = '\0';
		return 0;
	}
	return util_sanitize_walk(s, out, len);
}

size_t util_display_width(const char *s)
{
	return s ? util_sanitize_walk(s, NULL, 0) : 0;
}

const char *util_json_str(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int util_json_u64(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	long long i;
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (!(d >= 0.0 && d < 1.8e19))
			return -1;
		*out = (uint64_t)d;
		return 0;
	}
	if (json_is_string(v) &&
	    slice_to_int64(slice_make(json_string_value(v), json_string_length(v)), 0, INT64_MAX,
			   &i) == 0) {
		*out = (uint64_t)i;
		return 0;
	}
	return -1;
}

int64_t util_json_time(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	int64_t t;

	if (!json_is_string(v) ||
	    time_parse_rfc3339(json_string_value(v), json_string_length(v), &t) != 0)
		return 0;
	return t;
}
