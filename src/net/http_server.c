/*
 * http_server.c - the HTTP/1.1 server: listener, per-connection parser,
 * timeouts, routing and response writing.
 *
 * Each connection (struct http_conn) parses with llhttp and holds at most
 * one request. When a request is complete the parser pauses, so pipelined
 * bytes wait (in hc->pending, bounded, or in the socket) until the response
 * is finished. The next request is started from a zero timer, never from
 * inside the call that finished the previous one, so handlers never run
 * re-entrantly.
 *
 * An answer given before the request was read to its end (413, 431, 400,
 * a refusal of pre_route) closes the connection, but not at once: see
 * hc_linger.
 */
#include "net/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/log.h"
#include "net/proxy_proto.h"
#include "net/router.h"
#include "net/unix_listen.h"

enum {
	RQ_HEADERS_DONE = 1 << 0,
	RQ_MSG_DONE = 1 << 1,
	RQ_HANDLER = 1 << 2,
	RQ_RESP_STARTED = 1 << 3,
	RQ_RESP_CHUNKED = 1 << 4,
	RQ_RESP_NOBODY = 1 << 5,
	RQ_PAUSED = 1 << 6,
	RQ_IN_VALUE = 1 << 7,
	RQ_HEAD_METHOD = 1 << 8,
	RQ_PENDING = 1 << 9, /* pre_route decides later (HTTP_PRE_ROUTE_PENDING) */
};

enum timer_mode { TM_NONE, TM_HEADER, TM_IDLE, TM_BODY, TM_NEXT, TM_PROCEED, TM_LINGER };

/*
 * While pre_route decides, the connection reads on (so that a client who
 * leaves is seen) into hc->pending until that holds more than one read's
 * worth (conn delivers at most 64 KiB at a time), hence a cap of two.
 */
#define HC_PENDING_WAIT_READ (64 * 1024)
#define HC_PENDING_WAIT_MAX (2 * HC_PENDING_WAIT_READ)

/* A connection's first bytes, with --proxy-protocol-from (proxy_proto.h). */
enum {
	HC_PP_NONE,	/* nothing (more) to look for */
	HC_PP_REQUIRED, /* from a listed source: a header must come first */
	HC_PP_REFUSED,	/* from another source: a header would be a spoof */
};

struct hc_hdr_off {
	size_t name_off, name_len, value_off, value_len;
};

struct http_conn {
	struct http_server *srv;
	struct conn *conn;
	llhttp_t parser;
	struct http_request *req;
	uv_timer_t timer;
	enum timer_mode tmode;
	struct buf pending; /* input that arrived after a complete request */
	struct hc_hdr_off hoff[HTTP_MAX_HEADERS];
	size_t url_off, url_len;
	size_t nheaders_seen;
	size_t trailer_bytes; /* of the current request's chunk trailers (dropped) */
	int close_after;  /* send Connection: close and close after the response */
	int in_execute;
	int taken;
	int error_status; /* set by a parser callback to answer with this status */
	int handshaking;  /* counted in srv->handshakes until TLS is up */
	int upgrade_ok;	  /* the current request is an upgrade its route takes */
	int pp;		  /* HC_PP_*: the PROXY protocol header still awaited */
	int peer_eof;	  /* the client's end came while pre_route decided (hc_on_end) */
	int lingering;	  /* answered early: reading and dropping until closed (hc_linger) */
	size_t linger_bytes;	/* dropped so far */
	uint64_t linger_until;	/* loop time at which the lingering ends */
	struct http_conn *prev, *next;
};

#define HTTP_IP_BUCKETS 256

/* Connections of one source address still in their TLS handshake. */
struct ip_count {
	struct ip_count *next;
	size_t n;
	char ip[64];
};

struct http_server {
	uv_loop_t *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe; /* cfg.unix_path */
	} listener;
	struct unix_listen_id unix_id; /* the socket file made, removed at the end */
	struct http_server_config cfg;
	struct http_conn *conns;
	size_t nconns;
	int port;
	int stopping;	     /* http_server_stop called */
	int listener_closed; /* freed once this and nconns == 0 */
	struct ip_count *handshakes[HTTP_IP_BUCKETS];
};

static llhttp_settings_t hc_settings;
static int hc_settings_ready;

static void hc_parse(struct http_conn *hc, const char *data, size_t len);
static void hc_close(struct http_conn *hc);
static void hc_request_free(struct http_request *req);
static void hc_proceed(struct http_conn *hc);
static void hc_read_on(struct http_conn *hc);

void http_limits_fill_defaults(struct http_limits *l)
{
	if (!l->max_header_bytes)
		l->max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
	if (!l->max_headers)
		l->max_headers = HTTP_DEFAULT_MAX_HEADERS;
	if (l->max_headers > HTTP_MAX_HEADERS)
		l->max_headers = HTTP_MAX_HEADERS;
	if (!l->max_json_body)
		l->max_json_body = HTTP_DEFAULT_MAX_JSON_BODY;
	if (!l->header_timeout_ms)
		l->header_timeout_ms = HTTP_DEFAULT_HEADER_TIMEOUT_MS;
	if (!l->idle_timeout_ms)
		l->idle_timeout_ms = HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	if (!l->body_timeout_ms)
		l->body_timeout_ms = HTTP_DEFAULT_BODY_TIMEOUT_MS;
	if (!l->max_connections)
		l->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
	if (!l->max_handshakes_per_ip)
		l->max_handshakes_per_ip = HTTP_DEFAULT_MAX_HANDSHAKES_PER_IP;
	if (!l->linger_ms)
		l->linger_ms = HTTP_DEFAULT_LINGER_MS;
	if (!l->linger_idle_ms)
		l->linger_idle_ms = HTTP_DEFAULT_LINGER_IDLE_MS;
	if (!l->linger_max_bytes)
		l->linger_max_bytes = HTTP_DEFAULT_LINGER_MAX_BYTES;
}

const char *http_status_text(int status)
{
	return envelope_status_text(status);
}

/* ---- handshakes per source address ---- */

static struct ip_count **ipc_find(struct http_server *srv, const char *ip)
{
	uint32_t h = 2166136261u;
	const char *p;
	struct ip_count **pp;

	for (p = ip; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (pp = &srv->handshakes[h % HTTP_IP_BUCKETS]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->ip, ip) == 0)
			return pp;
	return pp;
}

