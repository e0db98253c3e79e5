/*
 * proxy.c - ANY /1.0/remote-cluster/{name}/tunnel/{path...}: one operator
 * request becomes one exchange with an upstream (upstream.h) that reaches
 * the cluster, whatever the tunnel's protocol.
 *
 * This is the body-stream seam of DESIGN.md made concrete: two pipes.
 *   request body:  http_request (on_body)  -> upstream write
 *                  backpressure: write returns 0 -> http_request_pause,
 *                  upstream on_drain -> http_request_resume
 *   response body: upstream on_data -> http_response_write
 *                  backpressure: write returns 0 -> the bytes are credited
 *                  back to the upstream (consume) only on the HTTP side's
 *                  on_drain; the cluster then stops sending.
 * WebSocket upgrades: when the upstream reports the upgrade accepted
 * (on_head 101), we answer 101 and hand the user's socket to the upstream's
 * pipe.
 *
 * Everything that does not depend on the protocol is here, once: the header
 * filter both ways (http_hdr.c), the forwarding headers, the path rule, the
 * audit row, the header and body idle timeouts, and the statuses of failed
 * exchanges (upstream_status).
 *
 * Lifetime: struct proxy lives until the HTTP request is finished
 * (p->req == NULL), the upstream is gone (p->up == NULL) and no pipe runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "net/stream_pipe.h"
#include "net/ws.h"
#include "server/audit.h"
#include "server/principal.h"
#include "server/server.h"
#include "server/telemetry.h"
#include "server/tunnels.h"
#include "server/upstream.h"
#include "store/store_async.h"

#define PROXY_MAX_PATH 8192

struct proxy {
	struct server *srv;
	struct http_request *req; /* NULL once finished */
	struct upstream *up;	  /* NULL once gone */
	int piping;		  /* a stream_pipe carries the upgraded WebSocket */
	uv_timer_t timer;	  /* response header timeout, then body idle timeout */
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
	size_t unconsumed; /* response bytes written but not yet credited back */
	uint64_t bytes_in, bytes_out;
	uint64_t start_ms;
	int status;
	char actor[AUDIT_ACTOR_MAX];
	char actor_name[AUDIT_ACTOR_NAME_MAX];
	char client[AUDIT_CLIENT_MAX];
	/* Sent to the cluster as X-Request-Id, and the audit row's and log line's id. */
	char request_id[AUDIT_REQUEST_ID_LEN + 1];
	const char *protocol; /* the upstream's name, for metrics */
	int in_flight;	      /* counted in telemetry_stream */
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
	memcpy(e.actor_name, p->actor_name, sizeof(e.actor_name));
	e.request_id = p->request_id;
	e.client = p->client;
	e.cluster = p->cluster;
	e.method = p->method;
	e.path = p->path;
	e.status = p->status;
	e.bytes_in = p->bytes_in;
	e.bytes_out = p->bytes_out;
	e.start_ms = p->start_ms;
	audit_record(p->srv, &e);
	telemetry_proxied(p->srv, p->protocol, p->cluster, p->status, p->bytes_in, p->bytes_out,
			  p->start_ms);
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
	if (p->req || p->up || p->piping)
		return;
	if (p->timer_open) {
		if (!uv_is_closing((uv_handle_t *)&p->timer))
			uv_close((uv_handle_t *)&p->timer, proxy_on_timer_closed);
		return;
	}
	proxy_audit(p);
	if (p->in_flight)
		telemetry_stream(p->srv, -1);
	free(p);
}

/* Finishes the HTTP side with an error envelope, or cuts it if a head went out. */
static void proxy_fail(struct proxy *p, int status, const char *msg)
{
	struct http_request *req = p->req;

	if (req == NULL)
		return;
	p->req = NULL;
	if (p->timer_open)
		uv_timer_stop(&p->timer);
	if (!p->responded) {
		p->status = status;
		proxy_audit(p);
		http_respond_error(req, status, "%s", msg);
	} else {
		http_response_abort(req);
	}
}

/* The one place an upstream's failure becomes the user's status. */
static void proxy_fail_upstream(struct proxy *p, const struct upstream_error *err)
{
	proxy_fail(p, upstream_status(err->reason), err->msg);
}

/* Cancels the exchange; no upstream callback follows. */
static void proxy_reset_upstream(struct proxy *p)
{
	struct upstream *up = p->up;

	p->up = NULL;
	if (up)
		up->ops->reset(up);
}

