/*
 * tunnel_client.c - the agent's end of tunnel v2: dial out to the
 * manager's connector, upgrade to a WebSocket with the lxcm-tunnel.v2
 * subprotocol, and serve the HTTP/2 session it carries (we are the HTTP/2
 * server). Requests are handed to forward.c.
 *
 * Reconnects with full-jitter exponential backoff (base 0.5 s, cap 30 s),
 * trying the manager's addresses in turn. The backoff starts over after a
 * tunnel stayed up for a healthy minute, and a clean GOAWAY from the manager
 * (a restart, or our tunnel being replaced) reconnects at once. A tunnel
 * silent for 45 s (the manager PINGs every 15 s) is closed and redialled.
 */
#include "agent/forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "net/ws.h"

#define TC_WS_MAX_MESSAGE (1 << 20)
#define TC_PROTOCOL "lxcm-tunnel.v2"

struct tunnel_client {
	struct agent *ag;
	uv_timer_t timer; /* reconnect delay, then the liveness tick */
	uv_idle_t flusher; /* flushes the session on the next loop turn */
	struct ws *ws;
	struct tunnel_h2 *t;
	unsigned attempt;
	size_t addr;
	uint64_t connected_at;
	int connecting;
	int goaway;
	int stopping;
	int timer_closed; /* both handles closed */
	int handles_closed;
	char hostbuf[AGENT_HOST_MAX];
};

static void tc_connect(struct tunnel_client *tc);
static void tc_on_tick(uv_timer_t *t);

static uint64_t tc_jitter(uint64_t max)
{
	uint64_t r = 0;

	if (max == 0)
		return 0;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return r % (max + 1);
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static void tc_schedule(struct tunnel_client *tc)
{
	uint64_t ceiling = TUNNEL_CLIENT_BACKOFF_BASE_MS;
	uint64_t delay;
	unsigned i;

	if (tc->stopping)
		return;
	for (i = 0; i < tc->attempt && ceiling < TUNNEL_CLIENT_BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > TUNNEL_CLIENT_BACKOFF_CAP_MS)
		ceiling = TUNNEL_CLIENT_BACKOFF_CAP_MS;
	delay = tc->goaway ? tc_jitter(250) : tc_jitter(ceiling);
	tc->goaway = 0;
	tc->attempt++;
	uv_timer_stop(&tc->timer);
	uv_timer_start(&tc->timer, tc_on_tick, delay, 0);
}

/* ---- the session ---- */

static int tc_send(void *io, const uint8_t *data, size_t len)
{
	struct tunnel_client *tc = io;

	if (tc->ws == NULL)
		return -EPIPE;
	return ws_send(tc->ws, WS_BINARY, data, len);
}

static void tc_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct tunnel_client *tc = tunnel_h2_data(t);

	forward_request(tc->ag, s, h);
}

static void tc_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	struct tunnel_client *tc = tunnel_h2_data(t);

	LOG_INFO("the manager is closing the tunnel (GOAWAY, code %u); will reconnect", code);
	tc->goaway = 1;
}

static void tc_on_flush(uv_idle_t *h)
{
	struct tunnel_client *tc = h->data;

	uv_idle_stop(h);
	if (tc->t && tc->ws)
		tunnel_h2_flush(tc->t);
}

static int tc_writable(void *io)
{
	struct tunnel_client *tc = io;

	return tc->ws != NULL && ws_pending(tc->ws) < WS_HIGH_WATER;
}

/* See struct tunnel_h2_io: stream calls never flush (nor call back) themselves. */
static void tc_kick(void *io)
{
	struct tunnel_client *tc = io;

	if (!tc->stopping)
		uv_idle_start(&tc->flusher, tc_on_flush);
}

static const struct tunnel_h2_callbacks tc_tunnel_cbs = {
	.on_request = tc_on_request,
	.on_goaway = tc_on_goaway,
};

static void tc_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	struct tunnel_client *tc = ws_data(w);

	if (opcode != WS_BINARY || tc->t == NULL) {
		ws_close(w, WS_CLOSE_PROTOCOL_ERROR, "binary messages only");
		return;
	}
	LOG_DEBUG("tunnel: %zu bytes from the manager", len);
	tunnel_h2_touch(tc->t, uv_now(tc->ag->loop));
	if (tunnel_h2_feed(tc->t, (const uint8_t *)data, len) < 0 || !tunnel_h2_alive(tc->t)) {
		LOG_WARN("tunnel protocol error from the manager; reconnecting");
		ws_close(w, WS_CLOSE_PROTOCOL_ERROR, "HTTP/2 protocol error");
	}
}

static void tc_on_drain(struct ws *w)
{
	struct tunnel_client *tc = ws_data(w);

	if (tc->t)
		tunnel_h2_flush(tc->t);
}

static void tc_on_close(struct ws *w, int code)
{
	struct tunnel_client *tc = ws_data(w);
	uint64_t up_for = uv_now(tc->ag->loop) - tc->connected_at;

	tc->ws = NULL;
	if (tc->t) {
		tunnel_h2_free(tc->t); /* streams get on_close: upstream requests are aborted */
		tc->t = NULL;
	}
	if (tc->stopping) {
		if (!tc->timer_closed)
			return;
		free(tc);
		return;
	}
	if (up_for >= TUNNEL_CLIENT_HEALTHY_MS)
		tc->attempt = 0;
	LOG_WARN("tunnel to the manager closed (code %d) after %llu s; reconnecting", code,
		 (unsigned long long)(up_for / 1000));
	tc_schedule(tc);
}

