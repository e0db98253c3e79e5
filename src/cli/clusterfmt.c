/* clusterfmt.c - readable fields of a cluster object (clusterfmt.h). */
#include "cli/clusterfmt.h"

#include <stdio.h>
#include <string.h>

#include "cli/util.h"
#include "common/timefmt.h"

/* Writes "-" (or "" into a one-byte buffer): the value is unknown. */
static void clusterfmt_dash(char *out, size_t len)
{
	if (len == 0)
		return;
	out[0] = len > 1 ? '-' : '\0';
	if (len > 1)
		out[1] = '\0';
}

/* "a/b" from two parts; "-" if it does not fit (it always does in practice). */
static void clusterfmt_pair(const char *a, const char *b, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= len)
		clusterfmt_dash(out, len);
}

const char *clusterfmt_cpu(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	const char *load = util_json_str(c, "cpu_load_1");
	char count[24];

	clusterfmt_count(c, "cpu_total_count", now, count, sizeof(count));
	clusterfmt_pair(load && *load ? load : "-", count, out, len);
	(void)key;
	return out;
}

const char *clusterfmt_memory(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	uint64_t used, total;
	char a[16], b[16];

	(void)key;
	(void)now;
	if (util_json_u64(c, "memory_usage", &used) != 0 ||
	    util_json_u64(c, "memory_total_amount", &total) != 0 || total == 0) {
		clusterfmt_dash(out, len);
		return out;
	}
	util_human_bytes(used, a, sizeof(a));
	util_human_bytes(total, b, sizeof(b));
	clusterfmt_pair(a, b, out, len);
	return out;
}

const char *clusterfmt_storage(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	json_t *pools = json_object_get(c, "storage_pool_usages"), *p;
	uint64_t used = 0, total = 0, u, t;
	char a[16], b[16];
	size_t i;

	(void)key;
	(void)now;
	if (!json_is_array(pools) || json_array_size(pools) == 0) {
		clusterfmt_dash(out, len);
		return out;
	}
	json_array_foreach(pools, i, p)
	{
		if (util_json_u64(p, "usage", &u) == 0)
			used += u;
		if (util_json_u64(p, "total", &t) == 0)
			total += t;
	}
	util_human_bytes(used, a, sizeof(a));
	util_human_bytes(total, b, sizeof(b));
	clusterfmt_pair(a, b, out, len);
	return out;
}

const char *clusterfmt_count(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	uint64_t v;
	int n;

	(void)now;
	if (util_json_u64(c, key, &v) != 0) {
		clusterfmt_dash(out, len);
		return out;
	}
	n = snprintf(out, len, "%llu", (unsigned long long)v);
	if (n < 0 || (size_t)n >= len)
		clusterfmt_dash(out, len);
	return out;
}

const char *clusterfmt_tunnel(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	const char *tr = json_string_value(json_object_get(json_object_get(c, "tunnel"), "transport"));

	(void)key;
	(void)now;
	(void)out;
	(void)len;
	if (!json_is_true(json_object_get(c, "tunnel_registered")))
		return "no";
	/* A literal, never the server's string: output stays ours. */
	if (tr && strcmp(tr, "direct") == 0)
		return "yes (direct)";
	if (tr && strcmp(tr, "websocket") == 0)
		return "yes (websocket)";
	return "yes";
}

void clusterfmt_when(json_t *c, const char *key, int64_t now, char *out, size_t len)
{
	int64_t t = util_json_time(c, key);
	char abs[TIME_RFC3339_LEN], rel[32];
	int n;

	if (t <= 0 || time_format_rfc3339(t, abs, sizeof(abs)) != 0) {
		n = snprintf(out, len, "never");
		if (n < 0 || (size_t)n >= len)
			clusterfmt_dash(out, len);
		return;
	}
	util_reltime(t, now, rel, sizeof(rel));
	n = snprintf(out, len, "%s (%s)", abs, rel);
	if (n < 0 || (size_t)n >= len)
		clusterfmt_dash(out, len);
}