/* ---- response path: upstream -> HTTP ---- */

static void proxy_upgrade(struct proxy *p, const struct http_header *h, size_t n);

static void proxy_on_head(struct upstream *up, int status, const struct http_header *h, size_t n,
			  int64_t clen)
{
	struct proxy *p = up->arg;
	struct http_header out[UPSTREAM_MAX_HEADERS];
	size_t i, m = 0;

	if (p->req == NULL)
		return;
	uv_timer_stop(&p->timer);
	if (p->websocket && status == 101) {
		proxy_upgrade(p, h, n);
		return;
	}
	p->status = status;
	for (i = 0; i < n && m < UPSTREAM_MAX_HEADERS; i++) {
		if (http_hdr_drop(h, n, h[i].name, HTTP_HDR_DROP_TO_USER))
			continue;
		out[m++] = h[i];
	}
	/* The user can quote it to find the request's audit row and log lines. */
	if (m < UPSTREAM_MAX_HEADERS && p->request_id[0])
		out[m++] = (struct http_header){LIT("X-Request-Id"), slice_cstr(p->request_id)};
	p->responded = 1;
	p->resp_clen = clen;
	/* A head that is the whole response (no body): its row goes first. */
	if (clen == 0 || p->status == 204 || p->status == 304 ||
	    slice_eq(slice_cstr(p->method), LIT("HEAD")))
		proxy_audit(p);
	if (http_response_start(p->req, p->status, out, m, clen) < 0) {
		proxy_fail(p, 502, "client gone");
		proxy_reset_upstream(p);
		proxy_maybe_free(p);
		return;
	}
	proxy_idle_restart(p);
}

static void proxy_on_data(struct upstream *up, const uint8_t *data, size_t len)
{
	struct proxy *p = up->arg;
	int rc;

	p->bytes_out += len;
	if (p->req == NULL) {
		up->ops->consume(up, len);
		return;
	}
	proxy_idle_restart(p);
	/* The last byte of a Content-Length body completes the response for the
	 * client (the upstream's end may come later): the row goes before it. */
	if (p->resp_clen >= 0 && p->bytes_out >= (uint64_t)p->resp_clen)
		proxy_audit(p);
	rc = http_response_write(p->req, data, len);
	if (rc == 1) {
		up->ops->consume(up, len);
	} else if (rc == 0) {
		p->unconsumed += len; /* credited on the HTTP side's drain */
	} else {
		proxy_fail(p, 502, "client gone");
		proxy_reset_upstream(p);
		proxy_maybe_free(p);
	}
}

static void proxy_on_end(struct upstream *up)
{
	struct proxy *p = up->arg;
	struct http_request *req = p->req;

	p->up = NULL;
	up->ops->close(up); /* ends or cancels what is left of the request */
	if (req != NULL) {
		p->req = NULL;
		proxy_audit(p);
		http_response_end(req);
	}
	proxy_maybe_free(p);
}

static void proxy_on_drain_upstream(struct upstream *up)
{
	struct proxy *p = up->arg;

	if (p->req)
		http_request_resume(p->req);
}

/* The exchange failed; up is freed when this returns. */
static void proxy_on_error(struct upstream *up)
{
	struct proxy *p = up->arg;

	p->up = NULL;
	proxy_fail_upstream(p, &up->err);
	proxy_maybe_free(p);
}

static const struct upstream_callbacks proxy_upstream_cbs = {
	.on_head = proxy_on_head,
	.on_data = proxy_on_data,
	.on_end = proxy_on_end,
	.on_drain = proxy_on_drain_upstream,
	.on_error = proxy_on_error,
};

/* ---- request path: HTTP -> upstream ---- */

static void proxy_upstream_failed(struct proxy *p)
{
	struct upstream_error err = p->up->err;

	proxy_reset_upstream(p);
	proxy_fail_upstream(p, &err);
	proxy_maybe_free(p);
}

static void proxy_req_on_body(struct http_request *req, const char *data, size_t len)
{
	struct proxy *p = req->data;
	int rc;

	p->bytes_in += len;
	if (p->up == NULL)
		return;
	if (!p->responded)
		uv_timer_start(&p->timer, proxy_on_header_timeout,
			       p->srv->cfg.proxy_header_timeout_ms, 0);
	rc = p->up->ops->write(p->up, data, len);
	if (rc == 0)
		http_request_pause(req);
	else if (rc < 0)
		proxy_upstream_failed(p);
}

