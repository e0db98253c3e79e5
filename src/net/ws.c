/*
 * ws.c - WebSocket over a conn with wslay's event API.
 *
 * Input: the conn hands us plaintext in on_data; we point w->in at it and run
 * wslay_event_recv, whose recv callback copies from our backlog first (bytes
 * kept while reading was stopped, or that came with the upgrade) and then
 * from w->in, and says WOULDBLOCK when both are empty or reading is stopped.
 * wslay reads ahead up to 4 KiB, so a few messages may still complete after
 * ws_read_stop: those are held (copied) and delivered after ws_read_start,
 * which keeps the promise that no on_message runs while stopped.
 *
 * Output: the send callback never blocks. It coalesces wslay's small writes
 * (frame headers, 4 KiB masked chunks) into w->obuf and gives big payloads
 * straight to conn_write, which copies; so every wslay_event_send empties
 * wslay's queue, and the only real output queue is the conn's. Backpressure
 * is ws_pending() against WS_HIGH_WATER; the conn's high-water mark is set to
 * half of it, so whenever we report "full" the conn has flagged a drain too.
 *
 * Closing: w->flags & WS_F_CLOSING means the conn is being closed (or
 * flushed, then closed). The ws lives on until the conn's on_close, where the
 * user's on_close runs once; then our two handles are closed and the last
 * close callback frees the ws. Nothing here frees the ws from inside a wslay
 * or conn call, so callers up the stack may look at w->flags afterwards.
 */
#include "net/ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/slice.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Smaller writes are gathered into one conn_write up to this size. */
#define WS_OBUF_FLUSH (64 * 1024)
/*
 * Cap on bytes kept unparsed while reading is stopped: one conn read (64 KiB)
 * plus what came with the upgrade (at most the HTTP header cap).
 */
#define WS_MAX_BACKLOG (256 * 1024)
/*
 * Cap on held messages beyond max_message: after ws_read_stop only what
 * wslay had already buffered (4 KiB) can still complete.
 */
#define WS_HELD_SLACK (64 * 1024)
/* Control frames carry up to 125 bytes; a smaller cap would break pings. */
#define WS_MIN_MAX_MESSAGE 125
#define WS_MAX_REASON 123

enum {
	WS_F_CLIENT = 1 << 0,
	WS_F_PAUSED = 1 << 1,	   /* ws_read_stop */
	WS_F_IN_RECV = 1 << 2,	   /* inside wslay_event_recv */
	WS_F_CLOSING = 1 << 3,	   /* finished: the conn is closing */
	WS_F_USER_CLOSED = 1 << 4, /* ws_close called: no more messages */
	WS_F_WANT_DRAIN = 1 << 5,  /* ws_send returned 0 */
	WS_F_PEER_EOF = 1 << 6,	   /* the conn ended while bytes were still kept */
	WS_F_LINGER = 1 << 7,	   /* we failed the peer: wait for its EOF */
	WS_F_PEER_ERROR = 1 << 8,  /* wslay's frame parser rejected the input */
};

struct ws_held {
	struct ws_held *next;
	int opcode;
	size_t len;
	char data[];
};

struct ws {
	struct conn *conn;
	wslay_event_context_ptr ctx;
	const struct ws_callbacks *cbs;
	void *data;
	size_t max_message;
	unsigned flags;
	int close_code;
	uv_timer_t timer; /* closing handshake, linger and flush timeouts */
	uv_idle_t idle;	  /* delivers kept input on a later loop turn */
	int handles;
	/* Input. */
	const char *in;
	size_t in_len;
	struct buf backlog; /* capped at WS_MAX_BACKLOG */
	size_t backlog_off;
	struct ws_held *held, *held_tail;
	size_t held_bytes; /* capped at max_message + WS_HELD_SLACK */
	/* Output. */
	struct buf obuf;
	int write_err;
};

static const struct conn_callbacks ws_conn_cbs;

static void ws_flush(struct ws *w);
static void ws_pump(struct ws *w);

/* ---- accessors ---- */

void *ws_data(const struct ws *w)
{
	return w->data;
}

void ws_set_data(struct ws *w, void *data)
{
	w->data = data;
}

struct conn *ws_conn(const struct ws *w)
{
	return w->conn;
}