/* Counts one more handshake from ip; returns the count, or 0 on ENOMEM. */
static size_t ipc_inc(struct http_server *srv, const char *ip)
{
	struct ip_count **pp = ipc_find(srv, ip);

	if (*pp == NULL) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp == NULL)
			return 0;
		snprintf((*pp)->ip, sizeof((*pp)->ip), "%s", ip);
	}
	return ++(*pp)->n;
}

static void ipc_dec(struct http_server *srv, const char *ip)
{
	struct ip_count **pp = ipc_find(srv, ip), *e = *pp;

	if (e == NULL)
		return;
	if (--e->n == 0) {
		*pp = e->next;
		free(e);
	}
}

static void hc_handshake_done(struct http_conn *hc)
{
	if (!hc->handshaking)
		return;
	hc->handshaking = 0;
	ipc_dec(hc->srv, conn_peer_addr(hc->conn));
}

/* ---- timers ---- */

static void hc_on_timer(uv_timer_t *t);

static void hc_timer(struct http_conn *hc, enum timer_mode mode, uint64_t ms)
{
	hc->tmode = mode;
	if (mode == TM_NONE)
		uv_timer_stop(&hc->timer);
	else
		uv_timer_start(&hc->timer, hc_on_timer, ms, 0);
}

/*
 * Resumes the parser on what waited in hc->pending (always: a request
 * paused at its headers moves on without a byte), then reads on unless a
 * whole request is waiting for its answer (a pipelined head may have
 * arrived only in part), its handler paused the body, or pre_route is
 * deciding (hc_wait_read then chose).
 */
static void hc_parse_pending(struct http_conn *hc)
{
	struct buf in = hc->pending;

	buf_init(&hc->pending, hc->srv->cfg.limits.max_header_bytes);
	llhttp_resume(&hc->parser);
	hc_parse(hc, in.len ? in.data : "", in.len);
	buf_free(&in);
	if (hc->conn && !hc->taken &&
	    (hc->req == NULL || !(hc->req->st & (RQ_MSG_DONE | RQ_PAUSED | RQ_PENDING))) &&
	    !conn_is_closing(hc->conn))
		hc_read_on(hc);
}

static void hc_next_request(struct http_conn *hc)
{
	hc_timer(hc, TM_IDLE, hc->srv->cfg.limits.idle_timeout_ms);
	hc_parse_pending(hc);
}

static void hc_abort_request(struct http_conn *hc)
{
	struct http_request *req = hc->req;

	if (req == NULL)
		return;
	hc->req = NULL;
	req->hc = NULL;
	if (req->st & RQ_HANDLER) {
		req->aborted = 1;
		if (req->on_abort)
			req->on_abort(req);
		/* The handler finishes (and so frees) it. */
	} else {
		hc_request_free(req);
	}
}

static void hc_on_timer(uv_timer_t *t)
{
	struct http_conn *hc = t->data;
	enum timer_mode mode = hc->tmode;

	hc->tmode = TM_NONE;
	switch (mode) {
	case TM_NEXT:
		hc_next_request(hc);
		break;
	case TM_PROCEED:
		hc_proceed(hc);
		break;
	case TM_HEADER:
		LOG_INFO("%s: closing %s: no complete %s within %llu ms", hc->srv->cfg.name,
			 conn_peer_addr(hc->conn),
			 hc->pp == HC_PP_REQUIRED ? "PROXY protocol header" : "request head",
			 (unsigned long long)hc->srv->cfg.limits.header_timeout_ms);
		hc_close(hc);
		break;
	case TM_BODY:
		LOG_INFO("%s: closing %s: request body stalled", hc->srv->cfg.name,
			 conn_peer_addr(hc->conn));
		hc_close(hc);
		break;
	case TM_LINGER:
		LOG_DEBUG("%s: closing %s after lingering (%zu bytes dropped)", hc->srv->cfg.name,
			  conn_peer_addr(hc->conn), hc->linger_bytes);
		hc_close(hc);
		break;
	case TM_IDLE:
		hc_close(hc);
		break;
	case TM_NONE:
		break;
	}
}

/* ---- connection lifetime ---- */

static void hc_on_timer_closed(uv_handle_t *h)
{
	struct http_conn *hc = h->data;

	buf_free(&hc->pending);
	free(hc);
}

static void hc_unlink(struct http_conn *hc)
{
	struct http_server *srv = hc->srv;

	if (hc->prev)
		hc->prev->next = hc->next;
	else if (srv->conns == hc)
		srv->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	hc->prev = hc->next = NULL;
	srv->nconns--;
	if (srv->stopping && srv->listener_closed && srv->nconns == 0)
		free(srv);
}

/* The conn is gone (its on_close): abort the request and free hc. */
static void hc_on_conn_close(struct conn *c)
{
	struct http_conn *hc = conn_data(c);

	if (hc == NULL)
		return;
	hc_handshake_done(hc);
	hc->conn = NULL;
	hc_abort_request(hc);
	hc_unlink(hc);
	uv_close((uv_handle_t *)&hc->timer, hc_on_timer_closed);
}

static void hc_close(struct http_conn *hc)
{
	if (hc->conn)
		conn_close(hc->conn);
}

/*
 * Reads on; or, when the client's end was seen early (while pre_route
 * decided), closes, which is what reading it now would have done.
 */
static void hc_read_on(struct http_conn *hc)
{
	if (hc->peer_eof)
		hc_close(hc);
	else
		conn_read_start(hc->conn);
}

/* A pending request's connection reads on while hc->pending has room for one more read. */
static void hc_wait_read(struct http_conn *hc)
{
	if (hc->pending.len > HC_PENDING_WAIT_READ || hc->peer_eof)
		conn_read_stop(hc->conn);
	else
		conn_read_start(hc->conn);
}

/*
 * The lingering close, as nginx's lingering_close: an answer given before
 * the request was read to its end (413 at the headers, 431, 400, a
 * refusal of pre_route, a handler that did not read the body) leaves the
 * client's bytes in flight. Closing at once would make the kernel answer
 * them with a reset, which can destroy the answer before the client reads
 * it: clients that send the whole body before reading (Python's
 * http.client, many SDKs) would see "connection reset" instead of the 413.
 * So the answer is flushed and our side ended (TLS close_notify, FIN),
 * and what the client still sends is read and dropped until it ends its
 * side, or for at most limits.linger_ms in all, linger_idle_ms without a
 * byte and linger_max_bytes, whichever comes first; then the connection
 * closes. It stays counted in the server's connections (and so against
 * max_connections) the whole time.
 */
