/*
 * cluster_json.c - the cluster object of the management API, built from a
 * store row and its last heartbeat (MICROCLOUD-PROTOCOL.md, "Cluster
 * object fields"). The heartbeat is peer data: every field is type-checked
 * and anything odd is replaced by a neutral value.
 */
#include <limits.h>
#include <string.h>

#include "common/timefmt.h"
#include "server/server.h"
#include "server/tunnels.h"

/* Go's zero time, which MicroCloud clients expect for "never". */
#define CLUSTER_TIME_NEVER "0001-01-01T00:00:00Z"

static json_t *cj_time(int64_t t)
{
	char buf[64];

	if (t <= 0 || time_format_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_string(CLUSTER_TIME_NEVER);
	return json_string(buf);
}

/*
 * A new array of conv(e, arg) for each element e of src, leaving out those
 * conv turns down (NULL); [] when src is not an array.
 */
static json_t *cj_map(json_t *src, json_t *(*conv)(json_t *e, void *arg), void *arg)
{
	json_t *out = json_array(), *e, *v;
	size_t i;

	if (!json_is_array(src))
		return out;
	json_array_foreach(src, i, e) {
		v = conv(e, arg);
		if (v != NULL)
			json_array_append_new(out, v);
	}
	return out;
}

/* One {"status","count"}, its count added to *sum (a json_int_t). */
static json_t *cj_status(json_t *e, void *sum_arg)
{
	json_t *st = json_object_get(e, "status"), *cnt = json_object_get(e, "count");
	json_int_t *sum = sum_arg;

	if (!json_is_string(st) || !json_is_integer(cnt) || json_integer_value(cnt) < 0)
		return NULL;
	/* Saturate: a hostile heartbeat must not overflow the sum. */
	if (json_integer_value(cnt) > LLONG_MAX - *sum)
		*sum = LLONG_MAX;
	else
		*sum += json_integer_value(cnt);
	return json_pack("{s:O,s:O}", "status", st, "count", cnt);
}

/* Copies a list of {"status","count"} and sums the counts. */
static json_t *cj_status_list(json_t *src, json_int_t *sum)
{
	*sum = 0;
	return cj_map(src, cj_status, sum);
}

static json_t *cj_pool(json_t *e, void *arg)
{
	json_t *name = json_object_get(e, "name"), *member = json_object_get(e, "member");
	json_t *total = json_object_get(e, "total"), *usage = json_object_get(e, "usage");

	(void)arg;
	if (!json_is_string(name))
		return NULL;
	return json_pack("{s:O,s:s,s:I,s:I}", "name", name, "member",
			 json_is_string(member) ? json_string_value(member) : "", "total",
			 json_is_integer(total) ? json_integer_value(total) : 0, "usage",
			 json_is_integer(usage) ? json_integer_value(usage) : 0);
}

static json_t *cj_int(json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key);

	return json_integer(json_is_integer(v) ? json_integer_value(v) : 0);
}

static json_t *cj_load(json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key);

	if (json_is_string(v))
		return json_string(json_string_value(v));
	if (json_is_number(v)) {
		char buf[32];

		if (snprintf(buf, sizeof(buf), "%.2f", json_number_value(v)) < (int)sizeof(buf))
			return json_string(buf);
	}
	return json_string("0.00");
}

json_t *cluster_to_json(const struct store_cluster *c)
{
	json_t *st = NULL, *o = json_object();
	json_int_t members, instances, ceph;

	if (c->status_json)
		st = json_loads(c->status_json, 0, NULL);
	if (!json_is_object(st)) {
		json_decref(st);
		st = json_object();
	}
	json_object_set_new(o, "name", json_string(c->name));
	json_object_set_new(o, "description", json_string(c->description ? c->description : ""));
	json_object_set_new(o, "cluster_certificate",
			    json_string(c->certificate ? c->certificate : ""));
	json_object_set_new(o, "status", json_string(c->status ? c->status : "ACTIVE"));
	json_object_set_new(o, "disk_threshold", json_integer(c->disk_threshold));
	json_object_set_new(o, "memory_threshold", json_integer(c->memory_threshold));
	json_object_set_new(o, "ceph_statuses",
			    cj_status_list(json_object_get(st, "ceph_statuses"), &ceph));
	json_object_set_new(o, "ceph_count", json_integer(ceph));
	json_object_set_new(o, "cpu_total_count", cj_int(st, "cpu_total_count"));
	json_object_set_new(o, "cpu_load_1", cj_load(st, "cpu_load_1"));
	json_object_set_new(o, "cpu_load_5", cj_load(st, "cpu_load_5"));
	json_object_set_new(o, "cpu_load_15", cj_load(st, "cpu_load_15"));
	json_object_set_new(o, "memory_total_amount", cj_int(st, "memory_total_amount"));
	json_object_set_new(o, "memory_usage", cj_int(st, "memory_usage"));
	json_object_set_new(o, "storage_pool_usages",
			    cj_map(json_object_get(st, "storage_pool_usages"), cj_pool, NULL));
	json_object_set_new(o, "member_statuses",
			    cj_status_list(json_object_get(st, "member_statuses"), &members));
	json_object_set_new(o, "member_count", json_integer(members));
	json_object_set_new(o, "instance_statuses",
			    cj_status_list(json_object_get(st, "instance_statuses"), &instances));
	json_object_set_new(o, "instance_count", json_integer(instances));
	json_object_set_new(o, "ui_url",
			    json_string(json_is_string(json_object_get(st, "ui_url"))
						? json_string_value(json_object_get(st, "ui_url"))
						: ""));
	json_object_set_new(o, "tunnel_registered", json_false());
	json_object_set_new(o, "joined_at", cj_time(c->joined_at));
	json_object_set_new(o, "created_at", cj_time(c->created_at));
	json_object_set_new(o, "last_status_update_at", cj_time(c->last_status_update_at));
	json_decref(st);
	return o;
}

json_t *cluster_to_json_live(struct server *srv, const struct store_cluster *c)
{
	json_t *o = cluster_to_json(c);
	json_t *t = srv->tunnels ? tunnels_describe(srv->tunnels, c->name) : NULL;

	json_object_set_new(o, "tunnel_registered", json_boolean(t != NULL));
	json_object_set_new(o, "tunnel", t ? t : json_null());
	return o;
}
