/*
 * tunnel_client.c - the agent's end of tunnel v2: dial out to the
 * manager's connector and serve the HTTP/2 session the tunnel carries (we
 * are the HTTP/2 server). Requests are handed to forward.c.
 *
 * Transports (tunnel_transport.h), by --tunnel-transport:
 *   direct     TLS with ALPN lxcm-tunnel.v2: HTTP/2 straight over TLS.
 *   websocket  an HTTP/1.1 upgrade to a WebSocket with the lxcm-tunnel.v2
 *              subprotocol, HTTP/2 in its binary messages.
 *   auto       (the default) direct, and on the same connect, when the
 *              connector (or an HTTP proxy in front of it) did not select
 *              lxcm-tunnel.v2, websocket at once. Every reconnect tries
 *              direct first, so a proxy taken away is noticed.
 * The handshake offers "lxcm-tunnel.v2, http/1.1" either way, so that an
 * HTTP proxy answers http/1.1 (which says clearly what is in the way)
 * instead of failing the handshake.
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
#include "net/tunnel_transport.h"
#include "net/ws.h"

#define TC_WS_MAX_MESSAGE (1 << 20)
/* What the direct dial offers: ours first, then what an HTTP proxy would take. */
static const unsigned char tc_alpn[] = "\x0e" TUNNEL_ALPN "\x08http/1.1";

struct tunnel_client {
	struct agent *ag;
	uv_timer_t timer;  /* reconnect delay, dial timeout, then the liveness tick */
	uv_idle_t flusher; /* flushes the session on the next loop turn */
	struct tunnel_transport tr; /* tr.h set while the tunnel is up */
	struct conn *dial; /* a direct dial whose handshake is under way */
	struct tunnel_h2 *t;
	unsigned attempt;
	size_t addr;
	uint64_t connected_at;
	int dial_err;	   /* why the direct dial failed */
	int dial_fallback; /* auto: the dial was refused, go on with websocket */
	int connecting;	   /* a dial or a ws_connect is under way */
	int goaway;
	int refused; /* the manager's GOAWAY said why it ended the session */
	int stopping;
	int timer_closed; /* both handles closed */
	int handles_closed;
	char hostbuf[AGENT_HOST_MAX];
};

static void tc_connect(struct tunnel_client *tc);
static void tc_connect_ws(struct tunnel_client *tc);
static void tc_on_tick(uv_timer_t *t);

static void tc_maybe_free(struct tunnel_client *tc)
{
	if (tc->stopping && tc->timer_closed && !tc->connecting && tc->dial == NULL &&
	    !tunnel_transport_up(&tc->tr))
		free(tc);
}

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

/* A connection attempt failed: the next address, after the backoff. */
static void tc_retry(struct tunnel_client *tc)
{
	tc->addr = (tc->addr + 1) % tc->ag->cfg.naddresses;
	tc_schedule(tc);
}

/* ---- the session ---- */

static int tc_send(void *io, const uint8_t *data, size_t len)
{
	struct tunnel_client *tc = io;

	return tunnel_transport_send(&tc->tr, data, len);
}

static void tc_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct tunnel_client *tc = tunnel_h2_data(t);

	forward_request(tc->ag, s, h);
}

static void tc_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	struct tunnel_client *tc = tunnel_h2_data(t);

	if (code == 0) {
		LOG_INFO("the manager is closing the tunnel (GOAWAY); will reconnect");
		tc->goaway = 1;
		return;
	}
	tc->refused = 1;
	if (code == TUNNEL_H2_REFUSED)
		LOG_WARN("tunnel refused by the manager: this cluster is not enrolled (removed "
			 "from the manager?)");
	else
		LOG_WARN("the manager ended the tunnel (GOAWAY, HTTP/2 error %u); will reconnect",
			 code);
}