static void hc_linger(struct http_conn *hc)
{
	const struct http_limits *lim = &hc->srv->cfg.limits;

	if (conn_is_closing(hc->conn))
		return;
	if (hc->peer_eof) {
		conn_shutdown(hc->conn); /* the client already ended its side */
		return;
	}
	hc->lingering = 1;
	hc->linger_bytes = 0;
	hc->linger_until = uv_now(hc->srv->loop) + lim->linger_ms;
	buf_free(&hc->pending);
	conn_shutdown_write(hc->conn);
	hc_timer(hc, TM_LINGER, lim->linger_idle_ms < lim->linger_ms ? lim->linger_idle_ms
								     : lim->linger_ms);
	conn_read_start(hc->conn);
}

/* len more bytes read while lingering: dropped, counted, and the wait renewed. */
static void hc_linger_drop(struct http_conn *hc, size_t len)
{
	const struct http_limits *lim = &hc->srv->cfg.limits;
	uint64_t now = uv_now(hc->srv->loop);
	uint64_t left = hc->linger_until > now ? hc->linger_until - now : 0;

	hc->linger_bytes += len;
	if (hc->linger_bytes > lim->linger_max_bytes) {
		LOG_INFO("%s: closing %s: more than %zu bytes after an early answer",
			 hc->srv->cfg.name, conn_peer_addr(hc->conn), lim->linger_max_bytes);
		hc_close(hc);
		return;
	}
	if (left == 0) {
		hc_close(hc);
		return;
	}
	hc_timer(hc, TM_LINGER, lim->linger_idle_ms < left ? lim->linger_idle_ms : left);
}

static void hc_on_data(struct conn *c, const char *data, size_t len)
{
	struct http_conn *hc = conn_data(c);

	if (hc->lingering) {
		hc_linger_drop(hc, len);
		return;
	}
	if (hc->req && (hc->req->st & RQ_PENDING)) {
		if (buf_append(&hc->pending, data, len) < 0)
			hc_close(hc);
		else
			hc_wait_read(hc);
		return;
	}
	if (hc->req && (hc->req->st & RQ_MSG_DONE)) {
		/* Waiting for a response: keep a bounded amount, then stop reading. */
		if (buf_append(&hc->pending, data, len) < 0) {
			hc_close(hc);
			return;
		}
		conn_read_stop(c);
		return;
	}
	if (hc->req)
		hc->req->bytes_in += len;
	hc_parse(hc, data, len);
}

/*
 * Whether reading is held back now (so the client's end is not to be
 * acted on yet): a request is pending or complete and being answered, or
 * queued input waits to be parsed.
 */
static int hc_holding(const struct http_conn *hc)
{
	if (hc->req)
		return (hc->req->st & (RQ_MSG_DONE | RQ_PENDING)) != 0;
	return hc->pending.len > 0 || hc->tmode == TM_NEXT;
}

static void hc_on_end(struct conn *c, int err)
{
	struct http_conn *hc = conn_data(c);

	if (hc->lingering && err == 0) {
		/* The client sent all it had: the answer is flushed, then we close
		 * (the lingering timer still bounds a client that does not read). */
		conn_shutdown(c);
		return;
	}

	if (hc->pp == HC_PP_REQUIRED)
		LOG_INFO("%s: closing %s: the connection ended inside its PROXY protocol header (%s)",
			 hc->srv->cfg.name, conn_peer_addr(c),
			 err == 0 ? "end of stream" : err == CONN_EPREFIX ? "too long" : uv_strerror(err));
	/*
	 * The client's end, read while a pre_route decided (the connection
	 * reads on then) and seen now: the client may only have half-closed,
	 * and would get its answers had the end not been read yet (reading
	 * stops while a request is answered). So it is kept for when reading
	 * would go on (hc_read_on) or for the upgrade's new owner. A reset is
	 * a client gone: the request is aborted.
	 */
	if (err == 0 && hc_holding(hc)) {
		hc->peer_eof = 1;
		return;
	}
	hc_close(hc);
}

static void hc_on_drain(struct conn *c)
{
	struct http_conn *hc = conn_data(c);

	if (hc->req && hc->req->on_drain)
		hc->req->on_drain(hc->req);
}

static void hc_on_open(struct conn *c)
{
	hc_handshake_done(conn_data(c));
}

static const struct conn_callbacks hc_conn_cbs = {
	.on_open = hc_on_open,
	.on_data = hc_on_data,
	.on_end = hc_on_end,
	.on_drain = hc_on_drain,
	.on_close = hc_on_conn_close,
};

/* ---- parser callbacks ---- */

static struct http_request *hc_request_new(struct http_conn *hc)
{
	struct http_request *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->hc = hc;
	req->server = hc->srv;
	req->server_data = hc->srv->cfg.data;
	req->content_length = -1;
	req->peer_fp = conn_peer_fingerprint(hc->conn);
	req->peer_addr = req->socket_addr = conn_peer_addr(hc->conn);
	req->start_ms = uv_now(hc->srv->loop);
	buf_init(&req->head, hc->srv->cfg.limits.max_header_bytes);
	buf_init(&req->body, hc->srv->cfg.limits.max_json_body);
	return req;
}

static void hc_request_free(struct http_request *req)
{
	if (req == NULL)
		return;
	buf_free(&req->head);
	buf_free(&req->body);
	if (req->principal) {
		explicit_bzero(req->principal, req->principal_len);
		free(req->principal);
	}
	free(req);
}

static int hc_on_message_begin(llhttp_t *p)
{
	struct http_conn *hc = p->data;

	hc->req = hc_request_new(hc);
	if (hc->req == NULL)
		return -1;
	hc->url_off = hc->url_len = 0;
	hc->nheaders_seen = 0;
	hc->trailer_bytes = 0;
	hc->upgrade_ok = 0;
	if (hc->tmode != TM_HEADER)
		hc_timer(hc, TM_HEADER, hc->srv->cfg.limits.header_timeout_ms);
	return 0;
}

static int hc_head_append(struct http_conn *hc, const char *at, size_t len)
{
	if (buf_append(&hc->req->head, at, len) < 0) {
		hc->error_status = 431;
		return -1;
	}
	return 0;
}

static int hc_on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;

	if (hc->url_len == 0)
		hc->url_off = hc->req->head.len;
	hc->url_len += len;
	return hc_head_append(hc, at, len);
}

