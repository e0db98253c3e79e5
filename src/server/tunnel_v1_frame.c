/*
 * tunnel_v1_frame.c - the codec of tunnel v1: request frames out, response
 * frames in (tunnel_v1_frame.h). Pure functions over jansson values.
 *
 * Response policy (docs/protocol-v1.md): header names must be tokens and
 * values field-values; hop-by-hop and framing headers stay behind
 * (http_hdr.c's table, also those the frame's Connection names); Go-style
 * cookie objects become Set-Cookie lines as Go's Cookie.String writes them;
 * the `session` cookie is never passed on but reported to the caller,
 * which keeps it per user (session_cookies.c).
 */
#include "server/tunnel_v1_frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"

#define V1_MAX_COOKIE_LINE 8192 /* one Set-Cookie line we build */
/* Go's time.Time zero value and anything before 1601 mean "no Expires". */
#define V1_MIN_EXPIRES (-11644473600LL)

static int v1_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* An RFC 9110 token: what a header or cookie name may be. */
static int v1_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!v1_is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* A header value we can put on the wire: no CR, LF or NUL. */
static int v1_is_field_value(const char *s, size_t len)
{
	size_t i;

	/* RFC 9110 field-value: HTAB, SP, visible ASCII and obs-text only. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return 0;
	}
	return 1;
}

/* Copies peer bytes into out for a log line: printable ASCII only, cut short. */
void tunnel_v1_frame_printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < outlen; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[o] = '\0';
}

