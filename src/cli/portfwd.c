/*
 * portfwd.c - the forwarding engine of `lxcm proxy` (portfwd.h).
 *
 * Lifetime of an exchange (struct portfwd_x): it lives while any of its
 * three handles does: the local request (x->req, until we finish it), the
 * outbound request (x->cl, until on_done, http_client_cancel or the
 * upgrade hand-over) and, after an upgrade, the byte pipe (x->pipe, until
 * both conns closed). Whoever clears the last one frees the exchange
 * (portfwd_x_maybe_free), writing its log line.
 *
 * No callback of conn, http_server or http_client runs from inside the
 * calls made here (they defer to the loop), so the code below never sees
 * an exchange change under its feet.
 */
#include "cli/portfwd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/fwdhead.h"
#include "cli/util.h"
#include "common/buf.h"
#include "net/stream_pipe.h"

enum portfwd_body {
	PORTFWD_BODY_NONE,	 /* nothing (more) to send: none, all sent, or the manager failed */
	PORTFWD_BODY_PRIMING,	 /* holding the first bytes back (PORTFWD_PRIME_BYTES) */
	PORTFWD_BODY_WAIT_DRAIN, /* paused until the outbound connection drains */
	PORTFWD_BODY_FLOWING,
};

struct portfwd_x {
	struct portfwd *pf;
	struct http_request *req; /* NULL once finished */
	struct http_client *cl;	  /* NULL once done, cancelled or upgraded */
	struct stream_pipe *pipe; /* after an upgrade, until both conns are closed */
	struct buf prime;	  /* request body held back, PORTFWD_BODY_PRIMING only */
	enum portfwd_body body;
	int websocket;
	int req_paused;	 /* we paused the local request body */
	int resp_paused; /* we paused the manager's response body */
	int head_sent;
	int status;
	uint64_t sent, received; /* body bytes: local -> manager, manager -> local */
	uint64_t start_ms;
	char what[PORTFWD_LOG_TARGET + 40]; /* "METHOD target", sanitized */
	char note[200];			    /* why it ended badly, for the log */
	struct portfwd_x *prev, *next;
};

struct portfwd {
	uv_loop_t *loop;
	struct portfwd_config cfg;
	struct http_server *srv;
	struct portfwd_x *xs; /* every live exchange */
	int port;
	int stopping;
	int pin_warned;
};

static void portfwd_handle(struct http_request *req);

static const struct http_route portfwd_routes[] = {
    {NULL, "/{*}", portfwd_handle, HTTP_ROUTE_STREAM_BODY | HTTP_ROUTE_UPGRADE, 0},
};

/* ---- exchange lifetime and log ---- */

__attribute__((format(printf, 2, 3))) static void portfwd_x_note(struct portfwd_x *x,
								 const char *fmt, ...)
{
	va_list ap;
	int n;

	if (x->note[0] != '\0')
		return; /* the first reason is the real one */
	va_start(ap, fmt);
	n = vsnprintf(x->note, sizeof(x->note), fmt, ap);
	va_end(ap);
	if (n < 0)
		x->note[0] = '\0';
}

static void portfwd_x_log(const struct portfwd_x *x)
{
	char recv[16], sent[16], status[8];
	unsigned long long ms = (unsigned long long)(uv_now(x->pf->loop) - x->start_ms);
	int n;

	if (x->pf->cfg.quiet)
		return;
	util_human_bytes(x->received, recv, sizeof(recv));
	util_human_bytes(x->sent, sent, sizeof(sent));
	n = snprintf(status, sizeof(status), "%d", x->status);
	if (x->status <= 0 || n < 0 || (size_t)n >= sizeof(status))
		memcpy(status, "-", 2);
	fprintf(stderr, "%s %s %s%s%s%s %llums%s%s%s\n", x->what, status, recv,
		x->sent ? " (sent " : "", x->sent ? sent : "", x->sent ? ")" : "", ms,
		x->note[0] ? " (" : "", x->note, x->note[0] ? ")" : "");
}

static void portfwd_x_maybe_free(struct portfwd_x *x)
{
	struct portfwd *pf = x->pf;

	if (x->req != NULL || x->cl != NULL || x->pipe != NULL)
		return;
	portfwd_x_log(x);
	if (x->prev)
		x->prev->next = x->next;
	else
		pf->xs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	buf_free(&x->prime);
	free(x);
}