/*
 * Chunk trailers come through the header callbacks after the head is
 * complete (and sealed: slices into it are out). They are not kept; their
 * bytes count against the header cap so a peer cannot stream them forever.
 */
static int hc_trailer(struct http_conn *hc, size_t len)
{
	if (len > hc->srv->cfg.limits.max_header_bytes - hc->trailer_bytes) {
		hc->error_status = 431;
		return -1;
	}
	hc->trailer_bytes += len;
	return 0;
}

static int hc_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	struct http_request *req = hc->req;

	if (req->st & RQ_HEADERS_DONE)
		return hc_trailer(hc, len);
	if ((req->st & RQ_IN_VALUE) || hc->nheaders_seen == 0) {
		if (hc->nheaders_seen >= hc->srv->cfg.limits.max_headers) {
			hc->error_status = 431;
			return -1;
		}
		hc->hoff[hc->nheaders_seen].name_off = req->head.len;
		hc->hoff[hc->nheaders_seen].name_len = 0;
		hc->hoff[hc->nheaders_seen].value_off = 0;
		hc->hoff[hc->nheaders_seen].value_len = 0;
		hc->nheaders_seen++;
		req->st &= ~RQ_IN_VALUE;
	}
	hc->hoff[hc->nheaders_seen - 1].name_len += len;
	return hc_head_append(hc, at, len);
}

static int hc_on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	struct http_request *req = hc->req;
	struct hc_hdr_off *h = &hc->hoff[hc->nheaders_seen - 1];

	if (req->st & RQ_HEADERS_DONE)
		return hc_trailer(hc, len);
	if (!(req->st & RQ_IN_VALUE)) {
		h->value_off = req->head.len;
		req->st |= RQ_IN_VALUE;
	}
	h->value_len += len;
	return hc_head_append(hc, at, len);
}

/*
 * Turns the offsets into slices. The head is sealed first: it never moves
 * or grows again for the life of the request, so the slices stay valid
 * whatever the parser sees later (trailers, pipelined bytes).
 */
static void hc_fill_request(struct http_conn *hc, struct http_request *req)
{
	const char *base;
	const char *m = llhttp_method_name((llhttp_method_t)hc->parser.method);
	size_t i, q;

	buf_seal(&req->head);
	base = req->head.data;

	req->method = slice_cstr(m);
	if (slice_eq(req->method, LIT("HEAD")))
		req->st |= RQ_HEAD_METHOD;
	req->target = slice_make(base ? base + hc->url_off : "", hc->url_len);
	req->path = req->target;
	req->query = SLICE_NULL;
	for (q = 0; q < req->target.len; q++) {
		if (req->target.base[q] == '?') {
			req->path.len = q;
			req->query = slice_make(req->target.base + q + 1, req->target.len - q - 1);
			break;
		}
	}
	req->nheaders = hc->nheaders_seen;
	for (i = 0; i < req->nheaders; i++) {
		req->headers[i].name = slice_make(base + hc->hoff[i].name_off, hc->hoff[i].name_len);
		req->headers[i].value =
			slice_make(base + hc->hoff[i].value_off, hc->hoff[i].value_len);
	}
	if (hc->parser.flags & F_CONTENT_LENGTH)
		req->content_length = (int64_t)hc->parser.content_length;
	req->chunked = (hc->parser.flags & F_CHUNKED) != 0;
	req->upgrade = hc->parser.upgrade;
	req->keep_alive = llhttp_should_keep_alive(&hc->parser);
}

static void hc_call_handler(struct http_request *req)
{
	req->st |= RQ_HANDLER;
	req->route->handler(req);
}

/* Answers an error from inside the parser and stops parsing this connection. */
static int hc_fail_early(struct http_conn *hc, int status, const char *msg)
{
	struct http_request *req = hc->req;

	hc->close_after = 1;
	req->st |= RQ_HANDLER;
	http_respond_error(req, status, "%s", msg);
	return HPE_PAUSED;
}

/*
 * A client that sent "Expect: 100-continue" waits for a go-ahead before the
 * body (curl does for uploads over 1 MiB). We give it once the request is
 * accepted (route, auth and size checks passed).
 */