/* A random (version 4) UUID in its 36-character text form. */
int tunnel_v1_frame_uuid(char out[TUNNEL_V1_FRAME_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i, o = 0;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

/* Go's CanonicalMIMEHeaderKey for a token: "content-type" -> "Content-Type". */
static void v1_canonical(char *s, size_t len)
{
	int upper = 1;
	size_t i;

	for (i = 0; i < len; i++) {
		if (upper && s[i] >= 'a' && s[i] <= 'z')
			s[i] = (char)(s[i] - 'a' + 'A');
		else if (!upper && s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
		upper = s[i] == '-';
	}
}

/* Appends value to headers[name] (arrays of strings). 0, -EINVAL (not UTF-8), -ENOMEM. */
static int v1_header_add(json_t *hdrs, struct slice name, struct slice value)
{
	char *key = slice_dup(name);
	json_t *arr, *v;
	int rc = -ENOMEM;

	if (key == NULL)
		return -ENOMEM;
	v1_canonical(key, name.len);
	v = json_stringn(value.base ? value.base : "", value.len);
	if (v == NULL) {
		rc = -EINVAL;
		goto out;
	}
	arr = json_object_get(hdrs, key);
	if (arr == NULL) {
		arr = json_array();
		if (arr == NULL || json_object_set_new(hdrs, key, arr) != 0) {
			json_decref(v);
			goto out;
		}
	}
	rc = json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM;
out:
	free(key);
	return rc;
}

/* 1 when the Cookie header value carries a cookie named `session`. */
int tunnel_v1_frame_has_session(struct slice v)
{
	size_t i = 0, start;

	while (i < v.len) {
		while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ';'))
			i++;
		start = i;
		while (i < v.len && v.base[i] != '=' && v.base[i] != ';')
			i++;
		if (slice_eq(slice_make(v.base + start, i - start), LIT("session")))
			return 1;
		while (i < v.len && v.base[i] != ';')
			i++;
	}
	return 0;
}

/* The frame's "headers" object: every header (names in Go's canonical form) and the session. */
static json_t *v1_request_headers(const struct tunnel_v1_frame_req *fr, const char **why)
{
	json_t *hdrs = json_object();
	int rc = 0, user_session = 0;
	size_t i;

	*why = "out of memory";
	if (hdrs == NULL)
		return NULL;
	for (i = 0; i < fr->n && rc == 0; i++) {
		if (slice_eq_nocase(fr->h[i].name, LIT("Cookie")))
			user_session |= tunnel_v1_frame_has_session(fr->h[i].value);
		rc = v1_header_add(hdrs, fr->h[i].name, fr->h[i].value);
	}
	if (rc == 0 && fr->session.len && !user_session)
		rc = v1_header_add(hdrs, LIT("Cookie"), fr->session);
	if (rc != 0) {
		if (rc == -EINVAL)
			*why = "a request header is not valid UTF-8, which tunnel v1 (JSON) cannot "
			       "carry";
		json_decref(hdrs);
		return NULL;
	}
	return hdrs;
}

/*
 * The whole request frame:
 *   {"uuid":...,"method":...,"path":...,"headers":{...},"body":"<base64>"|null}
 * The small part is made by jansson; the body is base64-encoded straight
 * into the frame.
 */
int tunnel_v1_frame_request(const struct tunnel_v1_frame_req *fr, char **frame, size_t *flen,
			    const char **why)
{
	size_t hlen, blen = fr->body_len, elen, total;
	char *head = NULL, *f = NULL, *p;
	json_t *o = NULL, *hdrs;
	int rc = -ENOMEM;

	*why = "out of memory";
	hdrs = v1_request_headers(fr, why);
	if (hdrs == NULL)
		return strcmp(*why, "out of memory") == 0 ? -ENOMEM : -EINVAL;
	o = json_pack("{s:s,s:s%,s:s%,s:o}", "uuid", fr->uuid, "method", fr->method.base,
		      fr->method.len, "path", fr->path.base, fr->path.len, "headers", hdrs);
	if (o == NULL) {
		*why = "the request path is not valid UTF-8, which tunnel v1 (JSON) cannot carry";
		return -EINVAL;
	}
	head = json_dumps(o, JSON_COMPACT);
	if (head == NULL)
		goto out;
	hlen = strlen(head); /* our own JSON text, ending in '}' */
	elen = blen ? base64_encoded_len(blen) + 2 : 4;
	total = hlen - 1 + sizeof(",\"body\":") - 1 + elen + 1;
	if (total > TUNNEL_V1_FRAME_MAX) {
		*why = "the request does not fit in one tunnel v1 frame";
		rc = -E2BIG;
		goto out;
	}
	f = malloc(total);
	if (f == NULL)
		goto out;
	p = f;
	memcpy(p, head, hlen - 1);
	p += hlen - 1;
	memcpy(p, ",\"body\":", 8);
	p += 8;
	if (blen) {
		*p++ = '"';
		base64_encode(fr->body, blen, p);
		p += elen - 2;
		*p++ = '"';
	} else {
		memcpy(p, "null", 4);
		p += 4;
	}
	*p++ = '}';
	*frame = f;
	*flen = (size_t)(p - f);
	rc = 0;
out:
	json_decref(o);
	free(head);
	return rc;
}

/* ---- response frames ---- */

void tunnel_v1_frame_resp_clear(struct tunnel_v1_frame_resp *rs)
{
	size_t i;

	for (i = 0; i < rs->nowned; i++)
		free(rs->owned[i]);
	rs->nowned = 0;
	free(rs->body);
	rs->body = NULL;
}

/* Notes the frame's `session` cookie for the caller's jar. */
static void v1_keep_session(struct tunnel_v1_frame_resp *rs, struct slice value, int expired)
{
	rs->session_seen = 1;
	rs->session_value = value;
	rs->session_expired = expired;
}

static int v1_resp_add(struct tunnel_v1_frame_resp *rs, struct slice name, struct slice value)
{
	return http_hdr_append(rs->h, &rs->n, TUNNEL_V1_FRAME_MAX_HEADERS, name, value);
}

/* The name of a Set-Cookie line (up to '='), trimmed. */
static struct slice v1_set_cookie_name(struct slice v)
{
	size_t i = 0, end;

	while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
		i++;
	end = i;
	while (end < v.len && v.base[end] != '=' && v.base[end] != ';')
		end++;
	while (end > i && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
		end--;
	return slice_make(v.base + i, end - i);
}

/* 1 when the frame's cookie array has a cookie called name. */
static int v1_cookies_have(json_t *cookies, struct slice name)
{
	size_t i;
	json_t *c;

	json_array_foreach(cookies, i, c)
	{
		json_t *n = json_object_get(c, "Name");

		if (json_is_string(n) &&
		    slice_eq(slice_make(json_string_value(n), json_string_length(n)), name))
			return 1;
	}
	return 0;
}

/*
 * A Set-Cookie header line (the early form, or a frame that sends both):
 * `session` is kept, never passed on; a cookie also in the array is a
 * duplicate. Returns 1 to pass the line on.
 */
static int v1_header_set_cookie(struct tunnel_v1_frame_resp *rs, struct slice v)
{
	struct slice name = v1_set_cookie_name(v), value, attrs;
	const char *eq = memchr(v.base, '=', v.len), *semi;
	int expired;

	if (rs->cookies && v1_cookies_have(rs->cookies, name))
		return 0;
	if (!slice_eq(name, LIT("session")))
		return 1;
	value = eq ? slice_make(eq + 1, v.len - (size_t)(eq + 1 - v.base)) : SLICE_NULL;
	semi = value.len ? memchr(value.base, ';', value.len) : NULL;
	attrs = semi ? slice_make(semi, value.len - (size_t)(semi - value.base)) : SLICE_NULL;
	if (semi)
		value.len = (size_t)(semi - value.base);
	while (value.len && value.base[0] == ' ') {
		value.base++;
		value.len--;
	}
	while (value.len && value.base[value.len - 1] == ' ')
		value.len--;
	/* Max-Age=0 or a negative Max-Age deletes the cookie. */
	expired = attrs.len && (memmem(attrs.base, attrs.len, "Max-Age=0", 9) != NULL ||
				memmem(attrs.base, attrs.len, "Max-Age=-", 9) != NULL);
	v1_keep_session(rs, value, expired);
	return 0;
}

/* One value of a response header; Set-Cookie lines go through v1_header_set_cookie. */
static const char *v1_resp_header_value(struct tunnel_v1_frame_resp *rs, struct slice name,
					json_t *v)
{
	struct slice sv;

	if (!json_is_string(v))
		return "a header value is not a string";
	sv = slice_make(json_string_value(v), json_string_length(v));
	if (!v1_is_field_value(sv.base, sv.len))
		return "a header value contains CR, LF or NUL";
	if (slice_eq_nocase(name, LIT("Set-Cookie")) && !v1_header_set_cookie(rs, sv))
		return NULL;
	return v1_resp_add(rs, name, sv) == 0 ? NULL : "too many headers";
}

/* A JSON string as a slice; SLICE_NULL for anything else. */
static struct slice v1_json_slice(json_t *v)
{
	return json_is_string(v) ? slice_make(json_string_value(v), json_string_length(v))
				 : SLICE_NULL;
}

/*
 * Whether a response header of the frame stays behind (http_hdr.h): by
 * name, or named by one of the frame's Connection headers (values as an
 * array of strings or a single string).
 */
static int v1_resp_drop(json_t *hdrs, struct slice name)
{
	json_t *val, *v;
	void *it;
	size_t i;

	if (http_hdr_flags(name) & HTTP_HDR_DROP_TO_USER)
		return 1;
	for (it = json_object_iter(hdrs); it; it = json_object_iter_next(hdrs, it)) {
		if (!slice_eq_nocase(slice_make(json_object_iter_key(it), json_object_iter_key_len(it)),
				     LIT("Connection")))
			continue;
		val = json_object_iter_value(it);
		if (http_hdr_list_has(v1_json_slice(val), name))
			return 1;
		json_array_foreach(val, i, v)
		{
			if (http_hdr_list_has(v1_json_slice(v), name))
				return 1;
		}
	}
	return 0;
}

/* Adds the frame's "headers" object: values as arrays of strings or single strings. */
static const char *v1_resp_headers(struct tunnel_v1_frame_resp *rs, json_t *hdrs)
{
	const char *why = NULL;
	json_t *val, *v;
	void *it;
	size_t i;

	if (hdrs == NULL || json_is_null(hdrs))
		return NULL;
	if (!json_is_object(hdrs))
		return "headers is not an object";
	for (it = json_object_iter(hdrs); it && !why; it = json_object_iter_next(hdrs, it)) {
		struct slice name =
		    slice_make(json_object_iter_key(it), json_object_iter_key_len(it));

		val = json_object_iter_value(it);
		if (!v1_is_token(name.base, name.len))
			return "a header name is not a token";
		if (v1_resp_drop(hdrs, name))
			continue;
		if (json_is_array(val)) {
			json_array_foreach(val, i, v)
			{
				why = v1_resp_header_value(rs, name, v);
				if (why)
					break;
			}
		} else {
			why = v1_resp_header_value(rs, name, val); /* the early form */
		}
	}
	return why;
}

/* A cookie value as Go writes one: quoted if it has a space or comma. */
static int v1_cookie_value_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.base[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == ';' || c == '\\')
			return 0;
	}
	return 1;
}

