/*
 * tunnel_transport.c - the two carriers of a tunnel's HTTP/2 bytes:
 * WebSocket binary messages and the TLS connection itself (the direct
 * transport). See tunnel_transport.h.
 */
#include "net/tunnel_transport.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

/* ---- websocket ---- */

static int tt_ws_send(struct tunnel_transport *tr, const uint8_t *data, size_t len)
{
	return tr->h ? ws_send(tr->h, WS_BINARY, data, len) : -EPIPE;
}

static size_t tt_ws_pending(const struct tunnel_transport *tr)
{
	return tr->h ? ws_pending(tr->h) : 0;
}

static void tt_ws_close(struct tunnel_transport *tr, uint16_t code, const char *reason)
{
	if (tr->h)
		ws_close(tr->h, code, reason);
}

static void tt_ws_abort(struct tunnel_transport *tr)
{
	if (tr->h)
		ws_abort(tr->h);
}

static struct conn *tt_ws_conn(const struct tunnel_transport *tr)
{
	return tr->h ? ws_conn(tr->h) : NULL;
}

const struct tunnel_transport_ops tunnel_transport_ws_ops = {
	.name = "websocket",
	.send = tt_ws_send,
	.pending = tt_ws_pending,
	.close = tt_ws_close,
	.abort = tt_ws_abort,
	.conn = tt_ws_conn,
};

static void tt_ws_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	struct tunnel_transport *tr = ws_data(w);

	if (tr == NULL)
		return;
	if (opcode != WS_BINARY) {
		tr->cbs->on_junk(tr->owner, "a text message on a v2 tunnel");
		ws_close(w, WS_CLOSE_PROTOCOL_ERROR, "v2 tunnels carry binary messages only");
		return;
	}
	tr->cbs->on_bytes(tr->owner, (const uint8_t *)data, len);
}

static void tt_ws_on_drain(struct ws *w)
{
	struct tunnel_transport *tr = ws_data(w);

	if (tr)
		tr->cbs->on_drain(tr->owner);
}

static void tt_ws_on_close(struct ws *w, int code)
{
	struct tunnel_transport *tr = ws_data(w);

	if (tr == NULL)
		return; /* aborted before it had an owner */
	tr->h = NULL;
	tr->cbs->on_close(tr->owner, code); /* may free tr */
}

static const struct ws_callbacks tt_ws_cbs = {
	.on_message = tt_ws_on_message,
	.on_drain = tt_ws_on_drain,
	.on_close = tt_ws_on_close,
};

void tunnel_transport_ws(struct tunnel_transport *tr, struct ws *w,
			 const struct tunnel_transport_callbacks *cbs, void *owner)
{
	tr->ops = &tunnel_transport_ws_ops;
	tr->h = w;
	tr->cbs = cbs;
	tr->owner = owner;
	tr->close_timer = NULL;
	if (cbs != NULL)
		ws_set_data(w, tr);
}

const struct ws_callbacks *tunnel_transport_ws_callbacks(void)
{
	return &tt_ws_cbs;
}

/* ---- direct: HTTP/2 straight over the TLS connection ---- */

static int tt_direct_send(struct tunnel_transport *tr, const uint8_t *data, size_t len)
{
	return tr->h ? conn_write(tr->h, data, len) : -EPIPE;
}

static size_t tt_direct_pending(const struct tunnel_transport *tr)
{
	return tr->h ? conn_write_pending(tr->h) : 0;
}

static void tt_close_timer_closed(uv_handle_t *h)
{
	free(h);
}

/* The peer did not end its side in time: cut it off. */
static void tt_close_timer_fired(uv_timer_t *t)
{
	conn_close(t->data);
}

/*
 * Our output ends after what is queued (TLS close_notify and FIN), and the
 * connection closes when the peer ends its side, or after the timeout for
 * a peer that never does. Closing at once would make the kernel answer
 * the peer's unread bytes with a reset, which can destroy our last frames
 * (a GOAWAY saying why) before the peer reads them.
 */