static void hc_expect_continue(struct http_conn *hc, struct http_request *req)
{
	struct slice e = http_request_header(req, LIT("Expect"));

	if (e.base && slice_eq_nocase(e, LIT("100-continue")) && !req->upgrade &&
	    (req->content_length > 0 || req->chunked) && hc->conn)
		conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/*
 * Behind a trusted proxy, the client is the right-most X-Forwarded-For entry
 * that is not itself a trusted proxy (entries left of it could be forged by
 * the client). Any entry that is not an address stops the walk.
 */
static void hc_resolve_client(struct http_server *srv, struct http_request *req)
{
	const struct net_cidr *tp = srv->cfg.trusted_proxies;
	size_t ntp = srv->cfg.ntrusted_proxies, i;
	struct net_addr a, found;
	int have = 0;

	if (ntp == 0 || net_addr_parse(req->socket_addr, strlen(req->socket_addr), &a) != 0 ||
	    !net_cidr_list_contains(tp, ntp, &a))
		return;
	for (i = req->nheaders; i-- > 0;) {
		struct slice v = req->headers[i].value;
		size_t end = v.len;

		if (!slice_eq_nocase(req->headers[i].name, LIT("X-Forwarded-For")))
			continue;
		while (end > 0) {
			size_t start = end;

			while (start > 0 && v.base[start - 1] != ',')
				start--;
			if (net_addr_parse(v.base + start, end - start, &a) != 0)
				goto done;
			found = a;
			have = 1;
			if (!net_cidr_list_contains(tp, ntp, &a))
				goto done;
			end = start ? start - 1 : 0;
		}
	}
done:
	if (have) {
		net_addr_format(&found, req->forwarded_addr);
		req->peer_addr = req->forwarded_addr;
	}
}

static int hc_route_accepted(struct http_conn *hc, struct http_request *req);

static int hc_on_headers_complete(llhttp_t *p)
{
	struct http_conn *hc = p->data;
	struct http_request *req = hc->req;
	int rc;

	req->st |= RQ_HEADERS_DONE;
	hc_fill_request(hc, req);
	hc_resolve_client(hc->srv, req);
	hc_timer(hc, TM_NONE, 0);
	rc = router_match(hc->srv->cfg.routes, hc->srv->cfg.nroutes, req);
	if (rc == -ENOENT)
		return hc_fail_early(hc, 404, "not found");
	if (rc == -EPERM)
		return hc_fail_early(hc, 405, "method not allowed");
	if (req->upgrade && !(req->route->flags & HTTP_ROUTE_UPGRADE))
		req->upgrade = 0;
	hc->upgrade_ok = req->upgrade;
	if (hc->srv->cfg.pre_route) {
		int close_after = hc->close_after;

		/* An answer from pre_route (a refusal) ends the connection: it
		 * says Connection: close and hc_finish shuts the socket. */
		hc->close_after = 1;
		rc = hc->srv->cfg.pre_route(req);
		if (rc == HTTP_PRE_ROUTE_PENDING) {
			/* The hook owns the request until it proceeds or answers
			 * (then RQ_PENDING closes the connection as above). */
			hc->close_after = close_after;
			req->st |= RQ_HANDLER | RQ_PENDING;
			if (hc->pending.max < HC_PENDING_WAIT_MAX)
				hc->pending.max = HC_PENDING_WAIT_MAX;
			return HPE_PAUSED;
		}
		if (rc != 0)
			return HPE_PAUSED; /* it answered; it counted as the handler */
		hc->close_after = close_after;
	}
	return hc_route_accepted(hc, req);
}

/*
 * The request passed pre_route: calls a streaming route's handler now, or
 * prepares to buffer the body. 0 to parse on; HPE_PAUSED when the request
 * is already finished (answered early).
 */
static int hc_route_accepted(struct http_conn *hc, struct http_request *req)
{
	const struct http_limits *lim = &hc->srv->cfg.limits;

	if (req->route->flags & HTTP_ROUTE_STREAM_BODY) {
		if (req->content_length != 0 || req->chunked)
			hc_timer(hc, TM_BODY, lim->body_timeout_ms);
		hc_expect_continue(hc, req);
		hc_call_handler(req);
		if (hc->req != req) /* finished right away */
			return HPE_PAUSED;
		return 0;
	}
	if (req->route->max_body)
		req->body.max = req->route->max_body;
	if (req->content_length > (int64_t)req->body.max)
		return hc_fail_early(hc, 413, "request body too large");
	if (req->content_length > 0 || req->chunked)
		hc_timer(hc, TM_BODY, lim->body_timeout_ms);
	hc_expect_continue(hc, req);
	return 0;
}

static int hc_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	struct http_request *req = hc->req;

	if (req == NULL)
		return 0;
	if (req->route->flags & HTTP_ROUTE_STREAM_BODY) {
		if (!(req->st & RQ_PAUSED))
			hc_timer(hc, TM_BODY, hc->srv->cfg.limits.body_timeout_ms);
		if (req->on_body)
			req->on_body(req, at, len);
		return 0;
	}
	if (buf_append(&req->body, at, len) < 0) {
		hc->error_status = 413;
		return -1;
	}
	hc_timer(hc, TM_BODY, hc->srv->cfg.limits.body_timeout_ms);
	return 0;
}

static int hc_on_message_complete(llhttp_t *p)
{
	struct http_conn *hc = p->data;
	struct http_request *req = hc->req;

	if (req == NULL)
		return HPE_PAUSED;
	req->st |= RQ_MSG_DONE;
	hc_timer(hc, TM_NONE, 0);
	if (req->route->flags & HTTP_ROUTE_STREAM_BODY) {
		if (req->on_body_end)
			req->on_body_end(req);
	} else {
		hc_call_handler(req);
	}
	return HPE_PAUSED;
}

static void hc_settings_init(void)
{
	if (hc_settings_ready)
		return;
	llhttp_settings_init(&hc_settings);
	hc_settings.on_message_begin = hc_on_message_begin;
	hc_settings.on_url = hc_on_url;
	hc_settings.on_header_field = hc_on_header_field;
	hc_settings.on_header_value = hc_on_header_value;
	hc_settings.on_headers_complete = hc_on_headers_complete;
	hc_settings.on_body = hc_on_body;
	hc_settings.on_message_complete = hc_on_message_complete;
	hc_settings_ready = 1;
}

static void hc_parse_error(struct http_conn *hc, llhttp_errno_t err)
{
	struct http_request *req = hc->req;
	int status = hc->error_status ? hc->error_status : 400;
	const char *reason = llhttp_get_error_reason(&hc->parser);

	LOG_DEBUG("%s: bad request from %s: %s (%s)", hc->srv->cfg.name,
		  conn_peer_addr(hc->conn), llhttp_errno_name(err), reason ? reason : "");
	if (req == NULL) {
		req = hc->req = hc_request_new(hc);
		if (req == NULL) {
			hc_close(hc);
			return;
		}
	}
	if (req->st & (RQ_HANDLER | RQ_RESP_STARTED)) {
		/* A handler owns the request: we cannot answer for it. */
		hc_close(hc);
		return;
	}
	hc->close_after = 1;
	req->st |= RQ_HANDLER;
	if (status == 431)
		http_respond_error(req, 431, "request header fields too large");
	else if (status == 413)
		http_respond_error(req, 413, "request body too large");
	else
		http_respond_error(req, 400, "malformed HTTP request");
}

static void hc_parse(struct http_conn *hc, const char *data, size_t len)
{
	llhttp_errno_t err;
	size_t used;

	while (hc->conn && !hc->taken) {
		hc->in_execute = 1;
		err = llhttp_execute(&hc->parser, data, len);
		hc->in_execute = 0;
		if (hc->taken || hc->conn == NULL || conn_is_closing(hc->conn))
			return;
		if (err == HPE_OK)
			return;
		if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
			hc_parse_error(hc, err);
			return;
		}
		used = (size_t)(llhttp_get_error_pos(&hc->parser) - data);
		data += used;
		len -= used;
		if (err == HPE_PAUSED_UPGRADE && !hc->upgrade_ok) {
			/* Upgrade headers on a route that does not upgrade: an
			 * ordinary request; parse on once it is answered. */
			llhttp_resume_after_upgrade(&hc->parser);
			llhttp_pause(&hc->parser);
			err = HPE_PAUSED;
		}
		if (hc->lingering)
			return; /* answered early: the rest is read and dropped */
		if (err == HPE_PAUSED_UPGRADE || hc->close_after) {
			/* Nothing after this request is ours to parse. */
			conn_read_stop(hc->conn);
			return;
		}
		if (hc->req != NULL) {
			/* The response is still being made: keep the rest. */
			if (len && buf_append(&hc->pending, data, len) < 0) {
				hc_close(hc);
				return;
			}
			if (hc->req->st & RQ_PENDING)
				hc_wait_read(hc);
			else
				conn_read_stop(hc->conn);
			return;
		}
		/* Answered synchronously: go on with the next request, and read
		 * again (the finished request may have paused reading). */
		llhttp_resume(&hc->parser);
		hc_timer(hc, TM_IDLE, hc->srv->cfg.limits.idle_timeout_ms);
		conn_read_start(hc->conn);
		if (len == 0)
			return;
	}
}