size_t ws_pending(const struct ws *w)
{
	size_t n = wslay_event_get_queued_msg_length(w->ctx) + w->obuf.len;

	return w->conn ? n + conn_write_pending(w->conn) : n;
}

/* ---- lifetime ---- */

static void ws_held_free(struct ws *w)
{
	struct ws_held *m;

	while ((m = w->held) != NULL) {
		w->held = m->next;
		free(m);
	}
	w->held_tail = NULL;
	w->held_bytes = 0;
}

static void ws_free(struct ws *w)
{
	wslay_event_context_free(w->ctx);
	buf_free(&w->backlog);
	buf_free(&w->obuf);
	ws_held_free(w);
	free(w);
}

static void ws_on_handle_closed(uv_handle_t *h)
{
	struct ws *w = h->data;

	if (--w->handles == 0)
		ws_free(w);
}

/* The conn is about to be freed: tell the user, then let our handles go. */
static void ws_on_conn_close(struct conn *c)
{
	struct ws *w = conn_data(c);

	if (w == NULL)
		return;
	w->conn = NULL;
	if (!(w->flags & WS_F_CLOSING)) {
		w->flags |= WS_F_CLOSING;
		w->close_code = -ECONNRESET;
	}
	if (w->cbs->on_close)
		w->cbs->on_close(w, w->close_code);
	w->handles = 2;
	uv_close((uv_handle_t *)&w->timer, ws_on_handle_closed);
	uv_close((uv_handle_t *)&w->idle, ws_on_handle_closed);
}

static void ws_on_timer(uv_timer_t *t);

/*
 * Ends the WebSocket with code. graceful: flush queued output first (bounded
 * by WS_CLOSE_TIMEOUT_MS). on_close follows from the conn's on_close.
 */
static void ws_finish(struct ws *w, int code, int graceful)
{
	if (w->flags & WS_F_CLOSING)
		return;
	w->flags |= WS_F_CLOSING;
	w->close_code = code;
	uv_idle_stop(&w->idle);
	if (graceful) {
		uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
		conn_shutdown(w->conn);
	} else {
		uv_timer_stop(&w->timer);
		conn_close(w->conn);
	}
}

static void ws_on_timer(uv_timer_t *t)
{
	struct ws *w = t->data;

	if (w->flags & WS_F_CLOSING) {
		/* The peer does not take our last bytes. */
		if (w->conn)
			conn_close(w->conn);
		return;
	}
	ws_finish(w, (w->flags & WS_F_LINGER) ? w->close_code : WS_CLOSE_ABNORMAL, 0);
}

/*
 * Looks at wslay's closing state after input was parsed or output sent, and
 * decides whether the connection is done.
 */
static void ws_check_done(struct ws *w)
{
	wslay_event_context_ptr ctx = w->ctx;

	if ((w->flags & WS_F_CLOSING) || wslay_event_want_write(ctx))
		return;
	if (!wslay_event_get_close_sent(ctx)) {
		if (!wslay_event_want_read(ctx) || !wslay_event_get_write_enabled(ctx))
			ws_finish(w, -EPROTO, 0);
		return;
	}
	if (wslay_event_get_close_received(ctx)) {
		/* Both close frames went: the handshake is complete. */
		ws_finish(w, wslay_event_get_status_code_received(ctx), 1);
		return;
	}
	if (wslay_event_want_read(ctx) || (w->flags & WS_F_LINGER))
		return; /* ws_close: waiting for the peer's close frame */
	/*
	 * We failed the peer (bad frame, message too big, bad UTF-8). Discard
	 * its input until it closes, so that closing our end does not reset the
	 * connection under our close frame.
	 */
	w->flags |= WS_F_LINGER;
	w->close_code = (w->flags & WS_F_PEER_ERROR) ? WS_CLOSE_PROTOCOL_ERROR
						     : wslay_event_get_status_code_sent(ctx);
	if (w->close_code == WS_CLOSE_TOO_BIG)
		LOG_INFO("closing %s: a message exceeded %zu bytes", conn_peer_addr(w->conn),
			 w->max_message);
	else
		LOG_DEBUG("closing %s: protocol error (%d)", conn_peer_addr(w->conn),
			  w->close_code);
	uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
}