static void proxy_req_on_body_end(struct http_request *req)
{
	struct proxy *p = req->data;

	p->body_done = 1;
	if (p->up == NULL)
		return;
	if (p->up->ops->end(p->up) < 0) {
		proxy_upstream_failed(p);
		return;
	}
	if (!p->responded && !p->websocket)
		uv_timer_start(&p->timer, proxy_on_header_timeout,
			       p->srv->cfg.proxy_header_timeout_ms, 0);
}

static void proxy_req_on_drain(struct http_request *req)
{
	struct proxy *p = req->data;

	if (p->up && p->unconsumed) {
		p->up->ops->consume(p->up, p->unconsumed);
		p->unconsumed = 0;
	}
	proxy_idle_restart(p); /* the client took bytes: progress */
}

/* The user went away: cancel the exchange and finish the request. */
static void proxy_req_on_abort(struct http_request *req)
{
	struct proxy *p = req->data;

	proxy_reset_upstream(p);
	p->req = NULL;
	if (p->timer_open)
		uv_timer_stop(&p->timer);
	http_response_abort(req);
	proxy_maybe_free(p);
}

/*
 * A response body that makes no progress either way (nothing from the
 * cluster, nothing taken by the client) for --proxy-idle-timeout is cut: a
 * stalled cluster must not hold a connection (whose client may be long
 * gone: it is not read while its answer is made) and an upstream forever.
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
	proxy_reset_upstream(p);
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
	struct upstream_error err;

	LOG_WARN("cluster %s sent no response headers for %s %s in time", p->cluster, p->method,
		 p->path);
	upstream_error_set(&err, UPSTREAM_TIMEOUT, "the cluster did not answer in time");
	proxy_fail_upstream(p, &err);
	proxy_reset_upstream(p);
	proxy_maybe_free(p);
}

/* ---- WebSocket pass-through ---- */

static void proxy_ws_done(void *arg, uint64_t to_upstream, uint64_t to_user)
{
	struct proxy *p = arg;

	p->bytes_in += to_upstream;
	p->bytes_out += to_user;
	p->piping = 0;
	proxy_maybe_free(p);
}