static void tc_on_flush(uv_idle_t *h)
{
	struct tunnel_client *tc = h->data;

	uv_idle_stop(h);
	if (tc->t && tunnel_transport_up(&tc->tr))
		tunnel_h2_flush(tc->t);
}

static int tc_writable(void *io)
{
	struct tunnel_client *tc = io;

	return tunnel_transport_writable(&tc->tr);
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

/* ---- the transport under the session (either kind) ---- */

static void tc_tr_on_bytes(void *owner, const uint8_t *data, size_t len)
{
	struct tunnel_client *tc = owner;

	if (tc->t == NULL)
		return;
	LOG_DEBUG("tunnel: %zu bytes from the manager", len);
	tunnel_h2_touch(tc->t, uv_now(tc->ag->loop));
	if (tunnel_h2_feed(tc->t, data, len) < 0 || !tunnel_h2_alive(tc->t)) {
		if (!tc->refused)
			LOG_WARN("tunnel protocol error from the manager; reconnecting");
		tunnel_transport_close(&tc->tr, WS_CLOSE_PROTOCOL_ERROR, "HTTP/2 protocol error");
	}
}

static void tc_tr_on_junk(void *owner, const char *why)
{
	(void)owner;
	LOG_WARN("the manager sent %s; reconnecting", why);
}

static void tc_tr_on_drain(void *owner)
{
	struct tunnel_client *tc = owner;

	if (tc->t)
		tunnel_h2_flush(tc->t);
}

static void tc_tr_on_close(void *owner, int code)
{
	struct tunnel_client *tc = owner;
	uint64_t up_for = uv_now(tc->ag->loop) - tc->connected_at;

	if (tc->t) {
		tunnel_h2_free(tc->t); /* streams get on_close: upstream requests are aborted */
		tc->t = NULL;
	}
	if (tc->stopping) {
		tc_maybe_free(tc);
		return;
	}
	if (up_for >= TUNNEL_CLIENT_HEALTHY_MS && !tc->refused)
		tc->attempt = 0;
	LOG_WARN("tunnel to the manager closed (code %d) after %llu s; reconnecting", code,
		 (unsigned long long)(up_for / 1000));
	tc_schedule(tc);
}

static const struct tunnel_transport_callbacks tc_tr_cbs = {
	.on_bytes = tc_tr_on_bytes,
	.on_junk = tc_tr_on_junk,
	.on_drain = tc_tr_on_drain,
	.on_close = tc_tr_on_close,
};

/* The transport in tc->tr is up: start serving HTTP/2 on it. */
static void tc_session_start(struct tunnel_client *tc)
{
	struct tunnel_h2_io io = {tc_send, tc_kick, tc_writable, tc};

	tc->refused = 0;
	tc->t = tunnel_h2_new(0, NULL, &io, &tc_tunnel_cbs, tc);
	if (tc->t == NULL) {
		tunnel_transport_abort(&tc->tr);
		return;
	}
	tc->connected_at = uv_now(tc->ag->loop);
	tunnel_h2_touch(tc->t, tc->connected_at);
	tunnel_h2_flush(tc->t);
	LOG_INFO("tunnel to the manager at %s is up (transport %s)",
		 tc->ag->cfg.addresses[tc->addr], tunnel_transport_name(&tc->tr));
	uv_timer_start(&tc->timer, tc_on_tick, TUNNEL_CLIENT_TICK_MS, TUNNEL_CLIENT_TICK_MS);
}

/* ---- the websocket transport ---- */

static void tc_on_ws_connected(struct ws *w, int status, void *arg)
{
	struct tunnel_client *tc = arg;

	tc->connecting = 0;
	if (w == NULL) {
		if (tc->stopping) {
			tc_maybe_free(tc);
			return;
		}
		if (status == 403)
			LOG_WARN("tunnel refused by the manager (403): this cluster is not "
				 "enrolled (removed from the manager?)");
		else if (status > 0)
			LOG_WARN("tunnel refused by the manager with HTTP %d", status);
		else
			LOG_WARN("cannot open the tunnel to %s: %s", tc->ag->cfg.addresses[tc->addr],
				 agent_strerror(status));
		tc_retry(tc);
		return;
	}
	tunnel_transport_ws(&tc->tr, w, &tc_tr_cbs, tc);
	if (tc->stopping) {
		tunnel_transport_close(&tc->tr, WS_CLOSE_GOING_AWAY, "agent stopping");
		return;
	}
	tc_session_start(tc);
}

static void tc_connect_ws(struct tunnel_client *tc)
{
	struct http_client_opts opts;
	int rc;

	if (agent_manager_opts(tc->ag, tc->addr, &opts, tc->hostbuf, sizeof(tc->hostbuf)) < 0) {
		tc_retry(tc);
		return;
	}
	tc->connecting = 1;
	rc = ws_connect(tc->ag->loop, &opts, "/1.0/remote-cluster/ws", TUNNEL_ALPN, NULL, 0,
			TC_WS_MAX_MESSAGE, tunnel_transport_ws_callbacks(), NULL, tc_on_ws_connected,
			tc);
	if (rc < 0) {
		tc->connecting = 0;
		LOG_WARN("cannot start the tunnel connection: %s", agent_strerror(rc));
		tc_schedule(tc);
	}
}

/* ---- the direct transport ---- */

/* What the connector answered to our ALPN list, for the log. */
static void tc_alpn_text(struct conn *c, char *out, size_t outlen)
{
	unsigned len = 0;
	const char *p = conn_alpn(c, &len);

	if (p == NULL || len == 0)
		snprintf(out, outlen, "no ALPN protocol");
	else
		snprintf(out, outlen, "ALPN %.*s", (int)(len > 64 ? 64 : len), p);
}

static void tc_dial_on_open(struct conn *c)
{
	struct tunnel_client *tc = conn_data(c);
	unsigned len = 0;
	const char *p = conn_alpn(c, &len);
	char got[96];

	uv_timer_stop(&tc->timer);
	if (p && len == sizeof(TUNNEL_ALPN) - 1 && memcmp(p, TUNNEL_ALPN, len) == 0) {
		tc->dial = NULL;
		tc->connecting = 0;
		tunnel_transport_direct(&tc->tr, c, &tc_tr_cbs, tc);
		tc_session_start(tc);
		return;
	}
	tc_alpn_text(c, got, sizeof(got));
	if (tc->ag->tunnel_transport == AGENT_TRANSPORT_DIRECT) {
		LOG_WARN("the connector at %s refused the direct tunnel transport (it answered %s "
			 "to ALPN " TUNNEL_ALPN "): an HTTP proxy in front of it, or an older "
			 "lxcm-server? Use --tunnel-transport auto or websocket",
			 tc->ag->cfg.addresses[tc->addr], got);
		tc->dial_err = -EPROTONOSUPPORT;
	} else {
		LOG_INFO("the connector at %s answered %s to ALPN " TUNNEL_ALPN
			 ": using the WebSocket transport",
			 tc->ag->cfg.addresses[tc->addr], got);
		tc->dial_fallback = 1;
	}
	conn_close(c);
}

static void tc_dial_on_end(struct conn *c, int err)
{
	struct tunnel_client *tc = conn_data(c);

	tc->dial_err = err < 0 ? err : -ECONNRESET;
	conn_close(c);
}

/* The dial is over without a tunnel: fall back, or retry later. */
static void tc_dial_on_close(struct conn *c)
{
	struct tunnel_client *tc = conn_data(c);
	int fallback = tc->dial_fallback;

	tc->dial = NULL;
	tc->connecting = 0;
	tc->dial_fallback = 0;
	uv_timer_stop(&tc->timer);
	if (tc->stopping) {
		tc_maybe_free(tc);
		return;
	}
	if (fallback) {
		tc_connect_ws(tc);
		return;
	}
	if (tc->dial_err != -EPROTONOSUPPORT)
		LOG_WARN("cannot open the tunnel to %s: %s", tc->ag->cfg.addresses[tc->addr],
			 agent_strerror(tc->dial_err));
	tc_retry(tc);
}

static const struct conn_callbacks tc_dial_cbs = {
	.on_open = tc_dial_on_open,
	.on_end = tc_dial_on_end,
	.on_close = tc_dial_on_close,
};

static void tc_dial_timeout(uv_timer_t *timer)
{
	struct tunnel_client *tc = timer->data;

	if (tc->dial) {
		tc->dial_err = HTTP_CLIENT_ETIMEDOUT;
		conn_close(tc->dial);
	}
}

static void tc_connect_direct(struct tunnel_client *tc)
{
	struct http_client_opts opts;
	struct conn *c;
	int rc;

	if (agent_manager_opts(tc->ag, tc->addr, &opts, tc->hostbuf, sizeof(tc->hostbuf)) < 0) {
		tc_retry(tc);
		return;
	}
	c = conn_new(tc->ag->loop, opts.tls, &tc_dial_cbs, tc);
	if (c == NULL) {
		tc_schedule(tc);
		return;
	}
	tc->dial = c;
	tc->connecting = 1;
	tc->dial_err = 0;
	tc->dial_fallback = 0;
	conn_set_alpn(c, tc_alpn, sizeof(tc_alpn) - 1);
	conn_set_pin(c, opts.pin);
	rc = conn_connect_tcp(c, opts.host, opts.port);
	if (rc < 0) {
		tc->dial_err = rc;
		conn_close(c); /* tc_dial_on_close retries */
		return;
	}
	uv_timer_stop(&tc->timer);
	uv_timer_start(&tc->timer, tc_dial_timeout, opts.connect_timeout_ms, 0);
}

static void tc_connect(struct tunnel_client *tc)
{
	if (tc->stopping || tc->connecting || tunnel_transport_up(&tc->tr))
		return;
	if (tc->ag->tunnel_transport == AGENT_TRANSPORT_WEBSOCKET)
		tc_connect_ws(tc);
	else
		tc_connect_direct(tc);
}

/* Reconnect timer when down; liveness check when up. */
static void tc_on_tick(uv_timer_t *timer)
{
	struct tunnel_client *tc = timer->data;
	uint64_t now = uv_now(tc->ag->loop);

	if (!tunnel_transport_up(&tc->tr)) {
		tc_connect(tc);
		return;
	}
	if (tc->t && now - tunnel_h2_last_recv_ms(tc->t) > TUNNEL_CLIENT_DEAD_AFTER_MS) {
		LOG_WARN("tunnel silent for %d s; reconnecting", TUNNEL_CLIENT_DEAD_AFTER_MS / 1000);
		tunnel_transport_abort(&tc->tr);
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
	tc_maybe_free(tc);
}

void tunnel_client_stop(struct agent *ag)
{
	struct tunnel_client *tc = ag->tc;

	if (tc == NULL || tc->stopping)
		return;
	tc->stopping = 1;
	ag->tc = NULL;
	if (tc->dial)
		conn_close(tc->dial);
	if (tc->t && tunnel_transport_up(&tc->tr)) {
		tunnel_h2_goaway(tc->t);
		tunnel_h2_flush(tc->t);
	}
	tunnel_transport_close(&tc->tr, WS_CLOSE_GOING_AWAY, "agent stopping");
	uv_close((uv_handle_t *)&tc->timer, tc_on_timer_closed);
	uv_close((uv_handle_t *)&tc->flusher, tc_on_timer_closed);
}

int tunnel_client_transport_parse(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return AGENT_TRANSPORT_AUTO;
	if (strcmp(s, "direct") == 0)
		return AGENT_TRANSPORT_DIRECT;
	if (strcmp(s, "websocket") == 0)
		return AGENT_TRANSPORT_WEBSOCKET;
	return -EINVAL;
}
