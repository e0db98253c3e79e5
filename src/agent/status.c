/*
 * status.c - the status heartbeat body from LXD API responses (see status.h).
 *
 * Helpers return 0 or -ENOMEM, or a new json_t that is NULL only on ENOMEM.
 * Odd input is skipped where it is met, so the only failure that reaches the
 * caller is running out of memory.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/status.h"
#include "common/json_util.h"

/* Storage drivers whose pools are one shared pool for the whole cluster (LXD
 * reports them with Remote: true); every other driver is local to a member. */
static const char *const status_shared_drivers[] = {
    "ceph", "cephfs", "cephobject", "powerflex", "pure", "alletra", "lvmcluster",
};

/* Adds obj[key] = value, stealing value (also on failure). */
static int status_set(json_t *obj, const char *key, json_t *value)
{
	if (value == NULL)
		return -ENOMEM;
	return json_object_set_new(obj, key, value) == 0 ? 0 : -ENOMEM;
}

/* Appends value to arr, stealing value (also on failure). */
static int status_append(json_t *arr, json_t *value)
{
	if (value == NULL)
		return -ENOMEM;
	return json_array_append_new(arr, value) == 0 ? 0 : -ENOMEM;
}

/* A JSON string for one of our C strings; "" for NULL or invalid UTF-8. */
static json_t *status_string_or_empty(const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	return v != NULL ? v : json_string("");
}

/*
 * Reads the non-negative integer at obj.k1.k2. Returns 0 and sets *out, or -1
 * when a level is missing or of the wrong type or the value is negative.
 */
