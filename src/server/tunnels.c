/*
 * tunnels.c - registry of live tunnels, v2 session wiring, liveness.
 *
 * Entries live in one list (live and draining) and, while live, in a hash
 * table keyed by cluster name. All on the loop thread. Ownership rows in the
 * store are written and cleared through store_run, fire and forget: the
 * in-memory registry is the truth for this replica, the store tells other
 * replicas (and operators) who holds what.
 */
#include "server/tunnels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "server/server.h"
#include "server/telemetry.h"
#include "server/upstream.h"
#include "store/store_async.h"
#include "store/store_feed.h"

#define TUNNELS_BUCKETS 4096
/* A tunnel we are closing whose peer has not finished within this is cut off. */
#define TUNNELS_CLOSE_TIMEOUT_MS (2 * WS_CLOSE_TIMEOUT_MS)

struct tunnels {
	struct server *srv;
	uv_timer_t tick;
	uv_idle_t flusher; /* flushes kicked tunnels on the next loop turn */
	struct tunnel_entry *dirty;
	int closed; /* handles closed, at free */
	struct tunnel_entry *all;
	struct tunnel_entry *buckets[TUNNELS_BUCKETS];
	size_t count; /* live, in the hash */
	int64_t last_epoch;
	uint64_t dead_after_ms; /* --tunnel-dead-after */
};

static uint32_t tn_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % TUNNELS_BUCKETS;
}

static void tn_hash_remove(struct tunnels *reg, struct tunnel_entry *e)
{
	struct tunnel_entry **pp = &reg->buckets[tn_hash(e->cluster)];

	if (!e->hashed)
		return;
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	e->hashed = 0;
	reg->count--;
}

static void tn_hash_add(struct tunnels *reg, struct tunnel_entry *e)
{
	uint32_t b = tn_hash(e->cluster);

	e->hnext = reg->buckets[b];
	reg->buckets[b] = e;
	e->hashed = 1;
	reg->count++;
}

struct tunnel_entry *tunnels_get(struct tunnels *reg, const char *cluster)
{
	struct tunnel_entry *e;

	for (e = reg->buckets[tn_hash(cluster)]; e; e = e->hnext)
		if (strcmp(e->cluster, cluster) == 0 && !e->draining && !e->closing)
			return e;
	return NULL;
}

size_t tunnels_count(const struct tunnels *reg)
{
	return reg->count;
}

json_t *tunnels_describe(struct tunnels *reg, const char *cluster)
{
	struct tunnel_entry *e = tunnels_get(reg, cluster);
	char since[64];

	if (e == NULL)
		return NULL;
	if (time_format_rfc3339(e->connected_since, since, sizeof(since)) != 0)
		since[0] = '\0';
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "protocol", e->ops ? e->ops->name : "v1",
			 "transport", tunnel_transport_name(&e->tr), "connected_since", since,
			 "replica", reg->srv->replica,
			 "rtt_ms", (json_int_t)(e->t ? tunnel_h2_rtt_ms(e->t) : -1), "active_streams",
			 (json_int_t)(e->ops ? e->ops->active(e) : 0));
}

/* ---- store bookkeeping (fire and forget) ---- */

struct tn_job {
	char cluster[64];
	char replica[128];
	char protocol[8];
	int64_t epoch;
	int64_t since;
	int set;
	int rc;
};

static void tn_job_work(struct store *s, void *arg)
{
	struct tn_job *j = arg;

	if (j->set)
		j->rc = store_tunnel_set(s, j->cluster, j->replica, j->epoch, j->protocol, j->since);
	else
		j->rc = store_tunnel_clear(s, j->cluster, j->replica, j->epoch);
}

static void tn_job_done(void *arg)
{
	struct tn_job *j = arg;

	if (j->rc < 0 && j->rc != -ENOENT)
		LOG_WARN("could not record the tunnel of %s in the store (%d)", j->cluster, j->rc);
	free(j);
}

static void tn_record(struct tunnels *reg, struct tunnel_entry *e, int set)
{
	struct tn_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return;
	snprintf(j->cluster, sizeof(j->cluster), "%s", e->cluster);
	snprintf(j->replica, sizeof(j->replica), "%s", reg->srv->replica);
	snprintf(j->protocol, sizeof(j->protocol), "%s", e->ops ? e->ops->name : "v1");
	j->epoch = e->epoch;
	j->since = e->connected_since;
	j->set = set;
	if (store_run(reg->srv->loop, reg->srv->store, tn_job_work, tn_job_done, j) < 0)
		free(j);
}

/* ---- entries ---- */

