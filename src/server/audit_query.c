/* audit_query.c - GET /1.0/audit's query string and cursor (see audit_query.h). */
#include "server/audit_query.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"

/* Percent-decodes v into out (cap bytes with the NUL); no control characters. */
static int audit_query_unescape(struct slice v, char *out, size_t cap, size_t *len)
{
	size_t i, n = 0;

	for (i = 0; i < v.len; i++) {
		int c = (unsigned char)v.base[i];

		if (c == '%') {
			int hi = i + 2 < v.len ? slice_hexval(v.base[i + 1]) : -1;
			int lo = hi >= 0 ? slice_hexval(v.base[i + 2]) : -1;

			if (lo < 0)
				return -EINVAL;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || n + 1 >= cap)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*len = n;
	return 0;
}

/* "404" -> [404, 404]; "5xx" -> [500, 599]. */
static int audit_query_status(struct slice v, int *min, int *max)
{
	long long code;

	if (v.len == 3 && v.base[0] >= '1' && v.base[0] <= '5' &&
	    (v.base[1] == 'x' || v.base[1] == 'X') && (v.base[2] == 'x' || v.base[2] == 'X')) {
		*min = (v.base[0] - '0') * 100;
		*max = *min + 99;
		return 0;
	}
	if (v.len != 3 || slice_to_int64(v, 100, 599, &code) != 0)
		return -EINVAL;
	*min = *max = (int)code;
	return 0;
}

void audit_query_cursor_encode(int64_t at, int64_t id, char out[AUDIT_CURSOR_LEN + 1])
{
	snprintf(out, AUDIT_CURSOR_LEN + 1, "%016llx%016llx", (unsigned long long)at,
		 (unsigned long long)id);
}

/* 16 lowercase hex digits as a non-negative int64. */
static int audit_query_hex64(const char *s, int64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		int d = slice_hexval(s[i]);

		if (d < 0 || (s[i] >= 'A' && s[i] <= 'F'))
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	if (v > (uint64_t)INT64_MAX)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

int audit_query_cursor_decode(struct slice c, int64_t *at, int64_t *id)
{
	int64_t a, i;

	if (c.len != AUDIT_CURSOR_LEN || audit_query_hex64(c.base, &a) != 0 ||
	    audit_query_hex64(c.base + 16, &i) != 0 || i == 0)
		return -EINVAL;
	*at = a;
	*id = i;
	return 0;
}

/* One key=value pair with its value decoded into v (len n). 0 or -EINVAL with *why. */
static int audit_query_apply(struct audit_query *q, struct slice key, const char *v, size_t n,
			     const char **why)
{
	struct slice val = slice_make(v, n);
	long long lim;

	if (slice_eq(key, LIT("cluster"))) {
		memcpy(q->cluster, v, n + 1);
		q->f.cluster = q->cluster;
	} else if (slice_eq(key, LIT("actor"))) {
		memcpy(q->actor, v, n + 1);
		q->f.actor = q->actor;
	} else if (slice_eq(key, LIT("status"))) {
		if (audit_query_status(val, &q->f.status_min, &q->f.status_max) != 0)
			return *why = "status must be a code from 100 to 599 or a class such as 5xx",
			       -EINVAL;
	} else if (slice_eq(key, LIT("since"))) {
		if (time_parse_rfc3339(v, n, &q->f.since) != 0)
			return *why = "since must be an RFC 3339 time", -EINVAL;
	} else if (slice_eq(key, LIT("until"))) {
		if (time_parse_rfc3339(v, n, &q->f.until) != 0)
			return *why = "until must be an RFC 3339 time", -EINVAL;
	} else if (slice_eq(key, LIT("limit"))) {
		if (slice_to_int64(val, 1, STORE_AUDIT_QUERY_MAX, &lim) != 0)
			return *why = "limit must be a number from 1 to 1000", -EINVAL;
		q->f.limit = (size_t)lim;
	} else if (slice_eq(key, LIT("cursor"))) {
		if (audit_query_cursor_decode(val, &q->f.after_at, &q->f.after_id) != 0)
			return *why = "cursor is not one this server gave", -EINVAL;
		q->f.has_after = 1;
	} else {
		return *why = "unknown parameter: the filters are cluster, actor, status, since, "
			      "until, limit and cursor",
		       -EINVAL;
	}
	return 0;
}

/* The bit of a known parameter's name, to refuse one given twice; 0 for others. */
static unsigned audit_query_bit(struct slice key)
{
	static const struct slice names[] = {LIT("cluster"), LIT("actor"), LIT("status"),
					     LIT("since"),   LIT("until"), LIT("limit"),
					     LIT("cursor")};

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (slice_eq(key, names[i]))
			return 1u << i;
	return 0;
}

/* One "key=value" item of the query. */
static int audit_query_item(struct audit_query *q, struct slice item, unsigned *seen,
			    const char **why)
{
	const char *eq = memchr(item.base, '=', item.len);
	char v[AUDIT_QUERY_VALUE_MAX];
	struct slice key;
	unsigned bit;
	size_t n;

	if (eq == NULL)
		return *why = "every parameter needs a value (name=value)", -EINVAL;
	key = slice_make(item.base, (size_t)(eq - item.base));
	bit = audit_query_bit(key);
	if (bit & *seen)
		return *why = "a parameter is given twice", -EINVAL;
	*seen |= bit;
	if (audit_query_unescape(slice_make(eq + 1, item.len - key.len - 1), v, sizeof(v), &n) != 0)
		return *why = "a value has a bad %-escape, a control character or is too long",
		       -EINVAL;
	if (n == 0)
		return *why = "every parameter needs a value (name=value)", -EINVAL;
	return audit_query_apply(q, key, v, n, why);
}

int audit_query_parse(struct slice query, struct audit_query *q, const char **why)
{
	unsigned seen = 0;
	size_t i = 0;

	memset(q, 0, sizeof(*q));
	q->f.status_max = 999;
	q->f.until = INT64_MAX;
	q->f.limit = AUDIT_QUERY_DEFAULT_LIMIT;
	*why = NULL;
	while (query.base != NULL && i < query.len) {
		const char *amp = memchr(query.base + i, '&', query.len - i);
		size_t end = amp ? (size_t)(amp - query.base) : query.len;

		if (end > i && audit_query_item(q, slice_make(query.base + i, end - i), &seen, why))
			return -EINVAL;
		i = end + 1;
	}
	if (q->f.since > q->f.until)
		return *why = "since is after until", -EINVAL;
	return 0;
}
