/*
 * lxd_collect.c - one round trip of GETs to the local LXD, gathered into a
 * struct lxd_snapshot for agent_status_build.
 *
 * Requests wait in lc_reqs and are started by lc_pump, at most
 * LXD_COLLECT_PARALLEL at a time. When the first round is done, lc_round2
 * queues the per-pool and per-member requests that depend on its answers.
 * The collection ends (lc_finish) when a round leaves nothing to do or a
 * required request fails (lc_fail, which cancels the rest).
 */
#include "agent/lxd_collect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json_util.h"
#include "common/log.h"

enum lxd_kind {
	LK_SERVER,
	LK_INSTANCES,
	LK_RESOURCES,
	LK_MEMBERS,
	LK_POOLS,
	LK_METRICS,
	LK_POOL_RES,
	LK_MEMBER_RES,
	LK_MEMBER_POOL_RES,
};

struct lxd_req {
	struct lxd_collect *lc;
	enum lxd_kind kind;
	char *target;	    /* malloc'd: path and query */
	const char *pool;   /* borrowed from lc->snap.pools */
	const char *member; /* borrowed from lc->snap.members */
	struct http_fetch *f; /* while in flight */
};

struct lxd_collect {
	struct agent *ag;
	struct http_client_opts opts;
	struct lxd_req *reqs;
	size_t nreqs, next, inflight;
	int round;
	int failed;   /* 0, or the error for the callback: a network code or -EPROTO */
	int starting; /* inside lxd_collect_start: do not call back yet */
	char errmsg[512];
	json_t *server; /* GET /1.0, for the member name and the UI address */
	/*
	 * Filled as the answers come, and handed to the callback as it is.
	 * Its json_t members are references of ours (lc_free); its keyed
	 * objects (pool_resources, member_*) exist from the start, and an
	 * empty one means the same to status.c as none.
	 */
	struct lxd_snapshot snap;
	char *metrics; /* owns snap.metrics */
	char ui_url[AGENT_HOST_MAX + 16];
	lxd_collect_cb cb;
	void *arg;
};

static void lc_pump(struct lxd_collect *lc);

/* ---- the request list ---- */

static void lc_free_reqs(struct lxd_collect *lc)
{
	size_t i;

	for (i = 0; i < lc->nreqs; i++) {
		http_fetch_cancel(lc->reqs[i].f);
		free(lc->reqs[i].target);
	}
	free(lc->reqs);
	lc->reqs = NULL;
	lc->nreqs = lc->next = lc->inflight = 0;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static int lc_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3] = {'%', 0, 0};
	int rc = 0;

	for (; rc == 0 && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			rc = buf_append(b, s, 1);
		} else {
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			rc = buf_append(b, enc, 3);
		}
	}
	return rc;
}