static struct portfwd_x *portfwd_x_new(struct portfwd *pf, struct http_request *req)
{
	struct portfwd_x *x = calloc(1, sizeof(*x));
	char target[PORTFWD_LOG_TARGET + 1], safe[PORTFWD_LOG_TARGET + 1];
	size_t tlen = req->target.len < PORTFWD_LOG_TARGET ? req->target.len : PORTFWD_LOG_TARGET;
	int n;

	if (x == NULL)
		return NULL;
	x->pf = pf;
	x->req = req;
	x->start_ms = uv_now(pf->loop);
	buf_init(&x->prime, PORTFWD_PRIME_BYTES + 64 * 1024);
	memcpy(target, req->target.base, tlen);
	target[tlen] = '\0';
	util_sanitize(target, safe, sizeof(safe));
	n = snprintf(x->what, sizeof(x->what), "%.*s %s%s",
		     (int)(req->method.len > 24 ? 24 : req->method.len), req->method.base, safe,
		     tlen < req->target.len ? "..." : "");
	if (n < 0 || (size_t)n >= sizeof(x->what))
		memcpy(x->what, "?", 2);
	x->next = pf->xs;
	if (pf->xs)
		pf->xs->prev = x;
	pf->xs = x;
	return x;
}

/*
 * Answers the local request with an LXD-style error envelope (it must not
 * have a response yet) and drops the outbound request, if any.
 */
__attribute__((format(printf, 3, 4))) static void portfwd_x_fail(struct portfwd_x *x, int status,
								 const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(x->note, sizeof(x->note), fmt, ap);
	va_end(ap);
	if (n < 0)
		x->note[0] = '\0';
	if (x->cl) {
		http_client_cancel(x->cl);
		x->cl = NULL;
	}
	x->status = status;
	if (x->req) {
		http_respond_error(x->req, status, "%s", x->note);
		x->req = NULL;
	}
	portfwd_x_maybe_free(x);
}

/* Gives up on both sides at once: the client sees a cut connection. */
static void portfwd_x_abort(struct portfwd_x *x, const char *why)
{
	portfwd_x_note(x, "%s", why);
	if (x->cl) {
		http_client_cancel(x->cl);
		x->cl = NULL;
	}
	if (x->req) {
		http_response_abort(x->req);
		x->req = NULL;
	}
	portfwd_x_maybe_free(x);
}

/* The outbound request failed before any response: 502, or 504 on a timeout. */
static void portfwd_x_fail_conn(struct portfwd_x *x, int err)
{
	struct portfwd *pf = x->pf;
	char msg[512];

	client_conn_error_text(pf->cfg.server_url, err, msg, sizeof(msg));
	if (err == CONN_EPIN && !pf->pin_warned) {
		pf->pin_warned = 1;
		fprintf(stderr,
			"Error: the certificate of %s has CHANGED since this proxy started.\n"
			"Every request now fails with 502. Someone may be intercepting the "
			"connection;\nif the change is expected, check the new fingerprint out "
			"of band and restart.\n",
			pf->cfg.server_url);
	}
	portfwd_x_fail(x, err == HTTP_CLIENT_ETIMEDOUT ? 504 : 502, "%s", msg);
}

/* ---- request body: local -> manager ---- */

static void portfwd_x_pause_req(struct portfwd_x *x)
{
	if (!x->req_paused && x->req) {
		x->req_paused = 1;
		http_request_pause(x->req);
	}
}

static void portfwd_x_body_write(struct portfwd_x *x, const char *data, size_t len)
{
	int rc = http_client_write(x->cl, data, len);

	if (rc < 0) {
		/* The outbound side failed; its on_done says how. */
		x->body = PORTFWD_BODY_NONE;
		return;
	}
	if (rc == 0 && x->body == PORTFWD_BODY_FLOWING)
		x->body = PORTFWD_BODY_WAIT_DRAIN;
	if (x->body == PORTFWD_BODY_WAIT_DRAIN)
		portfwd_x_pause_req(x);
}

/*
 * The first write: the held-back bytes (and more, if they did not fit),
 * then a pause until the outbound connection drains, which proves it open
 * (see PORTFWD_PRIME_BYTES).
 */
static void portfwd_x_body_prime(struct portfwd_x *x, const char *more, size_t more_len)
{
	x->body = PORTFWD_BODY_WAIT_DRAIN;
	if (x->prime.len)
		portfwd_x_body_write(x, x->prime.data, x->prime.len);
	if (more_len && x->body != PORTFWD_BODY_NONE)
		portfwd_x_body_write(x, more, more_len);
	buf_free(&x->prime);
}