static int v1_attr_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++)
		if ((unsigned char)v.base[i] < 0x20 || (unsigned char)v.base[i] > 0x7e ||
		    v.base[i] == ';')
			return 0;
	return 1;
}

static int v1_domain_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++) {
		char c = v.base[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == ':'))
			return 0;
	}
	return v.len > 0;
}

/* Unix time -> "Mon, 02 Jan 2006 15:04:05 GMT" (RFC 9110 IMF-fixdate). */
static int v1_http_date(int64_t t, char *out, size_t outlen)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	int n;

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -EINVAL;
	n = snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
		     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		     tm.tm_sec);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

/* The cookie's Expires as Unix time, or INT64_MIN when it has none. */
static int64_t v1_cookie_expires(json_t *c)
{
	json_t *e = json_object_get(c, "Expires");
	int64_t t;

	if (!json_is_string(e) ||
	    time_parse_rfc3339(json_string_value(e), json_string_length(e), &t) != 0 ||
	    t < V1_MIN_EXPIRES)
		return INT64_MIN;
	return t;
}

static const char *v1_same_site(json_t *s)
{
	if (json_is_integer(s)) {
		switch (json_integer_value(s)) {
		case 2:
			return "Lax";
		case 3:
			return "Strict";
		case 4:
			return "None";
		default:
			return NULL;
		}
	}
	if (json_is_string(s)) {
		if (strcasecmp(json_string_value(s), "lax") == 0)
			return "Lax";
		if (strcasecmp(json_string_value(s), "strict") == 0)
			return "Strict";
		if (strcasecmp(json_string_value(s), "none") == 0)
			return "None";
	}
	return NULL;
}