/* Builds "/1.0/storage-pools/POOL/resources" or "/1.0/resources", + "?target=M". */
static char *lc_target(const char *pool, const char *member)
{
	struct buf b;
	int rc;

	buf_init(&b, 4096);
	if (pool) {
		rc = buf_append_str(&b, "/1.0/storage-pools/");
		if (rc == 0)
			rc = lc_escape(&b, pool);
		if (rc == 0)
			rc = buf_append_str(&b, "/resources");
	} else {
		rc = buf_append_str(&b, "/1.0/resources");
	}
	if (rc == 0 && member) {
		rc = buf_append_str(&b, "?target=");
		if (rc == 0)
			rc = lc_escape(&b, member);
	}
	if (rc < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static int lc_add(struct lxd_collect *lc, enum lxd_kind kind, char *target, const char *pool,
		  const char *member)
{
	struct lxd_req *r = &lc->reqs[lc->nreqs];

	if (target == NULL)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->lc = lc;
	r->kind = kind;
	r->target = target;
	r->pool = pool;
	r->member = member;
	lc->nreqs++;
	return 0;
}

static int lc_round1(struct lxd_collect *lc)
{
	static const struct {
		enum lxd_kind kind;
		const char *target;
	} first[] = {
	    {LK_SERVER, "/1.0"},
	    {LK_INSTANCES, "/1.0/instances?recursion=1&all-projects=true"},
	    {LK_RESOURCES, "/1.0/resources"},
	    {LK_MEMBERS, "/1.0/cluster/members?recursion=1"},
	    {LK_POOLS, "/1.0/storage-pools?recursion=1"},
	    {LK_METRICS, "/1.0/metrics"},
	};
	size_t i, n = sizeof(first) / sizeof(first[0]);

	lc->round = 1;
	lc->reqs = calloc(n, sizeof(*lc->reqs));
	if (lc->reqs == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (lc_add(lc, first[i].kind, strdup(first[i].target), NULL, NULL) < 0)
			return -ENOMEM;
	return 0;
}

/* The names in an array of objects with field key, at most max of them. */
static size_t lc_names(json_t *arr, const char *key, const char **names, size_t max,
		       const char *skip_status)
{
	const char *name, *status;
	json_t *v;
	size_t i, n = 0;

	json_array_foreach(arr, i, v) {
		if (json_get_string(v, key, &name) < 0 || name[0] == '\0')
			continue;
		if (skip_status && json_get_string(v, "status", &status) == 0 &&
		    strcmp(status, skip_status) == 0)
			continue;
		if (n == max) {
			LOG_WARN("more than %zu entries in LXD's list; the rest are skipped", max);
			break;
		}
		names[n++] = name;
	}
	return n;
}

/*
 * Queues the requests that depend on the first round: each pool's
 * resources, and in a cluster each (online) member's resources and pools.
 */
static int lc_round2(struct lxd_collect *lc)
{
	const char *pools[LXD_COLLECT_MAX_POOLS], *members[LXD_COLLECT_MAX_MEMBERS];
	size_t np = 0, nm = 0, i, j;
	int rc = 0;

	lc_free_reqs(lc);
	lc->round = 2;
	if (json_is_array(lc->snap.pools))
		np = lc_names(lc->snap.pools, "name", pools, LXD_COLLECT_MAX_POOLS, NULL);
	if (json_is_array(lc->snap.members))
		nm = lc_names(lc->snap.members, "server_name", members, LXD_COLLECT_MAX_MEMBERS,
			      "Offline");
	if (np + nm == 0)
		return 0;
	lc->reqs = calloc(np + nm * (1 + np), sizeof(*lc->reqs));
	if (lc->reqs == NULL)
		return -ENOMEM;
	for (i = 0; rc == 0 && i < np; i++)
		rc = lc_add(lc, LK_POOL_RES, lc_target(pools[i], NULL), pools[i], NULL);
	for (j = 0; rc == 0 && j < nm; j++) {
		rc = lc_add(lc, LK_MEMBER_RES, lc_target(NULL, members[j]), NULL, members[j]);
		for (i = 0; rc == 0 && i < np; i++)
			rc = lc_add(lc, LK_MEMBER_POOL_RES, lc_target(pools[i], members[j]),
				    pools[i], members[j]);
	}
	return rc;
}

/* ---- answers ---- */

static int lc_required(enum lxd_kind kind)
{
	return kind == LK_SERVER || kind == LK_INSTANCES || kind == LK_RESOURCES;
}

/*
 * Marks the collection failed with err (a network code or -EPROTO) and why;
 * lc_pump then cancels what is in flight and finishes.
 */
static void lc_fail(struct lxd_collect *lc, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lc_fail(struct lxd_collect *lc, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (lc->failed)
		return;
	lc->failed = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	n = vsnprintf(lc->errmsg, sizeof(lc->errmsg), fmt, ap);
	va_end(ap);
	if (n < 0)
		lc->errmsg[0] = '\0';
	else if ((size_t)n >= sizeof(lc->errmsg))
		memcpy(lc->errmsg + sizeof(lc->errmsg) - 4, "...", 4);
}

/*
 * The metadata of a sync LXD response, or NULL with the reason in why:
 * LXD's own "error" text when it sent an error envelope.
 */
static json_t *lc_metadata(struct http_fetch_result *res, char *why, size_t whylen)
{
	json_t *root = NULL, *meta = NULL;
	const char *type, *msg;

	if (json_parse_object(res->body, res->body_len, &root, why, whylen) < 0)
		return NULL;
	if (res->status != 200 || json_get_string(root, "type", &type) < 0 ||
	    strcmp(type, "sync") != 0) {
		if (json_get_string(root, "error", &msg) < 0 || msg[0] == '\0')
			msg = "unexpected response";
		agent_errf(why, whylen, "%d %s", res->status, msg);
	} else {
		meta = json_incref(json_object_get(root, "metadata"));
		if (meta == NULL)
			agent_errf(why, whylen, "no metadata");
	}
	json_decref(root);
	return meta;
}

/* Checks the JSON type the snapshot needs for kind. */
static int lc_type_ok(enum lxd_kind kind, json_t *meta)
{
	switch (kind) {
	case LK_INSTANCES:
	case LK_MEMBERS:
	case LK_POOLS:
		return json_is_array(meta);
	default:
		return json_is_object(meta);
	}
}

/* Where the answer of a one-request kind goes; NULL for the other kinds. */
static json_t **lc_slot(struct lxd_collect *lc, enum lxd_kind kind)
{
	json_t **slot[] = {
	    [LK_SERVER] = &lc->server,
	    [LK_INSTANCES] = &lc->snap.instances,
	    [LK_RESOURCES] = &lc->snap.resources,
	    [LK_MEMBERS] = &lc->snap.members,
	    [LK_POOLS] = &lc->snap.pools,
	    [LK_MEMBER_POOL_RES] = NULL,
	};

	return slot[kind];
}

/* member's object in snap.member_pool_resources, made on first use; NULL: no memory. */
static json_t *lc_member_pools(struct lxd_collect *lc, const char *member)
{
	json_t *per = json_object_get(lc->snap.member_pool_resources, member);

	if (per == NULL) {
		per = json_object();
		if (json_object_set_new(lc->snap.member_pool_resources, member, per) < 0)
			per = NULL;
	}
	return per;
}

/* Files meta (a new reference, taken) in the snapshot. */
static void lc_keep(struct lxd_collect *lc, struct lxd_req *r, json_t *meta)
{
	json_t **slot = lc_slot(lc, r->kind), *per;

	if (slot != NULL) {
		*slot = meta;
		return;
	}
	switch (r->kind) {
	case LK_POOL_RES:
		json_object_set_new(lc->snap.pool_resources, r->pool, meta);
		return;
	case LK_MEMBER_RES:
		json_object_set_new(lc->snap.member_resources, r->member, meta);
		return;
	case LK_MEMBER_POOL_RES:
		per = lc_member_pools(lc, r->member);
		if (per)
			json_object_set_new(per, r->pool, meta);
		else
			json_decref(meta);
		return;
	default: /* LK_METRICS: not JSON, see lc_store_metrics */
		break;
	}
	json_decref(meta);
}

static void lc_store_metrics(struct lxd_collect *lc, struct http_fetch_result *res)
{
	if (res->err || res->status != 200) {
		LOG_DEBUG("GET /1.0/metrics: %s (metrics left out)",
			  res->err ? agent_strerror(res->err) : "not 200");
		return;
	}
	lc->metrics = res->body; /* ours now: fetch frees only what is left */
	lc->snap.metrics_len = res->body_len;
	res->body = NULL;
	res->body_len = 0;
}

static void lc_store(struct lxd_collect *lc, struct lxd_req *r, struct http_fetch_result *res)
{
	char why[256];
	json_t *meta = NULL;

	if (r->kind == LK_METRICS) {
		lc_store_metrics(lc, res);
		return;
	}
	if (res->err)
		agent_errf(why, sizeof(why), "%s", agent_strerror(res->err));
	else if ((meta = lc_metadata(res, why, sizeof(why))) != NULL && !lc_type_ok(r->kind, meta))
		agent_errf(why, sizeof(why), "unexpected metadata type");
	if (meta && lc_type_ok(r->kind, meta)) {
		lc_keep(lc, r, meta);
		return;
	}
	json_decref(meta);
	if (lc_required(r->kind))
		lc_fail(lc, res->err ? res->err : -EPROTO, "GET %s: %s", r->target, why);
	else
		LOG_DEBUG("GET %s: %s (left out)", r->target, why);
}

static void lc_on_fetch(struct http_fetch_result *res, void *arg)
{
	struct lxd_req *r = arg;
	struct lxd_collect *lc = r->lc;

	r->f = NULL;
	lc->inflight--;
	if (res->err == 0)
		LOG_DEBUG("GET %s: %d, %zu bytes", r->target, res->status, res->body_len);
	lc_store(lc, r, res);
	lc_pump(lc);
}

static void lc_send(struct lxd_collect *lc, struct lxd_req *r)
{
	struct http_fetch_result res;
	size_t max = r->kind == LK_METRICS ? LXD_COLLECT_METRICS_MAX : LXD_COLLECT_BODY_MAX;

	lc->opts.pool = lc->ag->lxd_pool; /* read each time: NULL once the agent stops */
	r->f = http_fetch_start(lc->ag->loop, &lc->opts, "GET", r->target, NULL, 0, NULL, 0, max,
				lc_on_fetch, r);
	if (r->f) {
		lc->inflight++;
		return;
	}
	memset(&res, 0, sizeof(res));
	res.err = -EIO;
	lc_store(lc, r, &res);
}

/* ---- the end ---- */

/* ui_url: https:// and LXD's first advertised address, if it has one. */
static const char *lc_ui_url(struct lxd_collect *lc)
{
	json_t *addrs = json_object_get(json_object_get(lc->server, "environment"), "addresses");
	json_t *first = json_array_get(addrs, 0);
	const char *a = json_string_value(first);
	int n;

	if (a == NULL || a[0] == '\0' || strlen(a) != json_string_length(first))
		return NULL;
	n = snprintf(lc->ui_url, sizeof(lc->ui_url), "https://%s", a);
	if (n < 0 || (size_t)n >= sizeof(lc->ui_url))
		return NULL;
	return lc->ui_url;
}

static void lc_free(struct lxd_collect *lc)
{
	lc_free_reqs(lc);
	json_decref(lc->server);
	json_decref(lc->snap.instances);
	json_decref(lc->snap.resources);
	json_decref(lc->snap.members);
	json_decref(lc->snap.pools);
	json_decref(lc->snap.pool_resources);
	json_decref(lc->snap.member_resources);
	json_decref(lc->snap.member_pool_resources);
	free(lc->metrics);
	free(lc);
}

static void lc_finish(struct lxd_collect *lc)
{
	if (lc->failed) {
		lc->cb(lc->failed, lc->errmsg, NULL, lc->arg);
		lc_free(lc);
		return;
	}
	json_get_string(json_object_get(lc->server, "environment"), "server_name",
			&lc->snap.member_name);
	lc->snap.metrics = lc->metrics;
	lc->snap.ui_url = lc_ui_url(lc);
	lc->cb(0, NULL, &lc->snap, lc->arg);
	lc_free(lc);
}

/* Starts what may start; at the end of a round, the next round or the end. */
static void lc_pump(struct lxd_collect *lc)
{
	for (;;) {
		if (lc->failed) {
			lc_free_reqs(lc); /* cancels whatever is still in flight */
			break;
		}
		while (!lc->failed && lc->inflight < LXD_COLLECT_PARALLEL && lc->next < lc->nreqs)
			lc_send(lc, &lc->reqs[lc->next++]);
		if (lc->failed)
			continue;
		if (lc->inflight > 0)
			return;
		if (lc->round == 2)
			break;
		if (lc_round2(lc) < 0) {
			lc_fail(lc, -ENOMEM, "out of memory");
			continue;
		}
		if (lc->nreqs == 0)
			break;
	}
	if (!lc->starting)
		lc_finish(lc);
}

struct lxd_collect *lxd_collect_start(struct agent *ag, lxd_collect_cb cb, void *arg, char *err,
				      size_t errlen)
{
	struct lxd_collect *lc = calloc(1, sizeof(*lc));

	if (lc == NULL)
		return NULL;
	lc->ag = ag;
	lc->cb = cb;
	lc->arg = arg;
	upstream_opts(&ag->cfg.up, ag->lxd_tls, &lc->opts);
	lc->snap.pool_resources = json_object();
	lc->snap.member_resources = json_object();
	lc->snap.member_pool_resources = json_object();
	if (!lc->snap.pool_resources || !lc->snap.member_resources ||
	    !lc->snap.member_pool_resources || lc_round1(lc) < 0) {
		agent_errf(err, errlen, "out of memory");
		lc_free(lc);
		return NULL;
	}
	/*
	 * The first round is always in flight after this unless every request
	 * failed to start, which is then reported here, not by a callback.
	 */
	lc->starting = 1;
	lc_pump(lc);
	lc->starting = 0;
	if (lc->failed) {
		agent_errf(err, errlen, "%s", lc->errmsg);
		lc_free(lc);
		return NULL;
	}
	return lc;
}

void lxd_collect_cancel(struct lxd_collect *lc)
{
	if (lc)
		lc_free(lc);
}