static void portfwd_on_req_body(struct http_request *req, const char *data, size_t len)
{
	struct portfwd_x *x = req->data;

	x->sent += len;
	if (x->cl == NULL || x->body == PORTFWD_BODY_NONE)
		return;
	if (x->body != PORTFWD_BODY_PRIMING) {
		portfwd_x_body_write(x, data, len);
		return;
	}
	if (buf_append(&x->prime, data, len) == 0) {
		if (x->prime.len >= PORTFWD_PRIME_BYTES)
			portfwd_x_body_prime(x, NULL, 0);
		return;
	}
	portfwd_x_body_prime(x, data, len);
}

static void portfwd_on_req_body_end(struct http_request *req)
{
	struct portfwd_x *x = req->data;

	if (x->cl == NULL || x->body == PORTFWD_BODY_NONE)
		return;
	if (x->body == PORTFWD_BODY_PRIMING && x->prime.len)
		(void)http_client_write(x->cl, x->prime.data, x->prime.len);
	buf_free(&x->prime);
	x->body = PORTFWD_BODY_NONE;
	(void)http_client_end(x->cl); /* a failure shows in on_done */
}

static void portfwd_on_cl_drain(struct http_client *cl)
{
	struct portfwd_x *x = http_client_data(cl);

	if (x->body == PORTFWD_BODY_WAIT_DRAIN)
		x->body = PORTFWD_BODY_FLOWING;
	if (x->req_paused && x->req) {
		x->req_paused = 0;
		http_request_resume(x->req);
	}
}

/* The local client went away: the request is still ours to finish. */
static void portfwd_on_req_abort(struct http_request *req)
{
	struct portfwd_x *x = req->data;

	portfwd_x_abort(x, "client went away");
}

/* ---- response: manager -> local ---- */

static void portfwd_on_req_drain(struct http_request *req)
{
	struct portfwd_x *x = req->data;

	if (x->resp_paused && x->cl) {
		x->resp_paused = 0;
		http_client_resume(x->cl);
	}
}

/* Location headers that point into the tunnel prefix become cluster paths. */
static void portfwd_x_rewrite_location(struct portfwd_x *x, struct http_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slice_eq_nocase(h[i].name, LIT("Location")))
			h[i].value =
			    fwdhead_location(h[i].value, x->pf->cfg.server_key, x->pf->cfg.prefix);
}

static void portfwd_on_cl_head(struct http_client *cl, const struct http_response_head *head)
{
	struct portfwd_x *x = http_client_data(cl);
	struct http_header out[HTTP_MAX_HEADERS + 1];
	int n = fwdhead_response(head->headers, head->nheaders, head->status, out,
				 sizeof(out) / sizeof(out[0]));

	if (n < 0) {
		portfwd_x_fail(x, 502, "the response of %s has too many headers",
			       x->pf->cfg.server_url);
		return;
	}
	portfwd_x_rewrite_location(x, out, (size_t)n);
	x->status = head->status;
	x->head_sent = 1;
	if (http_response_start(x->req, head->status, out, (size_t)n, head->content_length) < 0)
		portfwd_x_abort(x, "client went away");
}

static void portfwd_on_cl_body(struct http_client *cl, const char *data, size_t len)
{
	struct portfwd_x *x = http_client_data(cl);
	int rc = http_response_write(x->req, data, len);

	if (rc < 0) {
		portfwd_x_abort(x, "client went away");
		return;
	}
	x->received += len;
	if (rc == 0 && !x->resp_paused) {
		x->resp_paused = 1;
		http_client_pause(cl);
	}
}

static void portfwd_on_cl_done(struct http_client *cl, int err)
{
	struct portfwd_x *x = http_client_data(cl);
	char msg[512];

	x->cl = NULL; /* the client frees itself after this returns */
	if (err != 0 && !x->head_sent) {
		portfwd_x_fail_conn(x, err);
		return;
	}
	if (err != 0) {
		client_conn_error_text(x->pf->cfg.server_url, err, msg, sizeof(msg));
		portfwd_x_abort(x, msg);
		return;
	}
	http_response_end(x->req);
	x->req = NULL;
	portfwd_x_maybe_free(x);
}

static const struct http_client_callbacks portfwd_http_cbs = {
    .on_head = portfwd_on_cl_head,
    .on_body = portfwd_on_cl_body,
    .on_done = portfwd_on_cl_done,
    .on_drain = portfwd_on_cl_drain,
};

/* ---- WebSocket upgrades ---- */

