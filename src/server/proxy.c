/*
 * proxy.c - ANY /1.0/remote-cluster/{name}/tunnel/{path...}: one operator
 * request becomes one tunnel stream to the cluster's agent.
 *
 * This is the body-stream seam of DESIGN.md made concrete: two pipes.
 *   request body:  http_request (on_body)  -> tunnel_stream_write
 *                  backpressure: write returns 0 -> http_request_pause,
 *                  stream on_drain -> http_request_resume
 *   response body: tunnel stream (on_data) -> http_response_write
 *                  backpressure: write returns 0 -> the bytes are credited
 *                  back to the stream window (tunnel_stream_consume) only on
 *                  the HTTP side's on_drain; the agent then stops sending.
 * WebSocket upgrades become RFC 8441 extended CONNECT streams; after the
 * agent's 200 we answer 101 and pipe raw bytes between the user's socket
 * and the stream, with the same backpressure.
 *
 * Lifetime: struct proxy lives until both the HTTP request is finished
 * (p->req == NULL) and the stream is closed (p->stream == NULL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "net/stream_pipe.h"
#include "net/ws.h"
#include "server/audit.h"
#include "server/server.h"
#include "server/tunnel_v1.h"
#include "server/tunnels.h"
#include "store/store_async.h"

#define PROXY_MAX_PATH 8192

struct proxy {
	struct server *srv;
	struct http_request *req;   /* NULL once finished */
	struct tunnel_stream *stream; /* NULL once closed */
	int piping;		    /* a stream_pipe carries the upgraded WebSocket */
	uv_timer_t timer;	    /* response header timeout */
	int timer_open;
	char cluster[64];
	char method[16];
	char path[512]; /* for the audit log, truncated */
	char accept[32];
	int websocket;
	int responded;	   /* response head sent */
	int audited;	   /* the audit row is recorded */
	int body_done;	   /* the user's request body ended */
	int64_t resp_clen; /* the response's Content-Length, or -1 */
	int stream_ended;  /* agent finished the response body */
	size_t unconsumed; /* response bytes written but not yet credited back */
	uint64_t bytes_in, bytes_out;
	uint64_t start_ms;
	int status;
	char peer[64];
	char actor[AUDIT_ACTOR_MAX];
};

static void proxy_maybe_free(struct proxy *p);
static void proxy_on_header_timeout(uv_timer_t *t);
static void proxy_idle_restart(struct proxy *p);

/* ---- audit ---- */

/*
 * Records the request's audit row, once: before the end of its response
 * goes out (so a client that saw the end can count on the row), or when
 * the proxy is freed for requests that ended otherwise.
 */
static void proxy_audit(struct proxy *p)
{
	struct audit_entry e;

	if (p->audited)
		return;
	p->audited = 1;
	memset(&e, 0, sizeof(e));
	memcpy(e.actor, p->actor, sizeof(e.actor));
	e.cluster = p->cluster;
	e.method = p->method;
	e.path = p->path;
	e.status = p->status;
	e.bytes_in = p->bytes_in;
	e.bytes_out = p->bytes_out;
	e.start_ms = p->start_ms;
	audit_record(p->srv, &e);
}

/* ---- finishing ---- */

static void proxy_on_timer_closed(uv_handle_t *h)
{
	struct proxy *p = h->data;

	p->timer_open = 0;
	proxy_maybe_free(p);
}

static void proxy_maybe_free(struct proxy *p)
{
	if (p->req || p->stream || p->piping)
		return;
	if (p->timer_open) {
		if (!uv_is_closing((uv_handle_t *)&p->timer))
			uv_close((uv_handle_t *)&p->timer, proxy_on_timer_closed);
		return;
	}
	proxy_audit(p);
	free(p);
}

/* Finishes the HTTP side with an error envelope, or cuts it if a head went out. */
static void proxy_fail(struct proxy *p, int status, const char *msg)
{
	struct http_request *req = p->req;

	if (req == NULL)
		return;
	p->req = NULL;
	uv_timer_stop(&p->timer);
	if (!p->responded) {
		p->status = status;
		proxy_audit(p);
		http_respond_error(req, status, "%s", msg);
	} else {
		http_response_abort(req);
	}
}

static void proxy_reset_stream(struct proxy *p, uint32_t code)
{
	if (p->stream)
		tunnel_stream_reset(p->stream, code);
}