/* The attributes after name=value, as Go's Cookie.String writes them. */
static int v1_cookie_attrs(json_t *c, struct buf *b)
{
	json_t *path = json_object_get(c, "Path"), *dom = json_object_get(c, "Domain");
	json_t *ma = json_object_get(c, "MaxAge");
	int64_t exp = v1_cookie_expires(c);
	const char *ss = v1_same_site(json_object_get(c, "SameSite"));
	char date[40];
	int rc = 0;

	if (json_is_string(path) && json_string_length(path) &&
	    v1_attr_ok(slice_make(json_string_value(path), json_string_length(path))))
		rc |= buf_printf(b, "; Path=%s", json_string_value(path));
	if (json_is_string(dom)) {
		struct slice d = slice_make(json_string_value(dom), json_string_length(dom));

		if (d.len && d.base[0] == '.') {
			d.base++;
			d.len--;
		}
		if (v1_domain_ok(d))
			rc |= buf_printf(b, "; Domain=%.*s", (int)d.len, d.base);
	}
	if (exp != INT64_MIN && v1_http_date(exp, date, sizeof(date)) == 0)
		rc |= buf_printf(b, "; Expires=%s", date);
	if (json_is_integer(ma) && json_integer_value(ma) > 0)
		rc |= buf_printf(b, "; Max-Age=%lld", (long long)json_integer_value(ma));
	else if (json_is_integer(ma) && json_integer_value(ma) < 0)
		rc |= buf_append_str(b, "; Max-Age=0");
	if (json_is_true(json_object_get(c, "HttpOnly")))
		rc |= buf_append_str(b, "; HttpOnly");
	if (json_is_true(json_object_get(c, "Secure")))
		rc |= buf_append_str(b, "; Secure");
	if (ss)
		rc |= buf_printf(b, "; SameSite=%s", ss);
	if (json_is_true(json_object_get(c, "Partitioned")))
		rc |= buf_append_str(b, "; Partitioned");
	return rc ? -E2BIG : 0;
}