/* ---- accepting ---- */

/* Counts a TLS connection's handshake under its address; -1: refused and closed. */
static int hc_count_handshake(struct http_conn *hc)
{
	struct http_server *srv = hc->srv;
	size_t n;

	if (srv->cfg.tls == NULL)
		return 0;
	/* A flood of unfinished handshakes from one address is cut here. */
	n = ipc_inc(srv, conn_peer_addr(hc->conn));
	hc->handshaking = n > 0;
	if (n == 0 || n > srv->cfg.limits.max_handshakes_per_ip) {
		if (n == srv->cfg.limits.max_handshakes_per_ip + 1)
			LOG_WARN("%s: %s has %zu TLS handshakes in progress; refusing more",
				 srv->cfg.name, conn_peer_addr(hc->conn), n - 1);
		hc_close(hc);
		return -1;
	}
	return 0;
}

/*
 * conn_prefix_fn with proxy_protocol_from. From a listed source the header
 * must come first, and its address becomes the connection's before the
 * handshake is counted. From any other source the first bytes are only
 * looked at until they cannot be a header (a ClientHello's first byte): a
 * header there would let the client choose its address, so it is refused.
 */
static int hc_on_prefix(struct conn *c, const char *data, size_t len)
{
	struct http_conn *hc = conn_data(c);
	const char *name = hc->srv->cfg.name;
	struct proxy_proto_header h;
	enum proxy_proto_status st = proxy_proto_parse(data, len, &h);
	char addr[NET_ADDR_TEXT_MAX];
	int mode = hc->pp;

	if (st == PROXY_PROTO_MORE && (mode == HC_PP_REQUIRED || len < PROXY_PROTO_V2_HEAD_LEN))
		return CONN_PREFIX_MORE;
	hc->pp = HC_PP_NONE;
	if (mode == HC_PP_REFUSED && st == PROXY_PROTO_INVALID)
		return 0; /* not a header: every byte goes on */
	if (mode == HC_PP_REFUSED || st == PROXY_PROTO_INVALID) {
		if (mode == HC_PP_REFUSED)
			LOG_INFO("%s: closing %s: a PROXY protocol header from a source not in "
				 "--proxy-protocol-from", name, conn_peer_addr(c));
		else
			LOG_INFO("%s: closing %s: no valid PROXY protocol header: %s", name,
				 conn_peer_addr(c), h.error);
		hc_close(hc);
		return -EPROTO;
	}
	if (h.has_addr) {
		net_addr_format(&h.src, addr);
		conn_set_peer_addr(c, addr);
	}
	LOG_DEBUG("%s: %s relays %s (PROXY protocol v%d)", name, conn_socket_addr(c),
		  conn_peer_addr(c), h.version);
	return hc_count_handshake(hc) < 0 ? -ECONNREFUSED : (int)h.len;
}

/*
 * With proxy_protocol_from, every connection's first bytes are looked at.
 * One whose socket address is unknown (reset before it was accepted, as
 * HAProxy's TCP checks do) cannot be told apart: it is closed (-1).
 */
static int hc_expect_proxy_header(struct http_conn *hc)
{
	const struct http_server_config *cfg = &hc->srv->cfg;
	const char *sa = conn_peer_addr(hc->conn);
	struct net_addr a;

	if (cfg->nproxy_protocol_from == 0)
		return 0;
	if (net_addr_parse(sa, strlen(sa), &a) != 0) {
		LOG_DEBUG("%s: closing a connection of unknown source (%s)", cfg->name, sa);
		hc_close(hc);
		return -1;
	}
	if (net_cidr_list_contains(cfg->proxy_protocol_from, cfg->nproxy_protocol_from, &a)) {
		hc->pp = HC_PP_REQUIRED;
		conn_set_prefix(hc->conn, hc_on_prefix, PROXY_PROTO_MAX_LEN);
	} else {
		hc->pp = HC_PP_REFUSED;
		conn_set_prefix(hc->conn, hc_on_prefix, PROXY_PROTO_V2_HEAD_LEN);
	}
	return 0;
}

static void http_server_on_connection(uv_stream_t *listener, int status)
{
	struct http_server *srv = listener->data;
	struct http_conn *hc;
	struct conn *c;

	if (status < 0) {
		LOG_WARN("%s: accept failed: %s", srv->cfg.name, uv_strerror(status));
		return;
	}
	hc = calloc(1, sizeof(*hc));
	c = hc ? conn_new(srv->loop, srv->cfg.tls, &hc_conn_cbs, hc) : NULL;
	if (c == NULL) {
		free(hc);
		return;
	}
	hc->srv = srv;
	hc->conn = c;
	buf_init(&hc->pending, srv->cfg.limits.max_header_bytes);
	uv_timer_init(srv->loop, &hc->timer);
	hc->timer.data = hc;
	llhttp_init(&hc->parser, HTTP_REQUEST, &hc_settings);
	hc->parser.data = hc;
	hc->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = hc;
	srv->conns = hc;
	srv->nconns++;
	if (conn_accept(c, listener) < 0 || srv->nconns > srv->cfg.limits.max_connections) {
		if (srv->nconns > srv->cfg.limits.max_connections)
			LOG_WARN("%s: connection limit (%zu) reached", srv->cfg.name,
				 srv->cfg.limits.max_connections);
		conn_close(c);
		return;
	}
	if (hc_expect_proxy_header(hc) < 0)
		return;
	/* From a load balancer the handshake counts once its client is known. */
	if (hc->pp != HC_PP_REQUIRED && hc_count_handshake(hc) < 0)
		return;
	/* A new connection must send its PROXY header, finish TLS and send a
	 * whole request head in time. */
	hc_timer(hc, TM_HEADER, srv->cfg.limits.header_timeout_ms);
}