static int status_get_count(json_t *obj, const char *k1, const char *k2, long long *out)
{
	long long v;

	/* json_object_get is NULL-safe and gives NULL for a non-object. */
	if (json_get_int(json_object_get(obj, k1), k2, &v) < 0 || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* *sum += v, saturating instead of overflowing (hostile members). */
static void status_add(long long *sum, long long v)
{
	if (__builtin_add_overflow(*sum, v, sum))
		*sum = INT64_MAX;
}

/*
 * Counts one status value in counts (an object: status -> integer, kept in
 * order of first sight). Once AGENT_STATUS_MAX_KINDS - 1 distinct values are
 * held, new ones are counted as "Other", so there are at most
 * AGENT_STATUS_MAX_KINDS entries.
 */
static int status_count(json_t *counts, const char *status)
{
	json_t *n = json_object_get(counts, status);

	if (n == NULL && json_object_size(counts) >= AGENT_STATUS_MAX_KINDS - 1) {
		status = "Other";
		n = json_object_get(counts, status);
	}
	if (n != NULL)
		return json_integer_set(n, json_integer_value(n) + 1) == 0 ? 0 : -ENOMEM;
	return status_set(counts, status, json_integer(1));
}

/* Turns a counts object into the protocol's [{"status","count"}] array. */
static json_t *status_counts_to_list(json_t *counts)
{
	json_t *list = json_array(), *n, *item;
	const char *status;

	if (list == NULL)
		return NULL;
	json_object_foreach(counts, status, n) {
		item = json_pack("{s:s, s:O}", "status", status, "count", n);
		if (status_append(list, item) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/*
 * [{"status","count"}] of the string field "status" of the objects in arr;
 * elements that are not objects or lack a string status are skipped. NULL
 * only on ENOMEM.
 */
static json_t *status_distribution(json_t *arr)
{
	json_t *counts = json_object(), *item, *list = NULL;
	const char *status;
	size_t i;

	if (counts == NULL)
		return NULL;
	/* No iterations when arr is not an array. */
	json_array_foreach(arr, i, item) {
		if (json_get_string(item, "status", &status) < 0 || status[0] == '\0')
			continue;
		if (status_count(counts, status) < 0)
			goto out;
	}
	list = status_counts_to_list(counts);
out:
	json_decref(counts);
	return list;
}

/* member_statuses: a standalone LXD (no members list) is one Online member. */
static json_t *status_members(json_t *members)
{
	if (!json_is_array(members) || json_array_size(members) == 0)
		return json_pack("[{s:s, s:i}]", "status", "Online", "count", 1);
	return status_distribution(members);
}

/* "%.2f" of a load average; "0.00" for NaN, infinities, negatives and
 * absurdly large values, so the string always fits and always parses. */
static json_t *status_load(double v)
{
	char buf[32];
	int n;

	if (!isfinite(v) || v < 0 || v > 1e12)
		v = 0;
	n = snprintf(buf, sizeof(buf), "%.2f", v);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return json_string("0.00");
	return json_string(buf);
}

/* Adds one member's CPU and memory figures from a resources object. */
static void status_add_resources(json_t *res, long long *cpus, long long *mem_total,
				 long long *mem_used)
{
	long long v;

	if (status_get_count(res, "cpu", "total", &v) == 0)
		status_add(cpus, v);
	if (status_get_count(res, "memory", "total", &v) == 0)
		status_add(mem_total, v);
	if (status_get_count(res, "memory", "used", &v) == 0)
		status_add(mem_used, v);
}

/* cpu_total_count, memory_total_amount and memory_usage, summed over
 * member_resources when given, else from resources. */
static int status_capacity(json_t *body, const struct lxd_snapshot *snap)
{
	long long cpus = 0, mem_total = 0, mem_used = 0;
	const char *member;
	json_t *res;

	if (json_is_object(snap->member_resources) &&
	    json_object_size(snap->member_resources) > 0) {
		json_object_foreach(snap->member_resources, member, res) {
			status_add_resources(res, &cpus, &mem_total, &mem_used);
		}
	} else {
		status_add_resources(snap->resources, &cpus, &mem_total, &mem_used);
	}
	if (status_set(body, "cpu_total_count", json_integer(cpus)) < 0 ||
	    status_set(body, "memory_total_amount", json_integer(mem_total)) < 0 ||
	    status_set(body, "memory_usage", json_integer(mem_used)) < 0)
		return -ENOMEM;
	return 0;
}

static int status_is_shared_driver(const char *driver)
{
	size_t i;

	for (i = 0; i < sizeof(status_shared_drivers) / sizeof(status_shared_drivers[0]); i++)
		if (strcmp(driver, status_shared_drivers[i]) == 0)
			return 1;
	return 0;
}

/*
 * Appends {"name","member","total","usage"} for pool `name` from one pool
 * resources object; skipped (returning 0) when space.total is missing or not
 * positive, space.used missing or negative, or the list is full.
 */
static int status_pool_usage(json_t *list, const char *name, const char *member, json_t *res)
{
	long long total, used;

	if (status_get_count(res, "space", "total", &total) < 0 || total == 0 ||
	    status_get_count(res, "space", "used", &used) < 0)
		return 0;
	if (json_array_size(list) >= AGENT_STATUS_MAX_POOL_USAGES)
		return 0;
	return status_append(list,
			     json_pack("{s:s, s:s, s:I, s:I}", "name", name, "member", member,
				       "total", (json_int_t)total, "usage", (json_int_t)used));
}

/* The entries of one pool: once with member "" when shared; per member from
 * member_pool_resources when given; else for `self`, the member we talk to. */
static int status_pool(json_t *list, const struct lxd_snapshot *snap, const char *self,
		       const char *name, int shared)
{
	json_t *mpr = snap->member_pool_resources, *pools;
	const char *member;

	if (shared)
		return status_pool_usage(list, name, "",
					 json_object_get(snap->pool_resources, name));
	if (json_is_object(mpr) && json_object_size(mpr) > 0) {
		json_object_foreach(mpr, member, pools) {
			if (status_pool_usage(list, name, member, json_object_get(pools, name)) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	return status_pool_usage(list, name, self, json_object_get(snap->pool_resources, name));
}

/*
 * storage_pool_usages. The pools list says which pools exist and their
 * drivers; without it, the keys of pool_resources are taken as local pools.
 */
static json_t *status_pools(const struct lxd_snapshot *snap, const char *self)
{
	json_t *list = json_array(), *pool, *res;
	const char *name, *driver;
	size_t i;
	int rc = 0;

	if (list == NULL)
		return NULL;
	if (json_is_array(snap->pools)) {
		json_array_foreach(snap->pools, i, pool) {
			if (json_get_string(pool, "name", &name) < 0 || name[0] == '\0')
				continue;
			if (json_get_string(pool, "driver", &driver) < 0)
				driver = "";
			if ((rc = status_pool(list, snap, self, name,
					      status_is_shared_driver(driver))) < 0)
				break;
		}
	} else {
		json_object_foreach(snap->pool_resources, name, res) {
			if ((rc = status_pool(list, snap, self, name, 0)) < 0)
				break;
		}
	}
	if (rc < 0) {
		json_decref(list);
		return NULL;
	}
	return list;
}

/* server_metrics: one entry for the member we talk to, or [] when there are
 * no metrics or they are not valid UTF-8 (JSON cannot carry them). */
static json_t *status_metrics(const struct lxd_snapshot *snap, const char *self)
{
	json_t *list = json_array(), *text, *item;

	if (list == NULL || snap->metrics == NULL)
		return list;
	text = json_stringn(snap->metrics, snap->metrics_len);
	if (text == NULL)
		return list;
	item = json_pack("{s:s, s:s, s:o}", "member", self, "service", "LXD", "metrics", text);
	if (status_append(list, item) < 0) {
		json_decref(list);
		return NULL;
	}
	return list;
}

json_t *agent_status_build(const struct lxd_snapshot *snap)
{
	/* member_name is LXD's word too: as JSON, checked once ("" if odd). */
	json_t *body = json_object(), *self_json = status_string_or_empty(snap->member_name);
	const char *self = json_string_value(self_json);

	if (body == NULL || self == NULL)
		goto fail;
	if (status_set(body, "cpu_load_1", status_load(snap->load[0])) < 0 ||
	    status_set(body, "cpu_load_5", status_load(snap->load[1])) < 0 ||
	    status_set(body, "cpu_load_15", status_load(snap->load[2])) < 0 ||
	    status_capacity(body, snap) < 0 ||
	    status_set(body, "instance_statuses", status_distribution(snap->instances)) < 0 ||
	    status_set(body, "member_statuses", status_members(snap->members)) < 0 ||
	    status_set(body, "ceph_statuses", json_array()) < 0 ||
	    status_set(body, "storage_pool_usages", status_pools(snap, self)) < 0 ||
	    status_set(body, "ui_url", status_string_or_empty(snap->ui_url)) < 0 ||
	    status_set(body, "server_metrics", status_metrics(snap, self)) < 0)
		goto fail;
	json_decref(self_json);
	return body;
fail:
	json_decref(self_json);
	json_decref(body);
	return NULL;
}