static struct tunnel_entry *tn_entry_new(struct tunnels *reg, const char *cluster, int protocol)
{
	struct tunnel_entry *e = calloc(1, sizeof(*e));
	int64_t epoch;

	if (e == NULL)
		return NULL;
	e->reg = reg;
	snprintf(e->cluster, sizeof(e->cluster), "%s", cluster);
	e->protocol = protocol;
	e->connected_since = time_now();
	/* Epochs grow across restarts: microseconds, bumped past the last one. */
	epoch = (int64_t)uv_hrtime() / 1000 + e->connected_since * 1000000;
	if (epoch <= reg->last_epoch)
		epoch = reg->last_epoch + 1;
	reg->last_epoch = epoch;
	e->epoch = epoch;
	e->last_ping_ms = uv_now(reg->srv->loop);
	e->attached_ms = e->last_ping_ms;
	return e;
}

struct tunnel_entry *tunnels_entry_new(struct tunnels *reg, const char *cluster, int protocol)
{
	return tn_entry_new(reg, cluster, protocol);
}

/*
 * Ends a tunnel gracefully: a v2 session says GOAWAY first (over the
 * direct transport it is the only word the agent gets), then the
 * transport closes (a WebSocket close frame with code and reason).
 */
static void tn_close(struct tunnel_entry *e, uint16_t code, const char *reason)
{
	if (!e->closing)
		e->closing_ms = uv_now(e->reg->srv->loop);
	if (e->t && tunnel_transport_up(&e->tr)) {
		if (code == WS_CLOSE_POLICY)
			tunnel_h2_goaway_error(e->t, TUNNEL_H2_REFUSED, reason);
		else
			tunnel_h2_goaway(e->t);
		tunnel_h2_flush(e->t);
	}
	tunnel_transport_close(&e->tr, code, reason);
}

/* Starts draining an entry that a newer tunnel replaced. */
static void tn_drain(struct tunnel_entry *e)
{
	e->draining = 1;
	e->close_reason = "replaced";
	tn_hash_remove(e->reg, e);
	LOG_INFO("tunnel of %s replaced by a new one; draining the old one", e->cluster);
	if (e->t && tunnel_h2_active_streams(e->t) > 0) {
		tunnel_h2_goaway(e->t);
		return;
	}
	tn_close(e, WS_CLOSE_GOING_AWAY, "replaced by a newer tunnel");
}

int tunnels_register(struct tunnels *reg, struct tunnel_entry *e)
{
	struct tunnel_entry *old = tunnels_get(reg, e->cluster);

	if (old)
		tn_drain(old);
	e->next = reg->all;
	if (reg->all)
		reg->all->prev = e;
	reg->all = e;
	tn_hash_add(reg, e);
	tn_record(reg, e, 1);
	telemetry_tunnel_up(reg->srv, e);
	LOG_INFO("tunnel %s of cluster %s is up (epoch %lld)", e->ops ? e->ops->name : "v1",
		 e->cluster, (long long)e->epoch);
	return 0;
}

/* The transport is gone: forget the entry, tell the store, free it. */
void tunnels_unregister(struct tunnel_entry *e)
{
	struct tunnels *reg = e->reg;

	if (e->prev)
		e->prev->next = e->next;
	else if (reg->all == e)
		reg->all = e->next;
	if (e->next)
		e->next->prev = e->prev;
	if (e->hashed) {
		tn_hash_remove(reg, e);
		LOG_INFO("tunnel of cluster %s is down", e->cluster);
	}
	if (e->dirty) {
		struct tunnel_entry **pp;

		for (pp = &reg->dirty; *pp; pp = &(*pp)->dnext) {
			if (*pp == e) {
				*pp = e->dnext;
				break;
			}
		}
	}
	tn_record(reg, e, 0);
	telemetry_tunnel_down(reg->srv, e, e->close_reason);
	if (e->t)
		tunnel_h2_free(e->t); /* streams in flight get on_close(CANCEL) */
	free(e);
}

/* ---- v2 wiring: the transport's bytes <-> HTTP/2 session ---- */

static int tn_v2_writable(void *io)
{
	struct tunnel_entry *e = io;

	return tunnel_transport_writable(&e->tr);
}

/*
 * A peer that breaks the protocol is cut off at once: it leaves the
 * registry (new requests get 503) and its socket is closed without waiting
 * for a close handshake it may never answer.
 */
static void tn_fail(struct tunnel_entry *e, const char *why)
{
	LOG_WARN("tunnel of %s: %s; closing it", e->cluster, why);
	e->closing = 1;
	e->close_reason = "protocol_error";
	if (e->hashed)
		tn_hash_remove(e->reg, e);
	tunnel_transport_abort(&e->tr);
}