static const struct ws_callbacks tc_ws_cbs = {
	.on_message = tc_on_message,
	.on_drain = tc_on_drain,
	.on_close = tc_on_close,
};

static void tc_on_connected(struct ws *w, int status, void *arg)
{
	struct tunnel_client *tc = arg;
	struct tunnel_h2_io io = {tc_send, tc_kick, tc_writable, tc};

	tc->connecting = 0;
	if (w == NULL) {
		if (!tc->stopping) {
			if (status == 403)
				LOG_WARN("tunnel refused by the manager (403): this cluster is not "
					 "enrolled (removed from the manager?)");
			else if (status > 0)
				LOG_WARN("tunnel refused by the manager with HTTP %d", status);
			else
				LOG_WARN("cannot open the tunnel to %s: %s",
					 tc->ag->cfg.addresses[tc->addr], agent_strerror(status));
			tc->addr = (tc->addr + 1) % tc->ag->cfg.naddresses;
			tc_schedule(tc);
		} else if (tc->timer_closed) {
			free(tc);
		}
		return;
	}
	if (tc->stopping) {
		ws_set_data(w, tc);
		ws_close(w, WS_CLOSE_GOING_AWAY, "agent stopping");
		tc->ws = w;
		return;
	}
	tc->ws = w;
	ws_set_data(w, tc);
	tc->t = tunnel_h2_new(0, NULL, &io, &tc_tunnel_cbs, tc);
	if (tc->t == NULL) {
		ws_abort(w);
		return;
	}
	tc->connected_at = uv_now(tc->ag->loop);
	tunnel_h2_touch(tc->t, tc->connected_at);
	tunnel_h2_flush(tc->t);
	LOG_INFO("tunnel to the manager at %s is up", tc->ag->cfg.addresses[tc->addr]);
	uv_timer_start(&tc->timer, tc_on_tick, TUNNEL_CLIENT_TICK_MS, TUNNEL_CLIENT_TICK_MS);
}

static void tc_connect(struct tunnel_client *tc)
{
	struct http_client_opts opts;
	int rc;

	if (tc->stopping || tc->connecting || tc->ws)
		return;
	if (agent_manager_opts(tc->ag, tc->addr, &opts, tc->hostbuf, sizeof(tc->hostbuf)) < 0) {
		tc->addr = (tc->addr + 1) % tc->ag->cfg.naddresses;
		tc_schedule(tc);
		return;
	}
	tc->connecting = 1;
	rc = ws_connect(tc->ag->loop, &opts, "/1.0/remote-cluster/ws", TC_PROTOCOL, NULL, 0,
			TC_WS_MAX_MESSAGE, &tc_ws_cbs, tc, tc_on_connected, tc);
	if (rc < 0) {
		tc->connecting = 0;
		LOG_WARN("cannot start the tunnel connection: %s", agent_strerror(rc));
		tc_schedule(tc);
	}
}

/* Reconnect timer when down; liveness check when up. */
static void tc_on_tick(uv_timer_t *timer)
{
	struct tunnel_client *tc = timer->data;
	uint64_t now = uv_now(tc->ag->loop);

	if (tc->ws == NULL) {
		tc_connect(tc);
		return;
	}
	if (tc->t && now - tunnel_h2_last_recv_ms(tc->t) > TUNNEL_CLIENT_DEAD_AFTER_MS) {
		LOG_WARN("tunnel silent for %d s; reconnecting", TUNNEL_CLIENT_DEAD_AFTER_MS / 1000);
		ws_abort(tc->ws);
	}
}

int tunnel_client_start(struct agent *ag)
{
	struct tunnel_client *tc = calloc(1, sizeof(*tc));

	if (tc == NULL)
		return -ENOMEM;
	tc->ag = ag;
	ag->tc = tc;
	uv_timer_init(ag->loop, &tc->timer);
	tc->timer.data = tc;
	uv_idle_init(ag->loop, &tc->flusher);
	tc->flusher.data = tc;
	tc_connect(tc);
	return 0;
}

static void tc_on_timer_closed(uv_handle_t *h)
{
	struct tunnel_client *tc = h->data;

	if (++tc->handles_closed < 2)
		return;
	tc->timer_closed = 1;
	if (tc->ws == NULL && !tc->connecting)
		free(tc);
}

void tunnel_client_stop(struct agent *ag)
{
	struct tunnel_client *tc = ag->tc;

	if (tc == NULL || tc->stopping)
		return;
	tc->stopping = 1;
	ag->tc = NULL;
	if (tc->t)
		tunnel_h2_goaway(tc->t);
	if (tc->ws)
		ws_close(tc->ws, WS_CLOSE_GOING_AWAY, "agent stopping");
	uv_close((uv_handle_t *)&tc->timer, tc_on_timer_closed);
	uv_close((uv_handle_t *)&tc->flusher, tc_on_timer_closed);
}