/* A unix listener's socket file goes with the listener (if it is still ours). */
static void http_server_unlink(struct http_server *srv)
{
	unix_listen_remove(srv->cfg.unix_path, &srv->unix_id);
	srv->unix_id.valid = 0;
}

/* The server struct goes once its listener and its last connection are gone. */
static void http_server_on_listener_closed(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	srv->listener_closed = 1;
	if (!srv->stopping || srv->nconns == 0)
		free(srv);
}

/* Binds the TCP listener to cfg.host and cfg.port and learns the port bound. */
static int http_server_bind_tcp(struct http_server *srv)
{
	const struct http_server_config *cfg = &srv->cfg;
	struct sockaddr_storage ss;
	int rc, len;

	if (strchr(cfg->host, ':'))
		rc = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&ss);
	if (rc == 0)
		rc = uv_tcp_bind(&srv->listener.tcp, (struct sockaddr *)&ss, 0);
	if (rc < 0)
		return rc;
	len = sizeof(ss);
	uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&ss, &len);
	srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
		      struct http_server **out)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (srv == NULL)
		return -ENOMEM;
	hc_settings_init();
	srv->loop = loop;
	srv->cfg = *cfg;
	if (srv->cfg.name == NULL)
		srv->cfg.name = "http";
	http_limits_fill_defaults(&srv->cfg.limits);
	if (cfg->unix_path) {
		uv_pipe_init(loop, &srv->listener.pipe, 0);
		rc = unix_listen_bind(&srv->listener.pipe, cfg->unix_path, &srv->unix_id);
	} else {
		uv_tcp_init(loop, &srv->listener.tcp);
		rc = http_server_bind_tcp(srv);
	}
	srv->listener.handle.data = srv;
	if (rc == 0)
		rc = uv_listen(&srv->listener.stream, 1024, http_server_on_connection);
	if (rc < 0) {
		http_server_unlink(srv);
		uv_close(&srv->listener.handle, http_server_on_listener_closed);
		return rc;
	}
	*out = srv;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

size_t http_server_connection_count(const struct http_server *s)
{
	return s->nconns;
}

void http_server_stop(struct http_server *s)
{
	struct http_conn *hc, *next;

	if (s == NULL)
		return;
	s->stopping = 1;
	for (hc = s->conns; hc; hc = next) {
		next = hc->next;
		hc_close(hc);
	}
	http_server_unlink(s);
	uv_close(&s->listener.handle, http_server_on_listener_closed);
}

/* ---- request accessors ---- */

struct slice http_request_header(const struct http_request *req, struct slice name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (slice_eq_nocase(req->headers[i].name, name))
			return req->headers[i].value;
	return SLICE_NULL;
}

int http_request_param(const struct http_request *req, size_t i, char *out, size_t outlen)
{
	if (i >= req->nparams)
		return -ENOENT;
	if (req->params[i].len >= outlen)
		return -E2BIG;
	memcpy(out, req->params[i].base, req->params[i].len);
	out[req->params[i].len] = '\0';
	return 0;
}

void http_request_proceed(struct http_request *req)
{
	struct http_conn *hc = req->hc;

	/* No longer the hook's: a client leaving from now on frees it. Input
	 * still waits in hc->pending (RQ_PENDING) until the parser resumes. */
	req->st &= ~RQ_HANDLER;
	if (hc == NULL) {
		hc_request_free(req);
		return;
	}
	hc_timer(hc, TM_PROCEED, 0);
}

/* The zero timer of http_request_proceed: the handler runs, parsing resumes. */
static void hc_proceed(struct http_conn *hc)
{
	struct http_request *req = hc->req;

	if (req == NULL || hc->conn == NULL)
		return;
	req->st &= ~RQ_PENDING;
	if (hc_route_accepted(hc, req) != 0 || hc->req != req)
		return; /* answered already; hc_finish decided what comes next */
	hc_parse_pending(hc);
}

void http_request_pause(struct http_request *req)
{
	req->st |= RQ_PAUSED;
	if (req->hc && req->hc->conn) {
		conn_read_stop(req->hc->conn);
		if (req->hc->tmode == TM_BODY)
			hc_timer(req->hc, TM_NONE, 0);
	}
}

void http_request_resume(struct http_request *req)
{
	req->st &= ~RQ_PAUSED;
	if (req->hc && req->hc->conn && !(req->st & RQ_MSG_DONE)) {
		hc_timer(req->hc, TM_BODY, req->hc->srv->cfg.limits.body_timeout_ms);
		hc_read_on(req->hc);
	}
}

/* ---- responses ---- */

/*
 * Whether the request announced a body: Content-Length > 0, or any
 * Transfer-Encoding (chunked or one llhttp will refuse further on).
 */
static int hc_request_has_body(const struct http_request *req)
{
	return req->content_length > 0 || req->chunked ||
	       http_request_header(req, LIT("Transfer-Encoding")).base != NULL;
}

static int hc_write(struct http_request *req, const void *data, size_t len)
{
	int rc;

	if (req->hc == NULL || req->hc->conn == NULL)
		return -EPIPE;
	rc = conn_write(req->hc->conn, data, len);
	if (rc >= 0)
		req->bytes_out += len;
	return rc;
}