static void tt_direct_close(struct tunnel_transport *tr, uint16_t code, const char *reason)
{
	struct conn *c = tr->h;

	(void)code;
	(void)reason;
	if (c == NULL || tr->close_timer != NULL || conn_is_closing(c))
		return;
	tr->close_timer = malloc(sizeof(*tr->close_timer));
	if (tr->close_timer == NULL) {
		conn_shutdown(c);
		return;
	}
	uv_timer_init(conn_loop(c), tr->close_timer);
	tr->close_timer->data = c;
	uv_timer_start(tr->close_timer, tt_close_timer_fired, TUNNEL_TRANSPORT_CLOSE_TIMEOUT_MS, 0);
	conn_shutdown_write(c);
}

static void tt_direct_abort(struct tunnel_transport *tr)
{
	if (tr->h)
		conn_close(tr->h);
}

static struct conn *tt_direct_conn(const struct tunnel_transport *tr)
{
	return tr->h;
}

const struct tunnel_transport_ops tunnel_transport_direct_ops = {
	.name = "direct",
	.send = tt_direct_send,
	.pending = tt_direct_pending,
	.close = tt_direct_close,
	.abort = tt_direct_abort,
	.conn = tt_direct_conn,
};

static void tt_conn_on_data(struct conn *c, const char *data, size_t len)
{
	struct tunnel_transport *tr = conn_data(c);

	tr->cbs->on_bytes(tr->owner, (const uint8_t *)data, len);
}

static void tt_conn_on_drain(struct conn *c)
{
	struct tunnel_transport *tr = conn_data(c);

	tr->cbs->on_drain(tr->owner);
}

/* The peer's end (or an error): the session cannot go on either way. */
static void tt_conn_on_end(struct conn *c, int err)
{
	struct tunnel_transport *tr = conn_data(c);

	if (err < 0)
		LOG_DEBUG("tunnel connection with %s failed (%d)", conn_peer_addr(c), err);
	tr->close_code = err < 0 ? err : WS_CLOSE_NORMAL;
	conn_close(c);
}

static void tt_conn_on_close(struct conn *c)
{
	struct tunnel_transport *tr = conn_data(c);

	tr->h = NULL;
	if (tr->close_timer) {
		uv_timer_stop(tr->close_timer);
		uv_close((uv_handle_t *)tr->close_timer, tt_close_timer_closed);
		tr->close_timer = NULL;
	}
	tr->cbs->on_close(tr->owner, tr->close_code); /* may free tr */
}

static const struct conn_callbacks tt_conn_cbs = {
	.on_data = tt_conn_on_data,
	.on_end = tt_conn_on_end,
	.on_drain = tt_conn_on_drain,
	.on_close = tt_conn_on_close,
};

void tunnel_transport_direct(struct tunnel_transport *tr, struct conn *c,
			     const struct tunnel_transport_callbacks *cbs, void *owner)
{
	tr->ops = &tunnel_transport_direct_ops;
	tr->h = c;
	tr->cbs = cbs;
	tr->owner = owner;
	tr->close_timer = NULL;
	tr->close_code = -ECONNABORTED; /* what an abort reports */
	conn_set_data(c, tr);
	conn_set_callbacks(c, &tt_conn_cbs);
	/* As ws.c does: conn_write reports the high-water mark at half of ours. */
	conn_set_high_water(c, TUNNEL_TRANSPORT_HIGH_WATER / 2);
	conn_read_start(c);
}

/* ---- either ---- */

int tunnel_transport_send(struct tunnel_transport *tr, const uint8_t *data, size_t len)
{
	return tr->ops ? tr->ops->send(tr, data, len) : -EPIPE;
}

int tunnel_transport_writable(const struct tunnel_transport *tr)
{
	return tr->ops && tr->h && tr->ops->pending(tr) < TUNNEL_TRANSPORT_HIGH_WATER;
}

void tunnel_transport_close(struct tunnel_transport *tr, uint16_t code, const char *reason)
{
	if (tr->ops)
		tr->ops->close(tr, code, reason);
}

void tunnel_transport_abort(struct tunnel_transport *tr)
{
	if (tr->ops)
		tr->ops->abort(tr);
}

int tunnel_transport_up(const struct tunnel_transport *tr)
{
	return tr->h != NULL;
}

const char *tunnel_transport_name(const struct tunnel_transport *tr)
{
	return tr->ops ? tr->ops->name : "none";
}

struct conn *tunnel_transport_conn(const struct tunnel_transport *tr)
{
	return tr->ops ? tr->ops->conn(tr) : NULL;
}