/* The cluster accepted the upgrade: answer 101 and start piping. */
static void proxy_upgrade(struct proxy *p, const struct http_header *h, size_t n)
{
	struct http_header out[4];
	struct slice proto = http_hdr_get(h, n, LIT("sec-websocket-protocol"));
	size_t m = 0, extra_len = 0;
	char *extra = NULL;
	struct stream_pipe *pipe;
	struct upstream *up = p->up;
	struct conn *c;

	p->status = 101;
	proxy_audit(p); /* a console may last for hours: the row is written at the upgrade */
	out[m++] = (struct http_header){LIT("Upgrade"), LIT("websocket")};
	out[m++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
	out[m++] = (struct http_header){LIT("Sec-WebSocket-Accept"), slice_cstr(p->accept)};
	if (proto.base)
		out[m++] = (struct http_header){LIT("Sec-WebSocket-Protocol"), proto};
	p->responded = 1;
	if (http_response_start(p->req, 101, out, m, -1) < 0) {
		proxy_fail(p, 502, "client gone");
		proxy_reset_upstream(p);
		proxy_maybe_free(p);
		return;
	}
	c = http_request_take_conn(p->req, &extra, &extra_len);
	p->req = NULL;
	if (c == NULL) {
		free(extra);
		proxy_reset_upstream(p);
		proxy_maybe_free(p);
		return;
	}
	/* From here the pipe owns the socket and the upstream. */
	p->up = NULL;
	p->piping = 1;
	pipe = up->ops->pipe(up, c, extra, extra_len, proxy_ws_done, p);
	if (pipe == NULL)
		p->piping = 0;
	else if (p->srv->cfg.proxy_fin_timeout_ms)
		stream_pipe_set_fin_timeout(pipe, p->srv->cfg.proxy_fin_timeout_ms);
	free(extra);
	/* The upstream's callback returns into nothing of ours: safe to free. */
	proxy_maybe_free(p);
}

/* ---- building the upstream's request ---- */

struct proxy_head {
	struct http_header h[UPSTREAM_MAX_HEADERS];
	size_t n;
	char path[PROXY_MAX_PATH];
	char fwd[512];
	char xff[512];
	char user[PRINCIPAL_ID_MAX];
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
	return http_hdr_append(ph->h, &ph->n, UPSTREAM_MAX_HEADERS, name, value);
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

/* Forwarded, X-Forwarded-*: from the client address, never from the user's headers. */
static int proxy_add_forwarding(struct proxy_head *ph, struct http_request *req, struct slice host)
{
	int n, rc = 0, q = host.base && proxy_quotable(host);
	int v6 = strchr(req->peer_addr, ':') != NULL;

	n = snprintf(ph->fwd, sizeof(ph->fwd), "for=\"%s%s%s\";proto=https%s%.*s%s", v6 ? "[" : "",
		     req->peer_addr, v6 ? "]" : "", q ? ";host=\"" : "", q ? (int)host.len : 0,
		     host.base ? host.base : "", q ? "\"" : "");
	if (n > 0 && (size_t)n < sizeof(ph->fwd))
		rc |= proxy_add(ph, LIT("forwarded"), slice_cstr(ph->fwd));
	snprintf(ph->xff, sizeof(ph->xff), "%s", req->peer_addr);
	rc |= proxy_add(ph, LIT("x-forwarded-for"), slice_cstr(ph->xff));
	rc |= proxy_add(ph, LIT("x-forwarded-proto"), LIT("https"));
	if (host.base)
		rc |= proxy_add(ph, LIT("x-forwarded-host"), host);
	/* Who the person is, for the agent's log (the user's own header was dropped). */
	if (principal_of(req) && principal_of(req)->kind == PRINCIPAL_USER_SESSION) {
		snprintf(ph->user, sizeof(ph->user), "%s", principal_of(req)->id);
		rc |= proxy_add(ph, LIT("x-lxcm-user"), slice_cstr(ph->user));
	}
	return rc;
}

/*
 * The one header filter towards clusters (http_hdr.c): the user's
 * end-to-end headers, the manager's own cookies taken out, then the
 * forwarding headers. Fills rq's path and headers.
 */
static int proxy_build_head(struct proxy *p, struct http_request *req, struct proxy_head *ph,
			    struct upstream_req *rq)
{
	struct slice rest = req->params[1], host = http_request_header(req, LIT("Host"));
	size_t i;
	int n, rc = 0;

	n = snprintf(ph->path, sizeof(ph->path), "/%.*s%s%.*s", (int)rest.len, rest.base,
		     req->query.base ? "?" : "", (int)req->query.len,
		     req->query.base ? req->query.base : "");
	if (n < 0 || (size_t)n >= sizeof(ph->path))
		return -E2BIG;
	snprintf(p->path, sizeof(p->path), "%.*s", (int)(sizeof(p->path) - 1), ph->path);
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
	rc |= proxy_add_forwarding(ph, req, host);
	/* The id of the audit row and log line; the agent logs it too. */
	if (p->request_id[0])
		rc |= proxy_add(ph, LIT("x-request-id"), slice_cstr(p->request_id));
	rq->path = slice_make(ph->path, (size_t)n);
	rq->authority = host.base ? host : SLICE_NULL;
	rq->h = ph->h;
	rq->n = ph->n;
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

/* The user's key for per-user state upstream: the principal's seal (auth.c), or none. */
static struct slice proxy_user_key(const struct principal *who)
{
	if (who == NULL || !who->has_seal)
		return SLICE_NULL;
	return slice_make((const char *)who->seal, sizeof(who->seal));
}

/* What admit looks at, before anything is built. */
static void proxy_req_init(struct upstream_req *rq, struct http_request *req)
{
	memset(rq, 0, sizeof(*rq));
	rq->method = req->method;
	rq->tail = req->params[1];
	rq->content_length = req->content_length;
	rq->upgrade = req->upgrade;
	rq->websocket = proxy_is_websocket(req);
	rq->has_body = rq->websocket || req->content_length > 0 || req->chunked;
	rq->user_key = proxy_user_key(principal_of(req));
}

/* An upstream's refusal, in the LXD error envelope (with Allow for a 405). */
static void proxy_refuse(struct http_request *req, const struct upstream_refusal *ref)
{
	struct http_header h[2] = {
	    {LIT("Content-Type"), LIT("application/json")},
	    {LIT("Allow"), ref->allow},
	};
	size_t len = 0;
	char *env;

	if (ref->allow.base == NULL) {
		http_respond_error(req, ref->status, "%s", ref->msg);
		return;
	}
	env = envelope_error(ref->status, ref->msg, &len);
	if (env == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	http_respond(req, ref->status, h, 2, env, len);
	free(env);
}

/* A WebSocket upgrade must be a valid one; 0, or -1 when answered (400). */
static int proxy_check_websocket(struct proxy *p, struct http_request *req)
{
	const char *why = NULL;
	struct slice key = http_request_header(req, LIT("Sec-WebSocket-Key"));

	if (ws_check_upgrade_request(req, &why) == 0 &&
	    ws_accept_key(key.base, key.len, p->accept) == 0)
		return 0;
	http_respond_error(req, 400, "invalid WebSocket upgrade: %s", why ? why : "bad key");
	return -1;
}

/* The principal's id and name, for the audit row and the log line. */
static void proxy_who(struct proxy *p, const struct principal *who)
{
	audit_actor_of(who, p->actor);
	snprintf(p->actor_name, sizeof(p->actor_name), "%s", who ? who->name : "");
}

static struct proxy *proxy_new(struct server *srv, struct http_request *req, const char *name)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->srv = srv;
	p->req = req;
	p->start_ms = uv_now(srv->loop);
	p->resp_clen = -1;
	snprintf(p->cluster, sizeof(p->cluster), "%s", name);
	snprintf(p->method, sizeof(p->method), "%.*s", (int)req->method.len, req->method.base);
	snprintf(p->client, sizeof(p->client), "%s", req->peer_addr ? req->peer_addr : "");
	audit_request_id(srv, p->request_id);
	return p;
}

/* Takes over req's body callbacks and arms the header timeout. */
static void proxy_attach(struct proxy *p, struct http_request *req)
{
	req->data = p;
	req->on_body = proxy_req_on_body;
	req->on_body_end = proxy_req_on_body_end;
	req->on_drain = proxy_req_on_drain;
	req->on_abort = proxy_req_on_abort;
	uv_timer_init(p->srv->loop, &p->timer);
	p->timer.data = p;
	p->timer_open = 1;
	p->in_flight = 1;
	telemetry_stream(p->srv, 1);
	/*
	 * No answer within the timeout is a 504. While the request body
	 * uploads, the timer restarts with every chunk: a long upload that
	 * moves is fine, one that stalls (client or cluster) is not.
	 */
	uv_timer_start(&p->timer, proxy_on_header_timeout, p->srv->cfg.proxy_header_timeout_ms, 0);
}

void proxy_handle(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct upstream_refusal ref;
	struct upstream_error err;
	struct upstream_req rq;
	struct tunnel_entry *e;
	struct proxy_head *ph = NULL;
	struct proxy *p = NULL;
	char name[64];

	if (http_request_param(req, 0, name, sizeof(name)) != 0 || !handler_valid_name(name)) {
		http_respond_error(req, 404, "cluster not found");
		return;
	}
	e = tunnels_get(srv->tunnels, name);
	if (e == NULL) {
		proxy_no_tunnel(req, name);
		return;
	}
	proxy_req_init(&rq, req);
	memset(&ref, 0, sizeof(ref));
	if (e->ops == NULL || e->ops->admit(e, &rq, &ref) != 0) {
		if (e->ops == NULL)
			ref.status = 503;
		proxy_refuse(req, &ref);
		return;
	}
	p = proxy_new(srv, req, name);
	ph = calloc(1, sizeof(*ph));
	if (ph)
		buf_init(&ph->cookies, HTTP_HDR_MAX_COOKIE);
	if (p == NULL || ph == NULL) {
		http_respond_error(req, 500, "out of memory");
		goto out_free;
	}
	proxy_who(p, principal_of(req));
	p->protocol = e->ops->name;
	p->websocket = rq.websocket;
	if (p->websocket && proxy_check_websocket(p, req) != 0)
		goto out_free;
	if (proxy_build_head(p, req, ph, &rq) < 0) {
		http_respond_error(req, 431, "request path or headers too large for the tunnel");
		goto out_free;
	}
	if (proxy_refuse_path(p, req)) {
		p = NULL; /* freed, req answered */
		goto out_free;
	}
	proxy_attach(p, req);
	p->up = e->ops->start(e, &rq, &proxy_upstream_cbs, p, &err);
	proxy_head_free(ph);
	if (p->up == NULL) {
		proxy_fail_upstream(p, &err);
		proxy_maybe_free(p);
	}
	return;
out_free:
	proxy_head_free(ph);
	free(p);
}