/* ---- response path: stream -> HTTP ---- */

static void proxy_on_response(struct tunnel_stream *s, const struct tunnel_headers *h)
{
	struct proxy *p = tunnel_stream_data(s);
	struct http_header out[TUNNEL_MAX_HEADERS];
	int64_t clen = -1;
	long long v;
	size_t i, n = 0;

	if (p->req == NULL)
		return;
	uv_timer_stop(&p->timer);
	if (slice_to_int64(tunnel_header(h, LIT(":status")), 200, 599, &v) != 0) {
		proxy_fail(p, 502, "the cluster's agent sent an invalid response");
		proxy_reset_stream(p, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	p->status = (int)v;
	for (i = 0; i < h->n; i++) {
		if (h->h[i].name.len && h->h[i].name.base[0] == ':')
			continue;
		if (slice_eq(h->h[i].name, LIT("content-length"))) {
			if (slice_to_int64(h->h[i].value, 0, INT64_MAX, &v) == 0)
				clen = v;
			continue;
		}
		if (http_hdr_drop(h->h, h->n, h->h[i].name, HTTP_HDR_DROP_TO_USER))
			continue;
		out[n++] = h->h[i];
	}
	p->responded = 1;
	p->resp_clen = clen;
	/* A head that is the whole response (no body): its row goes first. */
	if (clen == 0 || p->status == 204 || p->status == 304 ||
	    slice_eq(slice_cstr(p->method), LIT("HEAD")))
		proxy_audit(p);
	if (http_response_start(p->req, p->status, out, n, clen) < 0) {
		proxy_fail(p, 502, "client gone");
		proxy_reset_stream(p, NGHTTP2_CANCEL);
		return;
	}
	proxy_idle_restart(p);
}

static void proxy_on_data(struct tunnel_stream *s, const uint8_t *data, size_t len)
{
	struct proxy *p = tunnel_stream_data(s);
	int rc;

	p->bytes_out += len;
	if (p->req == NULL) {
		tunnel_stream_consume(s, len);
		return;
	}
	if (!p->responded) {
		/* Body bytes before a response head (say, after a 1xx the tunnel
		 * dropped): never written raw to the user. */
		tunnel_stream_consume(s, len);
		proxy_fail(p, 502, "the cluster's agent sent a body without a response");
		proxy_reset_stream(p, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	proxy_idle_restart(p);
	/* The last byte of a Content-Length body completes the response for the
	 * client (the stream's end may come later): the row goes before it. */
	if (p->resp_clen >= 0 && p->bytes_out >= (uint64_t)p->resp_clen)
		proxy_audit(p);
	rc = http_response_write(p->req, data, len);
	if (rc == 1) {
		tunnel_stream_consume(s, len);
	} else if (rc == 0) {
		p->unconsumed += len; /* credited on the HTTP side's drain */
	} else {
		proxy_fail(p, 502, "client gone");
		proxy_reset_stream(p, NGHTTP2_CANCEL);
	}
}

static void proxy_on_end(struct tunnel_stream *s)
{
	struct proxy *p = tunnel_stream_data(s);
	struct http_request *req = p->req;

	p->stream_ended = 1;
	if (req == NULL || !p->responded)
		return; /* on_close reports a stream that ended without headers */
	p->req = NULL;
	proxy_audit(p);
	http_response_end(req);
	/*
	 * The answer is complete. A request body still on its way is not
	 * wanted (and may be blocked by flow control forever): cancel the
	 * stream rather than end it behind that body.
	 */
	if (p->stream && !(p->body_done && tunnel_stream_sent_all(p->stream)))
		proxy_reset_stream(p, NGHTTP2_CANCEL);
	else if (p->stream)
		tunnel_stream_end(p->stream);
}

static void proxy_on_drain_stream(struct tunnel_stream *s)
{
	struct proxy *p = tunnel_stream_data(s);

	if (p->req)
		http_request_resume(p->req);
}

static void proxy_on_close(struct tunnel_stream *s, uint32_t code)
{
	struct proxy *p = tunnel_stream_data(s);

	p->stream = NULL;
	if (p->req) {
		if (code == NGHTTP2_REFUSED_STREAM)
			proxy_fail(p, 503, "the cluster's agent refused the request (too busy)");
		else if (code == NGHTTP2_CANCEL && !p->responded)
			proxy_fail(p, 502, "the tunnel to the cluster closed before a response");
		else
			proxy_fail(p, 502, "the cluster's agent did not complete the response");
	}
	proxy_maybe_free(p);
}

static const struct tunnel_stream_callbacks proxy_stream_cbs = {
	.on_response = proxy_on_response,
	.on_data = proxy_on_data,
	.on_end = proxy_on_end,
	.on_drain = proxy_on_drain_stream,
	.on_close = proxy_on_close,
};

/* ---- request path: HTTP -> stream ---- */

static void proxy_req_on_body(struct http_request *req, const char *data, size_t len)
{
	struct proxy *p = req->data;
	int rc;

	p->bytes_in += len;
	if (p->stream == NULL)
		return;
	if (!p->responded)
		uv_timer_start(&p->timer, proxy_on_header_timeout,
			       p->srv->cfg.proxy_header_timeout_ms, 0);
	rc = tunnel_stream_write(p->stream, data, len);
	if (rc == 0)
		http_request_pause(req);
	else if (rc < 0)
		proxy_reset_stream(p, NGHTTP2_CANCEL);
}

static void proxy_req_on_body_end(struct http_request *req)
{
	struct proxy *p = req->data;

	p->body_done = 1;
	/* An upgrade's request has no body, but its stream carries the
	 * WebSocket afterwards: it must stay open for writing. */
	if (p->stream && !p->websocket) {
		tunnel_stream_end(p->stream);
		if (!p->responded)
			uv_timer_start(&p->timer, proxy_on_header_timeout,
				       p->srv->cfg.proxy_header_timeout_ms, 0);
	}
}

static void proxy_req_on_drain(struct http_request *req)
{
	struct proxy *p = req->data;

	if (p->stream && p->unconsumed) {
		tunnel_stream_consume(p->stream, p->unconsumed);
		p->unconsumed = 0;
	}
	proxy_idle_restart(p); /* the client took bytes: progress */
}

/* The user went away: cancel the stream; on_close finishes the request. */
static void proxy_req_on_abort(struct http_request *req)
{
	struct proxy *p = req->data;

	if (p->stream) {
		proxy_reset_stream(p, NGHTTP2_CANCEL);
		return;
	}
	p->req = NULL;
	http_response_abort(req);
	proxy_maybe_free(p);
}

/*
 * A response body that makes no progress either way (nothing from the
 * cluster, nothing taken by the client) for --proxy-idle-timeout is cut: a
 * stalled cluster must not hold a connection (whose client may be long
 * gone: it is not read while its answer is made) and a stream forever.
 */
static void proxy_on_body_idle(uv_timer_t *t)
{
	struct proxy *p = t->data;

	if (p->req == NULL)
		return;
	LOG_WARN("the response of cluster %s to %s %s made no progress for %llu ms; cutting it",
		 p->cluster, p->method, p->path,
		 (unsigned long long)p->srv->cfg.proxy_idle_timeout_ms);
	proxy_fail(p, 504, "the cluster stopped sending its response");
	proxy_reset_stream(p, NGHTTP2_CANCEL);
	proxy_maybe_free(p);
}

static void proxy_idle_restart(struct proxy *p)
{
	if (p->req && p->responded && p->timer_open && p->srv->cfg.proxy_idle_timeout_ms)
		uv_timer_start(&p->timer, proxy_on_body_idle, p->srv->cfg.proxy_idle_timeout_ms, 0);
}

static void proxy_on_header_timeout(uv_timer_t *t)
{
	struct proxy *p = t->data;

	LOG_WARN("cluster %s sent no response headers for %s %s in time", p->cluster, p->method,
		 p->path);
	proxy_fail(p, 504, "the cluster did not answer in time");
	proxy_reset_stream(p, NGHTTP2_CANCEL);
	proxy_maybe_free(p);
}

/* ---- WebSocket pass-through ---- */

static void proxy_ws_done(void *arg, uint64_t to_stream, uint64_t to_conn)
{
	struct proxy *p = arg;

	p->bytes_in += to_stream;
	p->bytes_out += to_conn;
	p->piping = 0;
	proxy_maybe_free(p);
}

/* The agent accepted the extended CONNECT: answer 101 and start piping. */
static void proxy_ws_on_response(struct tunnel_stream *s, const struct tunnel_headers *h)
{
	struct proxy *p = tunnel_stream_data(s);
	struct http_header out[4];
	struct slice proto = tunnel_header(h, LIT("sec-websocket-protocol"));
	struct slice st = tunnel_header(h, LIT(":status"));
	size_t n = 0, extra_len = 0;
	char *extra = NULL;
	struct stream_pipe *pipe;
	struct conn *c;

	if (p->req == NULL)
		return;
	uv_timer_stop(&p->timer);
	if (!slice_eq(st, LIT("200"))) {
		/* LXD refused the upgrade: pass its answer on as a normal response. */
		proxy_on_response(s, h);
		tunnel_stream_set_callbacks(s, &proxy_stream_cbs, p);
		return;
	}
	p->status = 101;
	proxy_audit(p); /* a console may last for hours: the row is written at the upgrade */
	out[n++] = (struct http_header){LIT("Upgrade"), LIT("websocket")};
	out[n++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
	out[n++] = (struct http_header){LIT("Sec-WebSocket-Accept"), slice_cstr(p->accept)};
	if (proto.base)
		out[n++] = (struct http_header){LIT("Sec-WebSocket-Protocol"), proto};
	p->responded = 1;
	if (http_response_start(p->req, 101, out, n, -1) < 0) {
		proxy_fail(p, 502, "client gone");
		proxy_reset_stream(p, NGHTTP2_CANCEL);
		return;
	}
	c = http_request_take_conn(p->req, &extra, &extra_len);
	p->req = NULL;
	if (c == NULL) {
		free(extra);
		proxy_reset_stream(p, NGHTTP2_CANCEL);
		return;
	}
	/* From here the pipe owns the socket and the stream. */
	p->stream = NULL;
	p->piping = 1;
	pipe = stream_pipe_start(c, s, extra, extra_len, proxy_ws_done, p);
	if (pipe == NULL) {
		p->piping = 0;
		proxy_maybe_free(p);
	} else if (p->srv->cfg.proxy_fin_timeout_ms) {
		stream_pipe_set_fin_timeout(pipe, p->srv->cfg.proxy_fin_timeout_ms);
	}
	free(extra);
}

static const struct tunnel_stream_callbacks proxy_ws_stream_cbs = {
	.on_response = proxy_ws_on_response,
	.on_data = proxy_on_data,
	.on_end = proxy_on_end,
	.on_drain = proxy_on_drain_stream,
	.on_close = proxy_on_close,
};

/* ---- building the stream's request ---- */

struct proxy_head {
	struct http_header h[TUNNEL_MAX_HEADERS];
	size_t n;
	char path[PROXY_MAX_PATH];
	char fwd[512];
	char xff[512];
	char clen[24];
	struct buf cookies;
};

static void proxy_head_free(struct proxy_head *ph)
{
	if (ph == NULL)
		return;
	buf_free(&ph->cookies);
	free(ph);
}

static int proxy_add(struct proxy_head *ph, struct slice name, struct slice value)
{
	if (ph->n >= TUNNEL_MAX_HEADERS)
		return -E2BIG;
	ph->h[ph->n].name = name;
	ph->h[ph->n].value = value;
	ph->n++;
	return 0;
}

/* A value fit for a quoted-string parameter of Forwarded (RFC 7239). */
static int proxy_quotable(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++)
		if (v.base[i] == '"' || v.base[i] == '\\' || (unsigned char)v.base[i] < 0x20 ||
		    v.base[i] == 0x7f)
			return 0;
	return v.len <= 200;
}

static int proxy_build_head(struct proxy *p, struct http_request *req, struct proxy_head *ph)
{
	struct slice rest = req->params[1], host = http_request_header(req, LIT("Host"));
	struct slice xff_in = http_request_header(req, LIT("X-Forwarded-For"));
	size_t i;
	int n, rc = 0;

	(void)xff_in; /* replaced below by the client address (believed only from --trusted-proxy) */
	n = snprintf(ph->path, sizeof(ph->path), "/%.*s%s%.*s", (int)rest.len, rest.base,
		     req->query.base ? "?" : "", (int)req->query.len,
		     req->query.base ? req->query.base : "");
	if (n < 0 || (size_t)n >= sizeof(ph->path))
		return -E2BIG;
	snprintf(p->path, sizeof(p->path), "%.*s", (int)(sizeof(p->path) - 1), ph->path);
	if (p->websocket) {
		rc |= proxy_add(ph, LIT(":method"), LIT("CONNECT"));
		rc |= proxy_add(ph, LIT(":protocol"), LIT("websocket"));
	} else {
		rc |= proxy_add(ph, LIT(":method"), req->method);
	}
	rc |= proxy_add(ph, LIT(":scheme"), LIT("https"));
	rc |= proxy_add(ph, LIT(":authority"), host.base && host.len ? host : LIT("lxd"));
	rc |= proxy_add(ph, LIT(":path"), slice_cstr(ph->path));
	for (i = 0; i < req->nheaders; i++) {
		struct slice name = req->headers[i].name;

		if (http_hdr_drop(req->headers, req->nheaders, name, HTTP_HDR_DROP_TO_CLUSTER))
			continue;
		if (slice_eq_nocase(name, LIT("Cookie"))) {
			if (http_hdr_cookies_for_cluster(req->headers[i].value, &ph->cookies) < 0)
				return -E2BIG;
			continue;
		}
		rc |= proxy_add(ph, name, req->headers[i].value);
	}
	if (ph->cookies.len)
		rc |= proxy_add(ph, LIT("cookie"), slice_make(ph->cookies.data, ph->cookies.len));
	if (req->content_length >= 0 && !p->websocket) {
		snprintf(ph->clen, sizeof(ph->clen), "%lld", (long long)req->content_length);
		rc |= proxy_add(ph, LIT("content-length"), slice_cstr(ph->clen));
	}
	n = snprintf(ph->fwd, sizeof(ph->fwd), "for=\"%s%s%s\";proto=https%s%.*s%s",
		     strchr(req->peer_addr, ':') ? "[" : "", req->peer_addr,
		     strchr(req->peer_addr, ':') ? "]" : "",
		     host.base && proxy_quotable(host) ? ";host=\"" : "",
		     host.base && proxy_quotable(host) ? (int)host.len : 0,
		     host.base ? host.base : "", host.base && proxy_quotable(host) ? "\"" : "");
	if (n > 0 && (size_t)n < sizeof(ph->fwd))
		rc |= proxy_add(ph, LIT("forwarded"), slice_cstr(ph->fwd));
	snprintf(ph->xff, sizeof(ph->xff), "%s", req->peer_addr);
	rc |= proxy_add(ph, LIT("x-forwarded-for"), slice_cstr(ph->xff));
	rc |= proxy_add(ph, LIT("x-forwarded-proto"), LIT("https"));
	if (host.base)
		rc |= proxy_add(ph, LIT("x-forwarded-host"), host);
	return rc ? -E2BIG : 0;
}

/* ---- the handler ---- */

struct proxy_lookup {
	struct http_request *req;
	struct server *srv;
	char name[64];
	int rc;
	struct store_cluster c;
};

static void proxy_lookup_work(struct store *s, void *arg)
{
	struct proxy_lookup *l = arg;

	l->rc = store_cluster_get(s, l->name, &l->c);
}

static void proxy_lookup_done(void *arg)
{
	struct proxy_lookup *l = arg;

	if (l->rc == -ENOENT)
		http_respond_error(l->req, 404, "cluster %s not found", l->name);
	else if (l->rc < 0)
		handler_store_error(l->req, l->rc, "cluster");
	else
		http_respond_error(l->req, 503, "cluster %s has no live tunnel (is its agent running?)",
				   l->name);
	store_cluster_clear(&l->c);
	free(l);
}

/* No live tunnel here: 404 if the cluster does not exist, else 503. */
static void proxy_no_tunnel(struct http_request *req, const char *name)
{
	struct server *srv = req->server_data;
	struct proxy_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	l->req = req;
	l->srv = srv;
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (store_run(srv->loop, srv->store, proxy_lookup_work, proxy_lookup_done, l) < 0) {
		http_respond_error(req, 503, "the server is busy");
		free(l);
	}
}

/*
 * The path rule of every hop (http_hdr_path_check): a path that breaks it
 * never reaches a stream. The answer is the agent's for such a path (403),
 * so that clients see the same whichever hop refuses, and the refusal has
 * its audit row as when the agent gave it. Returns 1 when refused (p is
 * freed and req finished), else 0.
 */
static int proxy_refuse_path(struct proxy *p, struct http_request *req)
{
	const char *why = NULL;

	if (http_hdr_path_tail_check(req->params[1], &why) == 0)
		return 0;
	p->status = 403;
	proxy_audit(p);
	free(p);
	http_respond_error(req, 403, "path not allowed: it has %s", why);
	return 1;
}

static int proxy_is_websocket(struct http_request *req)
{
	struct slice up = http_request_header(req, LIT("Upgrade"));

	return req->upgrade && up.base && slice_eq_nocase(up, LIT("websocket"));
}

void proxy_handle(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct tunnel_entry *e;
	struct proxy_head *ph;
	struct proxy *p;
	char name[64];
	int has_body;

	if (http_request_param(req, 0, name, sizeof(name)) != 0 || !handler_valid_name(name)) {
		http_respond_error(req, 404, "cluster not found");
		return;
	}
	e = tunnels_get(srv->tunnels, name);
	if (e == NULL) {
		proxy_no_tunnel(req, name);
		return;
	}
	if (e->protocol == 1) {
		tunnel_v1_proxy(e, req); /* MicroCloud's JSON frames (tunnel_v1.c) */
		return;
	}
	if (e->t == NULL) {
		http_respond_error(req, 501, "this cluster's tunnel protocol cannot carry this request");
		return;
	}
	p = calloc(1, sizeof(*p));
	ph = calloc(1, sizeof(*ph));
	if (ph)
		buf_init(&ph->cookies, HTTP_HDR_MAX_COOKIE);
	if (p == NULL || ph == NULL) {
		free(p);
		proxy_head_free(ph);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	p->srv = srv;
	p->req = req;
	p->start_ms = uv_now(srv->loop);
	p->resp_clen = -1;
	audit_actor(req, p->actor);
	snprintf(p->cluster, sizeof(p->cluster), "%s", name);
	snprintf(p->method, sizeof(p->method), "%.*s", (int)req->method.len, req->method.base);
	p->websocket = proxy_is_websocket(req);
	if (p->websocket) {
		const char *why = NULL;
		struct slice key = http_request_header(req, LIT("Sec-WebSocket-Key"));

		if (ws_check_upgrade_request(req, &why) != 0 ||
		    ws_accept_key(key.base, key.len, p->accept) != 0) {
			proxy_head_free(ph);
			free(p);
			http_respond_error(req, 400, "invalid WebSocket upgrade: %s",
					   why ? why : "bad key");
			return;
		}
		if (!tunnel_connect_protocol_enabled(e->t)) {
			proxy_head_free(ph);
			free(p);
			http_respond_error(req, 501, "the cluster's agent cannot carry WebSockets");
			return;
		}
	}
	if (proxy_build_head(p, req, ph) < 0) {
		proxy_head_free(ph);
		free(p);
		http_respond_error(req, 431, "request path or headers too large for the tunnel");
		return;
	}
	if (proxy_refuse_path(p, req)) {
		proxy_head_free(ph);
		return;
	}
	has_body = p->websocket || req->content_length > 0 || req->chunked;
	req->data = p;
	req->on_body = proxy_req_on_body;
	req->on_body_end = proxy_req_on_body_end;
	req->on_drain = proxy_req_on_drain;
	req->on_abort = proxy_req_on_abort;
	uv_timer_init(srv->loop, &p->timer);
	p->timer.data = p;
	p->timer_open = 1;
	/*
	 * No answer within the timeout is a 504. While the request body
	 * uploads, the timer restarts with every chunk: a long upload that
	 * moves is fine, one that stalls (client or cluster) is not.
	 */
	uv_timer_start(&p->timer, proxy_on_header_timeout, srv->cfg.proxy_header_timeout_ms, 0);
	p->stream = tunnel_request(e->t, ph->h, ph->n, has_body,
				   p->websocket ? &proxy_ws_stream_cbs : &proxy_stream_cbs, p);
	proxy_head_free(ph);
	if (p->stream == NULL) {
		proxy_fail(p, 503, "the tunnel to the cluster cannot take more requests");
		proxy_maybe_free(p);
	}
}