/* One Go-style cookie object: `session` is kept, others become Set-Cookie lines. */
static const char *v1_resp_cookie(struct tunnel_v1_frame_resp *rs, json_t *c)
{
	json_t *n = json_object_get(c, "Name"), *v = json_object_get(c, "Value");
	json_t *ma = json_object_get(c, "MaxAge");
	struct slice name, value;
	struct buf b;
	int quote, expired;
	int64_t exp;

	if (!json_is_object(c) || !json_is_string(n))
		return "a cookie is not an object with a Name";
	name = slice_make(json_string_value(n), json_string_length(n));
	value =
	    json_is_string(v) ? slice_make(json_string_value(v), json_string_length(v)) : LIT("");
	if (!v1_is_token(name.base, name.len) || !v1_cookie_value_ok(value)) {
		LOG_WARN("cluster %s sent a cookie with an invalid name or value; dropped",
			 rs->cluster);
		return NULL;
	}
	if (slice_eq(name, LIT("session"))) {
		exp = v1_cookie_expires(c);
		expired = (json_is_integer(ma) && json_integer_value(ma) < 0) ||
			  (exp != INT64_MIN && exp < time_now());
		v1_keep_session(rs, value, expired);
		return NULL;
	}
	quote = json_is_true(json_object_get(c, "Quoted")) || memchr(value.base, ' ', value.len) ||
		memchr(value.base, ',', value.len);
	buf_init(&b, V1_MAX_COOKIE_LINE);
	if (buf_printf(&b, "%.*s=%s%.*s%s", (int)name.len, name.base, quote ? "\"" : "",
		       (int)value.len, value.base, quote ? "\"" : "") != 0 ||
	    v1_cookie_attrs(c, &b) != 0) {
		buf_free(&b);
		return "a cookie is too long";
	}
	if (rs->nowned >= TUNNEL_V1_FRAME_MAX_HEADERS ||
	    v1_resp_add(rs, LIT("Set-Cookie"), slice_make(b.data, b.len)) != 0) {
		buf_free(&b);
		return "too many headers";
	}
	rs->owned[rs->nowned++] = b.data; /* freed by v1_resp_clear */
	return NULL;
}

static const char *v1_resp_cookies(struct tunnel_v1_frame_resp *rs)
{
	const char *why;
	json_t *c;
	size_t i;

	if (rs->cookies == NULL)
		return NULL;
	json_array_foreach(rs->cookies, i, c)
	{
		why = v1_resp_cookie(rs, c);
		if (why)
			return why;
	}
	return NULL;
}

/*
 * Parses one response frame into rs; the body is decoded into rs->body.
 * Returns NULL, or a reason when the frame is unusable.
 */
const char *tunnel_v1_frame_response(json_t *root, struct tunnel_v1_frame_resp *rs)
{
	json_t *st = json_object_get(root, "status"), *body = json_object_get(root, "body");
	json_t *cookies = json_object_get(root, "cookies");
	const char *why;

	if (!json_is_integer(st) || json_integer_value(st) < 200 || json_integer_value(st) > 599)
		return "status is missing or not an HTTP status from 200 to 599";
	if (cookies && !json_is_null(cookies) && !json_is_array(cookies))
		return "cookies is not an array";
	rs->status = (int)json_integer_value(st);
	rs->cookies = json_is_array(cookies) ? cookies : NULL;
	if (body && !json_is_null(body)) {
		if (!json_is_string(body))
			return "body is not a base64 string";
		rs->body = malloc(base64_decoded_max(json_string_length(body)) + 1);
		if (rs->body == NULL)
			return "out of memory";
		if (base64_decode(json_string_value(body), json_string_length(body), rs->body,
				  &rs->body_len) != 0)
			return "body is not valid base64";
	}
	why = v1_resp_headers(rs, json_object_get(root, "headers"));
	if (why == NULL)
		why = v1_resp_cookies(rs);
	return why;
}