static void portfwd_on_pipe_closed(void *data, uint64_t up, uint64_t down)
{
	struct portfwd_x *x = data;

	x->sent += up;
	x->received += down;
	x->pipe = NULL;
	portfwd_x_maybe_free(x);
}

/*
 * The manager switched protocols: send its 101 on, take the local
 * connection from the HTTP server and pipe the two (local is side a).
 */
static void portfwd_on_cl_upgrade(struct http_client *cl, const struct http_response_head *head,
				  struct conn *c, const char *extra, size_t extra_len)
{
	struct portfwd_x *x = http_client_data(cl);
	struct http_header out[HTTP_MAX_HEADERS + 1];
	struct conn *local;
	char *lextra = NULL;
	size_t llen = 0;
	int n;

	x->cl = NULL; /* the client frees itself after this returns */
	n = fwdhead_response(head->headers, head->nheaders, 101, out, sizeof(out) / sizeof(out[0]));
	x->status = 101;
	if (n < 0 || http_response_start(x->req, 101, out, (size_t)n, -1) < 0) {
		conn_close(c);
		portfwd_x_abort(x, n < 0 ? "too many headers in the 101" : "client went away");
		return;
	}
	x->head_sent = 1;
	local = http_request_take_conn(x->req, &lextra, &llen);
	x->req = NULL;
	if (local == NULL) {
		conn_close(c);
		free(lextra);
		portfwd_x_note(x, "client went away");
		portfwd_x_maybe_free(x);
		return;
	}
	x->pipe = stream_pipe_start_conns(local, lextra, llen, c, extra, extra_len,
					  portfwd_on_pipe_closed, x);
	free(lextra);
	if (x->pipe == NULL) {
		portfwd_x_note(x, "out of memory");
		portfwd_x_maybe_free(x);
	}
}

static const struct http_client_callbacks portfwd_ws_cbs = {
    .on_head = portfwd_on_cl_head,
    .on_body = portfwd_on_cl_body,
    .on_done = portfwd_on_cl_done,
    .on_drain = portfwd_on_cl_drain,
    .on_upgrade = portfwd_on_cl_upgrade,
};

/* ---- starting an exchange ---- */

/*
 * Refuses requests a web page in a local browser could have made (see
 * fwdhead_host_ok and fwdhead_origin_ok): 0, or -1 after answering. A
 * browser cannot reach a unix socket, and `lxc` sends "Host: unix.socket"
 * there: on one, Host and Origin are not looked at (its 0600 mode is the
 * protection).
 */
static int portfwd_x_check_browser(struct portfwd_x *x)
{
	struct portfwd *pf = x->pf;
	struct slice host = http_request_header(x->req, LIT("Host"));
	struct slice origin = http_request_header(x->req, LIT("Origin"));

	if (pf->cfg.listen_unix != NULL)
		return 0;
	if (host.base && !fwdhead_host_ok(host, pf->cfg.listen_host, pf->port)) {
		portfwd_x_fail(x, 403, "this proxy only answers requests for its own address");
		return -1;
	}
	if (origin.base && !fwdhead_origin_ok(origin, pf->cfg.listen_host, pf->port)) {
		portfwd_x_fail(x, 403, "cross-origin requests are refused");
		return -1;
	}
	return 0;
}

/*
 * Refuses what portfwd_x_check_browser refuses and paths that could leave
 * the tunnel prefix. 0 and the target built, or -1 after answering.
 */
static int portfwd_x_check(struct portfwd_x *x, char *target, size_t len)
{
	struct portfwd *pf = x->pf;
	struct http_request *req = x->req;
	int rc;

	if (portfwd_x_check_browser(x) != 0)
		return -1;
	rc = fwdhead_target(pf->cfg.prefix, req->path, req->query, req->query.base != NULL, target,
			    len);
	if (rc == -E2BIG)
		portfwd_x_fail(x, 414, "request target too long");
	else if (rc < 0)
		portfwd_x_fail(x, 400, "invalid request path");
	return rc < 0 ? -1 : 0;
}