/* ---- output ---- */

static int ws_obuf_flush(struct ws *w)
{
	int rc;

	if (w->obuf.len == 0)
		return 0;
	rc = conn_write(w->conn, w->obuf.data, w->obuf.len);
	buf_reset(&w->obuf);
	return rc < 0 ? rc : 0;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
			  void *user)
{
	struct ws *w = user;
	int rc = 0;

	(void)flags;
	if (w->flags & WS_F_CLOSING) {
		rc = -EPIPE;
	} else if (len >= WS_OBUF_FLUSH) {
		rc = ws_obuf_flush(w);
		if (rc == 0) {
			rc = conn_write(w->conn, data, len);
			rc = rc < 0 ? rc : 0;
		}
	} else {
		if (w->obuf.len + len > WS_OBUF_FLUSH)
			rc = ws_obuf_flush(w);
		if (rc == 0)
			rc = buf_append(&w->obuf, data, len);
	}
	if (rc < 0 || (w->flags & WS_F_CLOSING)) {
		w->write_err = rc < 0 ? rc : -EPIPE;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)user;
	if (RAND_bytes(buf, (int)len) != 1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return 0;
}

/* Calls the user's on_drain once the output fell to half the high-water mark. */
static void ws_maybe_drain(struct ws *w)
{
	if ((w->flags & (WS_F_WANT_DRAIN | WS_F_CLOSING)) != WS_F_WANT_DRAIN ||
	    ws_pending(w) > WS_HIGH_WATER / 2)
		return;
	w->flags &= ~WS_F_WANT_DRAIN;
	if (w->cbs->on_drain)
		w->cbs->on_drain(w);
}

/* Sends whatever wslay queued (never blocks, see above), then checks for the end. */
static void ws_flush(struct ws *w)
{
	int rv;

	if (w->flags & (WS_F_CLOSING | WS_F_IN_RECV))
		return; /* inside recv, ws_pump flushes afterwards */
	if (wslay_event_want_write(w->ctx)) {
		w->write_err = 0;
		rv = wslay_event_send(w->ctx);
		if (rv == 0 && !(w->flags & WS_F_CLOSING))
			rv = ws_obuf_flush(w);
		if (w->flags & WS_F_CLOSING)
			return;
		if (rv < 0) {
			buf_reset(&w->obuf);
			ws_finish(w, w->write_err ? w->write_err : -EIO, 0);
			return;
		}
	}
	ws_check_done(w);
}

/* ---- input ---- */

/* Keeps bytes that cannot be parsed now, behind those already kept. */
static int ws_stash(struct ws *w, const char *data, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	if (w->backlog_off) {
		buf_consume(&w->backlog, w->backlog_off);
		w->backlog_off = 0;
	}
	rc = buf_append(&w->backlog, data, len);
	if (rc < 0) {
		LOG_WARN("%s: more than %d bytes arrived while reading was stopped",
			 w->conn ? conn_peer_addr(w->conn) : "?", WS_MAX_BACKLOG);
		ws_finish(w, rc, 0);
	}
	return rc;
}

static size_t ws_kept(const struct ws *w)
{
	return w->backlog.len - w->backlog_off;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
			  void *user)
{
	struct ws *w = user;
	size_t n;

	(void)flags;
	if (w->flags & (WS_F_PAUSED | WS_F_CLOSING))
		goto block;
	if (ws_kept(w)) {
		n = ws_kept(w) < len ? ws_kept(w) : len;
		memcpy(buf, w->backlog.data + w->backlog_off, n);
		w->backlog_off += n;
		if (w->backlog_off == w->backlog.len) {
			buf_reset(&w->backlog);
			w->backlog_off = 0;
		}
		return (ssize_t)n;
	}
	if (w->in_len) {
		n = w->in_len < len ? w->in_len : len;
		memcpy(buf, w->in, n);
		w->in += n;
		w->in_len -= n;
		return (ssize_t)n;
	}
block:
	wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	return -1;
}

/* Copies a message that completed while reading was stopped. */
static void ws_hold(struct ws *w, int opcode, const uint8_t *msg, size_t len)
{
	struct ws_held *m;

	if (w->held_bytes + len > w->max_message + WS_HELD_SLACK) {
		LOG_WARN("%s: too many messages arrived while reading was stopped",
			 conn_peer_addr(w->conn));
		ws_finish(w, -ENOBUFS, 0);
		return;
	}
	m = malloc(sizeof(*m) + len);
	if (m == NULL) {
		ws_finish(w, -ENOMEM, 0);
		return;
	}
	m->next = NULL;
	m->opcode = opcode;
	m->len = len;
	if (len)
		memcpy(m->data, msg, len);
	if (w->held_tail)
		w->held_tail->next = m;
	else
		w->held = m;
	w->held_tail = m;
	w->held_bytes += len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *user)
{
	struct ws *w = user;

	(void)ctx;
	/* Pings are answered and close frames echoed by wslay itself. */
	if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
		return;
	if (w->flags & (WS_F_CLOSING | WS_F_USER_CLOSED))
		return;
	if ((w->flags & WS_F_PAUSED) || w->held) {
		ws_hold(w, arg->opcode, arg->msg, arg->msg_length);
		return;
	}
	if (w->cbs->on_message)
		w->cbs->on_message(w, arg->opcode, arg->msg ? (const char *)arg->msg : "",
				   arg->msg_length);
}

/* Runs from conn callbacks and the idle handle only, never from our API. */
static void ws_deliver_held(struct ws *w)
{
	struct ws_held *m;

	while ((m = w->held) != NULL &&
	       !(w->flags & (WS_F_PAUSED | WS_F_CLOSING | WS_F_USER_CLOSED))) {
		w->held = m->next;
		if (w->held == NULL)
			w->held_tail = NULL;
		w->held_bytes -= m->len;
		if (w->cbs->on_message)
			w->cbs->on_message(w, m->opcode, m->data, m->len);
		free(m);
	}
}

/* Parses kept bytes and w->in, then sends what parsing queued (pongs, close). */
static void ws_pump(struct ws *w)
{
	int rv;

	if (w->flags & (WS_F_CLOSING | WS_F_IN_RECV))
		return;
	w->flags |= WS_F_IN_RECV;
	rv = wslay_event_recv(w->ctx);
	w->flags &= ~WS_F_IN_RECV;
	if (w->flags & WS_F_CLOSING)
		return;
	if (rv == WSLAY_ERR_NOMEM) {
		ws_finish(w, -ENOMEM, 0);
		return;
	}
	if (rv < 0) {
		/* The frame parser failed; wslay queued a close frame. */
		w->flags |= WS_F_PEER_ERROR;
	}
	ws_flush(w);
	ws_maybe_drain(w);
}

static void ws_on_idle(uv_idle_t *h);

/* Parses kept input on a later loop turn (never from inside our API). */
static void ws_schedule(struct ws *w)
{
	if (!(w->flags & (WS_F_CLOSING | WS_F_PAUSED)))
		uv_idle_start(&w->idle, ws_on_idle);
}

/* The conn ended cleanly; finish unless kept input still has to be parsed. */
static void ws_eof(struct ws *w)
{
	if (w->held || (ws_kept(w) && wslay_event_want_read(w->ctx))) {
		w->flags |= WS_F_PEER_EOF;
		ws_schedule(w); /* unless stopped: then ws_read_start does */
		return;
	}
	ws_finish(w, (w->flags & WS_F_LINGER) ? w->close_code : WS_CLOSE_ABNORMAL, 0);
}

static void ws_on_idle(uv_idle_t *h)
{
	struct ws *w = h->data;

	uv_idle_stop(h);
	ws_deliver_held(w);
	if (w->flags & (WS_F_PAUSED | WS_F_CLOSING))
		return;
	ws_pump(w);
	if ((w->flags & (WS_F_PEER_EOF | WS_F_PAUSED | WS_F_CLOSING)) == WS_F_PEER_EOF)
		ws_eof(w);
}

static void ws_on_data(struct conn *c, const char *data, size_t len)
{
	struct ws *w = conn_data(c);

	if (w == NULL || (w->flags & WS_F_CLOSING))
		return;
	if (!wslay_event_want_read(w->ctx))
		return; /* lingering after a close frame: discard */
	ws_deliver_held(w);
	if (w->flags & WS_F_CLOSING)
		return;
	if ((w->flags & WS_F_PAUSED) || w->held) {
		ws_stash(w, data, len);
		return;
	}
	w->in = data;
	w->in_len = len;
	ws_pump(w);
	if (!(w->flags & WS_F_CLOSING) && w->in_len && wslay_event_want_read(w->ctx))
		ws_stash(w, w->in, w->in_len);
	w->in = NULL;
	w->in_len = 0;
}

static void ws_on_end(struct conn *c, int err)
{
	struct ws *w = conn_data(c);

	if (w == NULL) {
		conn_close(c);
		return;
	}
	if (w->flags & WS_F_CLOSING) {
		conn_close(c);
		return;
	}
	if (err < 0) {
		ws_finish(w, err, 0);
		return;
	}
	ws_eof(w);
}

static void ws_on_conn_drain(struct conn *c)
{
	struct ws *w = conn_data(c);

	if (w)
		ws_maybe_drain(w);
}

static const struct conn_callbacks ws_conn_cbs = {
	.on_data = ws_on_data,
	.on_end = ws_on_end,
	.on_drain = ws_on_conn_drain,
	.on_close = ws_on_conn_close,
};

/* ---- API ---- */

struct ws *ws_new(struct conn *c, int is_client, size_t max_message, const struct ws_callbacks *cbs,
		  void *data)
{
	static const struct wslay_event_callbacks wcbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	struct ws *w = calloc(1, sizeof(*w));
	int rv;

	if (w == NULL)
		return NULL;
	if (max_message == 0)
		max_message = WS_DEFAULT_MAX_MESSAGE;
	if (max_message < WS_MIN_MAX_MESSAGE)
		max_message = WS_MIN_MAX_MESSAGE;
	rv = is_client ? wslay_event_context_client_init(&w->ctx, &wcbs, w)
		       : wslay_event_context_server_init(&w->ctx, &wcbs, w);
	if (rv != 0) {
		free(w);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, max_message);
	w->conn = c;
	w->cbs = cbs;
	w->data = data;
	w->max_message = max_message;
	w->flags = is_client ? WS_F_CLIENT : 0;
	buf_init(&w->backlog, WS_MAX_BACKLOG);
	buf_init(&w->obuf, WS_OBUF_FLUSH);
	uv_timer_init(conn_loop(c), &w->timer);
	w->timer.data = w;
	uv_idle_init(conn_loop(c), &w->idle);
	w->idle.data = w;
	conn_set_high_water(c, WS_HIGH_WATER / 2);
	conn_set_data(c, w);
	conn_set_callbacks(c, &ws_conn_cbs);
	/* The HTTP layer may have stopped reading at the upgrade. */
	conn_read_start(c);
	return w;
}

void ws_feed(struct ws *w, const char *data, size_t len)
{
	if ((w->flags & WS_F_CLOSING) || len == 0)
		return;
	if (ws_stash(w, data, len) == 0)
		ws_schedule(w);
}

int ws_send(struct ws *w, int opcode, const void *data, size_t len)
{
	struct wslay_event_msg m;
	int rv;

	if (opcode != WS_TEXT && opcode != WS_BINARY)
		return -EINVAL;
	if (w->flags & (WS_F_CLOSING | WS_F_USER_CLOSED))
		return -EPIPE;
	m.opcode = (uint8_t)opcode;
	m.msg = data;
	m.msg_length = len;
	rv = wslay_event_queue_msg(w->ctx, &m);
	if (rv == WSLAY_ERR_NOMEM)
		return -ENOMEM;
	if (rv < 0)
		return -EPIPE; /* a close frame is queued or sent */
	ws_flush(w);
	if (w->flags & WS_F_CLOSING)
		return -EPIPE;
	if (ws_pending(w) > WS_HIGH_WATER) {
		w->flags |= WS_F_WANT_DRAIN;
		return 0;
	}
	return 1;
}

void ws_read_stop(struct ws *w)
{
	if (w->flags & (WS_F_PAUSED | WS_F_CLOSING))
		return;
	w->flags |= WS_F_PAUSED;
	conn_read_stop(w->conn);
}

void ws_read_start(struct ws *w)
{
	if (!(w->flags & WS_F_PAUSED))
		return;
	w->flags &= ~WS_F_PAUSED;
	if (w->flags & WS_F_CLOSING)
		return;
	conn_read_start(w->conn);
	if (w->held || ws_kept(w) || (w->flags & WS_F_PEER_EOF))
		ws_schedule(w);
}

static int ws_code_sendable(uint16_t code)
{
	return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
	       (code >= 3000 && code <= 4999);
}

void ws_close(struct ws *w, uint16_t code, const char *reason)
{
	size_t rlen = reason ? strlen(reason) : 0;

	if (w->flags & (WS_F_CLOSING | WS_F_USER_CLOSED))
		return;
	w->flags |= WS_F_USER_CLOSED;
	ws_held_free(w);
	if (!ws_code_sendable(code))
		code = 0; /* a close frame without a code is always valid */
	if (rlen > WS_MAX_REASON)
		rlen = WS_MAX_REASON;
	/* Fails only when a close frame is already queued (echoing the peer's). */
	(void)wslay_event_queue_close(w->ctx, code, (const uint8_t *)(reason ? reason : ""),
				      code ? rlen : 0);
	/* Listen for the peer's close frame even if the user had stopped reading. */
	if (w->flags & WS_F_PAUSED) {
		w->flags &= ~WS_F_PAUSED;
		conn_read_start(w->conn);
	}
	if (ws_kept(w) || (w->flags & WS_F_PEER_EOF))
		ws_schedule(w);
	uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
	ws_flush(w);
}

void ws_abort(struct ws *w)
{
	ws_finish(w, -ECONNABORTED, 0);
}

/* ---- handshake helpers ---- */

static struct slice ws_trim(struct slice s)
{
	while (s.len && (s.base[0] == ' ' || s.base[0] == '\t')) {
		s.base++;
		s.len--;
	}
	while (s.len && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t'))
		s.len--;
	return s;
}

static int ws_eq_nocase(struct slice a, struct slice b)
{
	size_t i;

	if (a.len != b.len)
		return 0;
	for (i = 0; i < a.len; i++) {
		unsigned char x = (unsigned char)a.base[i], y = (unsigned char)b.base[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

/* 1 if the comma-separated list v holds token, case-insensitively. */
static int ws_list_has_token(struct slice v, struct slice token)
{
	size_t start = 0, i;

	if (v.base == NULL)
		return 0;
	for (i = 0; i <= v.len; i++) {
		if (i < v.len && v.base[i] != ',')
			continue;
		if (ws_eq_nocase(ws_trim(slice_make(v.base + start, i - start)), token))
			return 1;
		start = i + 1;
	}
	return 0;
}

/* Looks at every header called name (a header may be repeated). */
static int ws_headers_have_token(const struct http_header *h, size_t n, struct slice name,
				 struct slice token)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ws_eq_nocase(h[i].name, name) && ws_list_has_token(h[i].value, token))
			return 1;
	return 0;
}

/* How many headers are called name; *value is the last one, trimmed. */
static size_t ws_headers_count(const struct http_header *h, size_t n, struct slice name,
			       struct slice *value)
{
	size_t i, count = 0;

	*value = SLICE_NULL;
	for (i = 0; i < n; i++) {
		if (ws_eq_nocase(h[i].name, name)) {
			*value = ws_trim(h[i].value);
			count++;
		}
	}
	return count;
}

static int ws_b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

/* 16 bytes in base64: 22 alphabet characters and "==". */
static int ws_key_valid(struct slice k)
{
	size_t i;

	if (k.len != 24 || k.base[22] != '=' || k.base[23] != '=')
		return 0;
	for (i = 0; i < 22; i++)
		if (!ws_b64_char(k.base[i]))
			return 0;
	return 1;
}

int ws_accept_key(const char *key, size_t key_len, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	int ok;

	out[0] = '\0';
	if (mc == NULL)
		return -EIO;
	ok = EVP_DigestInit_ex(mc, EVP_sha1(), NULL) == 1 &&
	     EVP_DigestUpdate(mc, key, key_len) == 1 &&
	     EVP_DigestUpdate(mc, WS_GUID, sizeof(WS_GUID) - 1) == 1 &&
	     EVP_DigestFinal_ex(mc, md, &mdlen) == 1 && mdlen == 20;
	EVP_MD_CTX_free(mc);
	if (!ok || EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
		return -EIO;
	return 0;
}

int ws_client_key(char out[25])
{
	unsigned char raw[16];

	out[0] = '\0';
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)) != 24)
		return -EIO;
	return 0;
}

int ws_check_upgrade_request(const struct http_request *req, const char **why)
{
	const struct http_header *h = req->headers;
	size_t n = req->nheaders;
	struct slice v;

	*why = NULL;
	if (!slice_eq(req->method, LIT("GET")))
		*why = "a WebSocket upgrade must be a GET";
	else if (!ws_headers_have_token(h, n, LIT("Upgrade"), LIT("websocket")))
		*why = "missing Upgrade: websocket";
	else if (!ws_headers_have_token(h, n, LIT("Connection"), LIT("upgrade")))
		*why = "missing Connection: upgrade";
	else if (ws_headers_count(h, n, LIT("Sec-WebSocket-Version"), &v) != 1 ||
		 !slice_eq(v, LIT("13")))
		*why = "unsupported Sec-WebSocket-Version (need 13)";
	else if (ws_headers_count(h, n, LIT("Sec-WebSocket-Key"), &v) != 1 || !ws_key_valid(v))
		*why = "missing or malformed Sec-WebSocket-Key";
	return *why ? -EINVAL : 0;
}

int ws_request_offers_protocol(const struct http_request *req, const char *protocol)
{
	return ws_headers_have_token(req->headers, req->nheaders, LIT(WS_PROTOCOL_HEADER),
				     slice_cstr(protocol));
}

struct ws *ws_server_accept(struct http_request *req, const char *protocol, size_t max_message,
			    const struct ws_callbacks *cbs, void *data)
{
	struct http_header h[4] = {
		{LIT("Upgrade"), LIT("websocket")},
		{LIT("Connection"), LIT("Upgrade")},
	};
	size_t n = 2, extra_len = 0;
	const char *why = NULL;
	char accept[29], *extra = NULL;
	struct slice key;
	struct conn *c;
	struct ws *w;

	if (ws_check_upgrade_request(req, &why) < 0) {
		http_respond_error(req, 400, "%s", why);
		return NULL;
	}
	if (protocol && !ws_request_offers_protocol(req, protocol)) {
		http_respond_error(req, 400, "the client does not offer subprotocol %s", protocol);
		return NULL;
	}
	ws_headers_count(req->headers, req->nheaders, LIT("Sec-WebSocket-Key"), &key);
	if (ws_accept_key(key.base, key.len, accept) < 0) {
		http_respond_error(req, 500, "cannot compute Sec-WebSocket-Accept");
		return NULL;
	}
	h[n++] = (struct http_header){LIT("Sec-WebSocket-Accept"), slice_make(accept, 28)};
	if (protocol)
		h[n++] = (struct http_header){LIT(WS_PROTOCOL_HEADER), slice_cstr(protocol)};
	if (http_response_start(req, 101, h, n, 0) < 0) {
		http_response_abort(req);
		return NULL;
	}
	c = http_request_take_conn(req, &extra, &extra_len);
	if (c == NULL) {
		free(extra);
		return NULL;
	}
	w = ws_new(c, 0, max_message, cbs, data);
	if (w == NULL)
		conn_close(c);
	else if (extra_len)
		ws_feed(w, extra, extra_len);
	free(extra);
	return w;
}

/* ---- client ---- */

struct ws_connecting {
	ws_connect_cb done;
	void *arg;
	const struct ws_callbacks *cbs;
	void *data;
	size_t max_message;
	char accept[29];
	char *protocol;
};

static void ws_connecting_free(struct ws_connecting *wc)
{
	free(wc->protocol);
	free(wc);
}

/* A refusal: report the status and drop the rest of the response. */
static void ws_cl_on_head(struct http_client *cl, const struct http_response_head *head)
{
	struct ws_connecting *wc = http_client_data(cl);

	wc->done(NULL, head->status, wc->arg);
	ws_connecting_free(wc);
	http_client_cancel(cl);
}

static void ws_cl_on_done(struct http_client *cl, int err)
{
	struct ws_connecting *wc = http_client_data(cl);

	wc->done(NULL, err < 0 ? err : -EPROTO, wc->arg);
	ws_connecting_free(wc);
}

/* The checks of RFC 6455 section 4.1 on the server's 101. */
static int ws_check_101(const struct ws_connecting *wc, const struct http_response_head *head)
{
	const struct http_header *h = head->headers;
	size_t n = head->nheaders, np;
	struct slice v;

	if (!ws_headers_have_token(h, n, LIT("Upgrade"), LIT("websocket")) ||
	    !ws_headers_have_token(h, n, LIT("Connection"), LIT("upgrade")))
		return -EPROTO;
	if (ws_headers_count(h, n, LIT("Sec-WebSocket-Accept"), &v) != 1 ||
	    !slice_eq(v, slice_make(wc->accept, 28)))
		return -EPROTO;
	if (ws_headers_count(h, n, LIT("Sec-WebSocket-Extensions"), &v) != 0)
		return -EPROTO;
	np = ws_headers_count(h, n, LIT(WS_PROTOCOL_HEADER), &v);
	if (wc->protocol == NULL ? np != 0 : (np != 1 || !slice_eq(v, slice_cstr(wc->protocol))))
		return -EPROTO;
	return 0;
}

static void ws_cl_on_upgrade(struct http_client *cl, const struct http_response_head *head,
			     struct conn *c, const char *extra, size_t extra_len)
{
	struct ws_connecting *wc = http_client_data(cl);
	struct ws *w = NULL;
	int rc = ws_check_101(wc, head);

	if (rc < 0) {
		LOG_DEBUG("the server's 101 is not a valid WebSocket handshake");
	} else {
		w = ws_new(c, 1, wc->max_message, wc->cbs, wc->data);
		rc = w ? 0 : -ENOMEM;
	}
	if (w == NULL) {
		conn_close(c);
		wc->done(NULL, rc, wc->arg);
	} else {
		ws_feed(w, extra, extra_len);
		wc->done(w, 101, wc->arg);
	}
	ws_connecting_free(wc);
}

static const struct http_client_callbacks ws_cl_cbs = {
	.on_head = ws_cl_on_head,
	.on_done = ws_cl_on_done,
	.on_upgrade = ws_cl_on_upgrade,
};

int ws_connect(uv_loop_t *loop, const struct http_client_opts *opts, const char *target,
	       const char *protocol, const struct http_header *hdrs, size_t n, size_t max_message,
	       const struct ws_callbacks *cbs, void *data, ws_connect_cb done, void *arg)
{
	struct ws_connecting *wc = calloc(1, sizeof(*wc));
	struct http_header *h = NULL;
	char key[25];
	size_t nh = 0;
	int rc = -ENOMEM;

	if (wc == NULL)
		return -ENOMEM;
	if (protocol && (wc->protocol = strdup(protocol)) == NULL)
		goto fail;
	h = calloc(n + 5, sizeof(*h));
	if (h == NULL)
		goto fail;
	rc = ws_client_key(key);
	if (rc == 0)
		rc = ws_accept_key(key, 24, wc->accept);
	if (rc < 0)
		goto fail;
	wc->done = done;
	wc->arg = arg;
	wc->cbs = cbs;
	wc->data = data;
	wc->max_message = max_message;
	h[nh++] = (struct http_header){LIT("Upgrade"), LIT("websocket")};
	h[nh++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
	h[nh++] = (struct http_header){LIT("Sec-WebSocket-Key"), slice_make(key, 24)};
	h[nh++] = (struct http_header){LIT("Sec-WebSocket-Version"), LIT("13")};
	if (protocol)
		h[nh++] = (struct http_header){LIT(WS_PROTOCOL_HEADER), slice_cstr(protocol)};
	if (n)
		memcpy(h + nh, hdrs, n * sizeof(*h));
	/* The request head is built and copied right away: h may go. */
	if (http_client_request(loop, opts, "GET", target, h, nh + n, 0, &ws_cl_cbs, wc) == NULL) {
		rc = -EIO;
		goto fail;
	}
	free(h);
	return 0;
fail:
	free(h);
	ws_connecting_free(wc);
	return rc;
}