static void tn_flush_dirty(uv_idle_t *h)
{
	struct tunnels *reg = h->data;
	struct tunnel_entry *e;

	/* Flushing can kick again (drain callbacks write more): loop until quiet. */
	while ((e = reg->dirty) != NULL) {
		reg->dirty = e->dnext;
		e->dirty = 0;
		if (e->t && tunnel_transport_up(&e->tr))
			tunnel_h2_flush(e->t);
	}
	uv_idle_stop(h);
}

static int tn_v2_send(void *io, const uint8_t *data, size_t len)
{
	struct tunnel_entry *e = io;

	LOG_DEBUG("tunnel of %s: sending %zu bytes", e->cluster, len);
	return tunnel_transport_send(&e->tr, data, len);
}

/*
 * The session has output: flush it once this loop turn's callbacks are
 * done (uv_idle, which also keeps the next poll from blocking), so stream
 * calls never run tunnel callbacks themselves
 * and many writes leave in one message.
 */
static void tn_v2_kick(void *io)
{
	struct tunnel_entry *e = io;
	struct tunnels *reg = e->reg;

	if (e->dirty)
		return;
	e->dirty = 1;
	e->dnext = reg->dirty;
	reg->dirty = e;
	if (!uv_is_active((uv_handle_t *)&reg->flusher))
		uv_idle_start(&reg->flusher, tn_flush_dirty);
}

static void tn_v2_on_bytes(void *owner, const uint8_t *data, size_t len)
{
	struct tunnel_entry *e = owner;

	if (e->closing)
		return;
	LOG_DEBUG("tunnel of %s: %zu bytes from the agent", e->cluster, len);
	tunnel_h2_touch(e->t, uv_now(e->reg->srv->loop));
	/* nghttp2 answers most junk with GOAWAY and no error: check both. */
	if (tunnel_h2_feed(e->t, data, len) < 0 || !tunnel_h2_alive(e->t)) {
		tn_fail(e, "HTTP/2 protocol error");
		return;
	}
	/* A draining tunnel closes once its last stream is done. */
	if (e->draining && tunnel_h2_active_streams(e->t) == 0)
		tn_close(e, WS_CLOSE_GOING_AWAY, "replaced by a newer tunnel");
}

static void tn_v2_on_junk(void *owner, const char *why)
{
	struct tunnel_entry *e = owner;

	LOG_WARN("tunnel of %s sent %s; closing", e->cluster, why);
	e->closing = 1;
	e->close_reason = "protocol_error";
	if (e->hashed)
		tn_hash_remove(e->reg, e);
}

static void tn_v2_on_drain(void *owner)
{
	struct tunnel_entry *e = owner;

	tunnel_h2_flush(e->t);
}

static void tn_v2_on_close(void *owner, int code)
{
	struct tunnel_entry *e = owner;

	(void)code;
	e->closing = 1;
	tunnels_unregister(e);
}

static const struct tunnel_transport_callbacks tn_v2_tr_cbs = {
	.on_bytes = tn_v2_on_bytes,
	.on_junk = tn_v2_on_junk,
	.on_drain = tn_v2_on_drain,
	.on_close = tn_v2_on_close,
};

static void tn_v2_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	struct tunnel_entry *e = tunnel_h2_data(t);

	LOG_INFO("agent of %s is going away (code %u)", e->cluster, code);
}

static const struct tunnel_h2_callbacks tn_v2_cbs = {
	.on_goaway = tn_v2_on_goaway,
};

/* The entry and session of a v2 tunnel whose transport (in e->tr) is set. */
static int tn_attach(struct tunnels *reg, struct tunnel_entry *e)
{
	struct tunnel_h2_io io;

	io.send = tn_v2_send;
	io.kick = tn_v2_kick;
	io.writable = tn_v2_writable;
	io.io = e;
	e->ops = &upstream_h2_ops;
	e->t = tunnel_h2_new(1, &reg->srv->tunnel_cfg, &io, &tn_v2_cbs, e);
	if (e->t == NULL) {
		/* The transport's on_close frees the entry. */
		e->closing = 1;
		tunnel_transport_abort(&e->tr);
		return -ENOMEM;
	}
	tunnels_register(reg, e);
	tunnel_h2_flush(e->t); /* our preface and SETTINGS */
	return 0;
}

int tunnels_attach_v2(struct tunnels *reg, const char *cluster, struct ws *ws)
{
	struct tunnel_entry *e = tn_entry_new(reg, cluster, 2);

	if (e == NULL) {
		ws_abort(ws); /* its on_close finds no owner: ws data is NULL */
		return -ENOMEM;
	}
	tunnel_transport_ws(&e->tr, ws, &tn_v2_tr_cbs, e);
	return tn_attach(reg, e);
}