/* The outbound request's headers; -1 when there are too many. */
static int portfwd_x_headers(struct portfwd_x *x, struct http_header *h, size_t max)
{
	struct http_request *req = x->req;
	int n = fwdhead_request(req->headers, req->nheaders, h, max - 3);

	if (n < 0)
		return -1;
	if (x->pf->cfg.auth)
		h[n++] = (struct http_header){LIT("Authorization"), slice_cstr(x->pf->cfg.auth)};
	if (x->websocket) {
		h[n++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
		h[n++] =
		    (struct http_header){LIT("Upgrade"), http_request_header(req, LIT("Upgrade"))};
	}
	return n;
}

static void portfwd_x_start(struct portfwd_x *x, const char *target)
{
	struct portfwd *pf = x->pf;
	struct http_request *req = x->req;
	struct http_header hdrs[HTTP_MAX_HEADERS + 3];
	char method[32];
	int64_t body_len;
	int n;

	/* Other upgrades (h2c) go on as plain requests. */
	x->websocket =
	    req->upgrade && fwdhead_is_websocket(http_request_header(req, LIT("Upgrade")));
	n = portfwd_x_headers(x, hdrs, sizeof(hdrs) / sizeof(hdrs[0]));
	if (n < 0 || req->method.len >= sizeof(method)) {
		portfwd_x_fail(x, 431, "too many request headers");
		return;
	}
	memcpy(method, req->method.base, req->method.len);
	method[req->method.len] = '\0';
	if (x->websocket)
		body_len = 0;
	else if (req->chunked)
		body_len = -1;
	else
		body_len = req->content_length > 0 ? req->content_length : 0;
	x->body = body_len != 0 ? PORTFWD_BODY_PRIMING : PORTFWD_BODY_NONE;
	req->data = x;
	req->on_body = portfwd_on_req_body;
	req->on_body_end = portfwd_on_req_body_end;
	req->on_drain = portfwd_on_req_drain;
	req->on_abort = portfwd_on_req_abort;
	x->cl =
	    http_client_request(pf->loop, &pf->cfg.upstream, method, target, hdrs, (size_t)n,
				body_len, x->websocket ? &portfwd_ws_cbs : &portfwd_http_cbs, x);
	if (x->cl == NULL)
		portfwd_x_fail(x, 502, "cannot start a request to %s", pf->cfg.server_url);
}

static void portfwd_handle(struct http_request *req)
{
	struct portfwd *pf = req->server_data;
	struct portfwd_x *x;
	char target[FWDHEAD_MAX_TARGET];

	/*
	 * After an upgrade request the local parser is in upgrade state: answered
	 * with anything but a 101, the connection is not reused.
	 */
	if (req->upgrade)
		req->keep_alive = 0;
	if (pf->stopping) {
		req->keep_alive = 0;
		http_respond_error(req, 503, "the proxy is stopping");
		return;
	}
	x = portfwd_x_new(pf, req);
	if (x == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	if (portfwd_x_check(x, target, sizeof(target)) == 0)
		portfwd_x_start(x, target);
}

/* ---- the listener ---- */

int portfwd_start(uv_loop_t *loop, const struct portfwd_config *cfg, struct portfwd **out)
{
	struct http_server_config scfg;
	struct portfwd *pf = calloc(1, sizeof(*pf));
	int rc;

	if (pf == NULL)
		return -ENOMEM;
	pf->loop = loop;
	pf->cfg = *cfg;
	pf->cfg.upstream.response_timeout_ms = PORTFWD_RESPONSE_TIMEOUT_MS;
	pf->cfg.upstream.idle_timeout_ms = PORTFWD_IDLE_TIMEOUT_MS;
	memset(&scfg, 0, sizeof(scfg));
	scfg.host = cfg->listen_host;
	scfg.port = cfg->listen_port;
	scfg.unix_path = cfg->listen_unix;
	scfg.routes = portfwd_routes;
	scfg.nroutes = sizeof(portfwd_routes) / sizeof(portfwd_routes[0]);
	scfg.data = pf;
	scfg.name = "proxy";
	rc = http_server_start(loop, &scfg, &pf->srv);
	if (rc < 0) {
		free(pf);
		return rc;
	}
	pf->port = http_server_port(pf->srv);
	*out = pf;
	return 0;
}

int portfwd_port(const struct portfwd *pf)
{
	return pf->port;
}

void portfwd_stop(struct portfwd *pf)
{
	struct portfwd_x *x, *next;

	if (pf == NULL || pf->stopping)
		return;
	pf->stopping = 1;
	for (x = pf->xs; x != NULL; x = next) {
		next = x->next;
		if (x->pipe)
			stream_pipe_close(x->pipe); /* x goes in portfwd_on_pipe_closed */
		else
			portfwd_x_abort(x, "proxy stopped");
	}
	http_server_stop(pf->srv);
	pf->srv = NULL;
}

void portfwd_free(struct portfwd *pf)
{
	free(pf);
}