int http_response_start(struct http_request *req, int status, const struct http_header *hdrs,
			size_t n, int64_t content_length)
{
	struct http_conn *hc = req->hc;
	struct buf head;
	size_t i;
	int rc, nobody;

	if (req->st & RQ_RESP_STARTED)
		return -EALREADY;
	req->st |= RQ_RESP_STARTED;
	req->status = status;
	if (hc == NULL)
		return -EPIPE;
	if (!req->keep_alive || !(req->st & RQ_HEADERS_DONE) || (req->st & RQ_PENDING))
		hc->close_after = 1;
	/* An answer that starts before the request body has arrived closes
	 * the connection after it (see hc_finish): say so in the head. */
	if (!(req->st & RQ_MSG_DONE) && hc_request_has_body(req))
		hc->close_after = 1;
	/* An upgrade answered without upgrading: the parser stopped at the
	 * upgrade, so nothing after it can be read as HTTP; close after this. */
	if (hc->upgrade_ok && status != 101)
		hc->close_after = 1;
	nobody = (req->st & RQ_HEAD_METHOD) || status == 204 || status == 304 ||
		 (status >= 100 && status < 200);
	if (nobody)
		req->st |= RQ_RESP_NOBODY;
	buf_init(&head, 256 * 1024);
	rc = buf_printf(&head, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
	for (i = 0; rc == 0 && i < n; i++) {
		rc = buf_append(&head, hdrs[i].name.base, hdrs[i].name.len);
		if (rc == 0)
			rc = buf_append(&head, ": ", 2);
		if (rc == 0)
			rc = buf_append(&head, hdrs[i].value.base, hdrs[i].value.len);
		if (rc == 0)
			rc = buf_append(&head, "\r\n", 2);
	}
	if (rc == 0 && status == 101) {
		/* The caller's headers say everything for an upgrade. */
	} else if (rc == 0 && content_length >= 0 && status != 204 && status != 304) {
		rc = buf_printf(&head, "Content-Length: %lld\r\n", (long long)content_length);
	} else if (rc == 0 && !nobody) {
		req->st |= RQ_RESP_CHUNKED;
		rc = buf_append_str(&head, "Transfer-Encoding: chunked\r\n");
	}
	if (rc == 0 && hc->close_after && status != 101)
		rc = buf_append_str(&head, "Connection: close\r\n");
	if (rc == 0)
		rc = buf_append(&head, "\r\n", 2);
	if (rc == 0)
		rc = hc_write(req, head.data, head.len);
	buf_free(&head);
	return rc < 0 ? rc : 0;
}

int http_response_write(struct http_request *req, const void *data, size_t len)
{
	char chunk_head[24];
	int n, rc;

	if (req->hc == NULL)
		return -EPIPE;
	if (!(req->st & RQ_RESP_STARTED))
		return -EINVAL; /* body bytes before the head are never sent raw */
	if (len == 0 || (req->st & RQ_RESP_NOBODY))
		return 1;
	if (!(req->st & RQ_RESP_CHUNKED))
		return hc_write(req, data, len);
	n = snprintf(chunk_head, sizeof(chunk_head), "%zx\r\n", len);
	if (n < 0 || (size_t)n >= sizeof(chunk_head))
		return -EINVAL;
	rc = hc_write(req, chunk_head, (size_t)n);
	if (rc >= 0)
		rc = hc_write(req, data, len);
	if (rc >= 0)
		rc = hc_write(req, "\r\n", 2);
	return rc;
}

/* Ends the request's life on this connection and decides what comes next. */
static void hc_finish(struct http_request *req)
{
	struct http_conn *hc = req->hc;
	struct http_server *srv = req->server;
	int linger;

	if (!req->aborted && srv->cfg.on_finished)
		srv->cfg.on_finished(req);
	if (hc == NULL) {
		hc_request_free(req);
		return;
	}
	hc->req = NULL;
	req->hc = NULL;
	/* Answered before its body was read: the rest of it is not ours to
	 * parse. A request without a body (answered at its headers) is fine:
	 * the parser completes it and goes on with the next one. */
	if (!(req->st & RQ_MSG_DONE) && hc_request_has_body(req))
		hc->close_after = 1;
	/* Bytes of this request may still be on their way: its body, or the
	 * rest of a head we gave up on (431, 400). */
	linger = !(req->st & RQ_MSG_DONE) &&
		 (hc_request_has_body(req) || !(req->st & RQ_HEADERS_DONE));
	hc_request_free(req);
	if (hc->close_after) {
		if (linger)
			hc_linger(hc);
		else
			conn_shutdown(hc->conn);
		return;
	}
	if (!hc->in_execute)
		hc_timer(hc, TM_NEXT, 0);
}

int http_response_end(struct http_request *req)
{
	int rc = 0;

	if (req->hc && (req->st & RQ_RESP_CHUNKED))
		rc = hc_write(req, "0\r\n\r\n", 5);
	hc_finish(req);
	return rc < 0 ? rc : 0;
}

void http_response_abort(struct http_request *req)
{
	struct http_conn *hc = req->hc;

	if (hc) {
		hc->close_after = 1;
		hc->req = NULL;
		req->hc = NULL;
		req->aborted = 1;
		if (hc->conn)
			conn_close(hc->conn);
	}
	hc_request_free(req);
}

int http_respond(struct http_request *req, int status, const struct http_header *hdrs, size_t n,
		 const void *body, size_t len)
{
	int rc = http_response_start(req, status, hdrs, n, (int64_t)len);

	if (rc == 0 && len)
		rc = http_response_write(req, body, len);
	http_response_end(req);
	return rc < 0 ? rc : 0;
}

static const struct http_header hc_json_hdr[] = {
	{LIT("Content-Type"), LIT("application/json")},
};

int http_respond_json(struct http_request *req, int status, json_t *metadata)
{
	size_t len = 0;
	char *body = envelope_sync(metadata, &len);
	int rc;

	if (body == NULL)
		return http_respond_error(req, 500, "out of memory");
	rc = http_respond(req, status, hc_json_hdr, 1, body, len);
	free(body);
	return rc;
}

int http_respond_error(struct http_request *req, int status, const char *fmt, ...)
{
	char msg[512];
	size_t len = 0;
	char *body;
	va_list ap;
	int rc, n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	body = envelope_error(status, msg, &len);
	if (body == NULL) {
		http_response_abort(req);
		return -ENOMEM;
	}
	rc = http_respond(req, status, hc_json_hdr, 1, body, len);
	free(body);
	return rc;
}

struct conn *http_request_take_conn(struct http_request *req, char **extra, size_t *extra_len)
{
	struct http_conn *hc = req->hc;
	struct conn *c;

	*extra = NULL;
	*extra_len = 0;
	if (hc == NULL || hc->conn == NULL) {
		hc_request_free(req);
		return NULL;
	}
	c = hc->conn;
	hc->taken = 1;
	hc->conn = NULL;
	hc->req = NULL;
	req->hc = NULL;
	if (hc->pending.len) {
		*extra = buf_steal(&hc->pending, extra_len);
	}
	conn_set_data(c, NULL);
	conn_set_callbacks(c, NULL);
	if (hc->peer_eof)
		conn_replay_end(c); /* the new owner learns of the client's end */
	/* Parsing stopped reading at the upgrade; the new owner reads. Nothing
	 * is delivered before the caller has set its callbacks (next turn). */
	conn_read_start(c);
	hc_unlink(hc);
	uv_close((uv_handle_t *)&hc->timer, hc_on_timer_closed);
	hc_request_free(req);
	return c;
}