int tunnels_attach_direct(struct tunnels *reg, const char *cluster, struct conn *c)
{
	struct tunnel_entry *e = tn_entry_new(reg, cluster, 2);

	if (e == NULL) {
		conn_close(c);
		return -ENOMEM;
	}
	tunnel_transport_direct(&e->tr, c, &tn_v2_tr_cbs, e);
	return tn_attach(reg, e);
}

/* ---- liveness ---- */

static void tn_tick(uv_timer_t *timer)
{
	struct tunnels *reg = timer->data;
	uint64_t now = uv_now(reg->srv->loop);
	struct tunnel_entry *e, *next;
	uint64_t heard;

	for (e = reg->all; e; e = next) {
		next = e->next;
		if (e->closing && tunnel_transport_up(&e->tr) &&
		    now - e->closing_ms > TUNNELS_CLOSE_TIMEOUT_MS) {
			tunnel_transport_abort(&e->tr); /* a peer that never finished closing */
			continue;
		}
		if (e->t == NULL || !tunnel_transport_up(&e->tr) || e->closing)
			continue;
		heard = tunnel_h2_last_recv_ms(e->t);
		if (heard < e->attached_ms)
			heard = e->attached_ms; /* a peer that never spoke counts from the upgrade */
		tunnel_h2_touch(e->t, now);
		if (now - heard > reg->dead_after_ms) {
			LOG_WARN("tunnel of %s silent for %.1f s; closing it", e->cluster,
				 (double)reg->dead_after_ms / 1000);
			e->closing = 1;
			e->close_reason = "dead";
			tunnel_transport_abort(&e->tr);
			continue;
		}
		if (now - e->last_ping_ms >= reg->dead_after_ms / 3) {
			telemetry_tunnel_rtt(reg->srv, tunnel_h2_rtt_ms(e->t)); /* the last answer */
			e->last_ping_ms = now;
			tunnel_h2_ping(e->t, now);
		}
	}
}

struct tunnels *tunnels_new(struct server *srv)
{
	struct tunnels *reg = calloc(1, sizeof(*reg));
	uint64_t tick;

	if (reg == NULL)
		return NULL;
	reg->srv = srv;
	reg->dead_after_ms = srv->cfg.tunnel_dead_after_ms ? srv->cfg.tunnel_dead_after_ms
							   : TUNNELS_DEAD_AFTER_MS;
	tick = reg->dead_after_ms / 9;
	if (tick > TUNNELS_TICK_MS)
		tick = TUNNELS_TICK_MS;
	uv_timer_init(srv->loop, &reg->tick);
	reg->tick.data = reg;
	uv_timer_start(&reg->tick, tn_tick, tick, tick);
	uv_unref((uv_handle_t *)&reg->tick);
	uv_idle_init(srv->loop, &reg->flusher);
	reg->flusher.data = reg;
	return reg;
}

void tunnels_drop(struct tunnels *reg, const char *cluster)
{
	struct tunnel_entry *e;

	for (e = reg->all; e; e = e->next) {
		if (strcmp(e->cluster, cluster) != 0 || !tunnel_transport_up(&e->tr) || e->closing)
			continue;
		LOG_INFO("closing the tunnel of removed cluster %s", cluster);
		tn_close(e, WS_CLOSE_POLICY, "cluster removed from the manager");
		e->closing = 1;
		e->close_reason = "removed";
		if (e->hashed)
			tn_hash_remove(reg, e);
	}
}

/* A removed cluster's certificate is no longer trusted: nor is the tunnel it opened. */
void tunnels_on_change(const struct store_change *c, void *data)
{
	if (c->kind == STORE_CHANGE_CLUSTER_REMOVED)
		tunnels_drop(data, c->name);
}

void tunnels_close_all(struct tunnels *reg)
{
	struct tunnel_entry *e;

	uv_timer_stop(&reg->tick);
	for (e = reg->all; e; e = e->next) {
		if (tunnel_transport_up(&e->tr) && !e->closing) {
			tn_close(e, WS_CLOSE_GOING_AWAY, "the manager is shutting down");
			e->closing = 1;
			e->close_reason = "shutdown";
		}
	}
}

static void tn_on_handle_closed(uv_handle_t *h)
{
	struct tunnels *reg = h->data;

	if (++reg->closed == 2)
		free(reg);
}

void tunnels_free(struct tunnels *reg)
{
	if (reg == NULL)
		return;
	uv_close((uv_handle_t *)&reg->tick, tn_on_handle_closed);
	uv_close((uv_handle_t *)&reg->flusher, tn_on_handle_closed);
}
