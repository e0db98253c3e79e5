/*
 * forward.c - serves tunnel streams by forwarding them to the local LXD.
 *
 * The agent forwards only to its configured upstream, never to an address a
 * request names, and only paths under the allow-list (/1.0 and /ui by
 * default); anything else gets 403 from the agent itself. Each stream is one
 * upstream HTTP/1.1 request; bodies stream both ways with backpressure:
 *   stream DATA -> http_client_write; 0 -> the bytes are credited to the
 *                  stream window only on the client's on_drain
 *   upstream body -> tunnel_h2_stream_write; 0 -> http_client_pause until the
 *                  stream's on_drain
 * Extended CONNECT streams (RFC 8441, :protocol websocket) become an
 * HTTP/1.1 WebSocket upgrade against LXD; after its 101 we answer 200 and
 * pipe raw bytes between the stream and LXD's socket.
 *
 * The upstream request starts at the stream's first DATA or its end, so we
 * know whether there is a body (HTTP/2 says so only with END_STREAM).
 *
 * Lifetime: struct fwd lives until its stream is closed and the upstream
 * side (client or raw conn) is done.
 */
#include "agent/forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "common/envelope.h"
#include "common/log.h"
#include "net/http_hdr.h"
#include "net/stream_pipe.h"
#include "net/ws.h"

#define FWD_MAX_PATH 8192
#define FWD_RESPONSE_TIMEOUT_MS (3600 * 1000) /* the manager's timeout is the real one */
#define FWD_IDLE_TIMEOUT_MS (300 * 1000)	     /* upstream silent mid-body */
#define FWD_REQUEST_ID_MAX 64 /* the manager's are 32 hex digits */

struct fwd {
	struct agent *ag;
	struct tunnel_h2_stream *s; /* NULL once closed */
	struct http_client *cl;	 /* NULL when not started or done */
	int piping;		 /* a stream_pipe carries the upgraded WebSocket */
	char method[16];
	char path[FWD_MAX_PATH];
	char ws_key[25];
	struct buf head; /* copied request headers: name\0value\0 pairs */
	size_t nhdr;
	int64_t content_length; /* -1 unknown */
	int websocket;
	int started;
	int responded;
	int body_ended; /* the stream's request body is complete */
	size_t unconsumed;
	/* For the request's log line: the manager's id (X-Request-Id) and what happened. */
	char request_id[FWD_REQUEST_ID_MAX + 1];
	int status;
	uint64_t bytes_in, bytes_out, start_ms;
};

/*
 * Whether a header stays behind between the stream and LXD (both ways):
 * the agent's mask of http_hdr.h, headers named by a Connection header of
 * the same message, and HTTP/2 pseudo-headers.
 */
static int fwd_skip(const struct http_header *all, size_t n, struct slice name)
{
	return http_hdr_drop(all, n, name, HTTP_HDR_DROP_AGENT) ||
	       (name.len > 0 && name.base[0] == ':');
}

static const char *const fwd_default_allow[] = {"/1.0", "/ui"};

int forward_allow_add(struct agent *ag, const char *prefix)
{
	if (ag->nallow >= AGENT_MAX_ALLOW)
		return -E2BIG;
	/* A prefix is a clean path (http_hdr_path_check) without escapes or query. */
	if (http_hdr_path_check(slice_cstr(prefix), NULL) != 0 || strchr(prefix, '%') ||
	    strchr(prefix, '?'))
		return -EINVAL;
	/* "/" alone would allow everything: say it explicitly with "/". */
	ag->allow[ag->nallow++] = prefix;
	return 0;
}

int forward_path_allowed(struct slice target, const char *const *prefixes, size_t nprefixes)
{
	struct slice path = http_hdr_target_path(target);
	size_t i, plen = path.len;

	/* The path rule of every hop (http_hdr.h): LXD would clean a dot segment
	 * and so resolve a path out of the allowed prefix. */
	if (http_hdr_path_check(path, NULL) != 0)
		return 0;
	if (nprefixes == 0) {
		prefixes = fwd_default_allow;
		nprefixes = sizeof(fwd_default_allow) / sizeof(fwd_default_allow[0]);
	}
	for (i = 0; i < nprefixes; i++) {
		size_t n = strlen(prefixes[i]);

		if (n > 0 && prefixes[i][n - 1] == '/')
			n--; /* "/" or "/x/" match at the boundary before the slash */
		if (plen >= n && memcmp(path.base, prefixes[i], n) == 0 &&
		    (plen == n || path.base[n] == '/'))
			return 1;
	}
	return 0;
}

/*
 * One line per forwarded request, when it is over, with the manager's
 * request id: the same id is on the manager's line and audit row. The
 * path goes without its query, which may carry secrets (LXD's operation
 * websocket secrets), as on the manager's line.
 */
static void fwd_log(const struct fwd *f)
{
	char path[FWD_MAX_PATH];
	struct log_field fl[] = {
	    LOG_FSTR("request_id", f->request_id),
	    LOG_FSTR("method", f->method),
	    LOG_FSTR("path", path),
	    LOG_FINT("status", f->status),
	    LOG_FINT("bytes_in", f->bytes_in),
	    LOG_FINT("bytes_out", f->bytes_out),
	    LOG_FINT("duration_ms", uv_now(f->ag->loop) - f->start_ms),
	};

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(f->path, "?"), f->path);
	log_event(LOG_LEVEL_INFO, "forward", fl, sizeof(fl) / sizeof(fl[0]), "%s %s %d", f->method,
		  path, f->status);
}

static void fwd_maybe_free(struct fwd *f)
{
	if (f->s || f->cl || f->piping)
		return;
	fwd_log(f);
	buf_free(&f->head);
	free(f);
}

/* Answers the stream with an LXD-style error, from the agent itself. */
static void fwd_error(struct fwd *f, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fwd_error(struct fwd *f, int status, const char *fmt, ...)
{
	char msg[512], st[8];
	struct http_header h[2];
	size_t len = 0;
	char *body;
	va_list ap;

	/* An answered request never starts (or restarts) the upstream one:
	 * request DATA or END_STREAM arriving after a refusal is dropped. */
	f->started = 1;
	if (f->s == NULL)
		return;
	if (f->responded) {
		tunnel_h2_stream_reset(f->s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	snprintf(st, sizeof(st), "%d", status);
	h[0] = (struct http_header){LIT(":status"), slice_cstr(st)};
	h[1] = (struct http_header){LIT("content-type"), LIT("application/json")};
	body = envelope_error(status, msg, &len);
	f->responded = 1;
	f->status = status;
	if (tunnel_h2_respond(f->s, h, 2, 1) == 0 && body)
		tunnel_h2_stream_write(f->s, body, len);
	free(body);
	if (f->s)
		tunnel_h2_stream_end(f->s);
}

/* ---- upstream response -> stream ---- */

static void fwd_on_head(struct http_client *cl, const struct http_response_head *h)
{
	struct fwd *f = http_client_data(cl);
	struct http_header out[TUNNEL_H2_MAX_HEADERS];
	char st[8], clen[24];
	size_t i, n = 0;
	int has_body;

	if (f->s == NULL)
		return;
	snprintf(st, sizeof(st), "%d", h->status);
	out[n++] = (struct http_header){LIT(":status"), slice_cstr(st)};
	for (i = 0; i < h->nheaders && n < TUNNEL_H2_MAX_HEADERS - 1; i++)
		if (!fwd_skip(h->headers, h->nheaders, h->headers[i].name))
			out[n++] = h->headers[i];
	if (h->content_length >= 0 && n < TUNNEL_H2_MAX_HEADERS) {
		snprintf(clen, sizeof(clen), "%lld", (long long)h->content_length);
		out[n++] = (struct http_header){LIT("content-length"), slice_cstr(clen)};
	}
	has_body = strcmp(f->method, "HEAD") != 0 && h->status != 204 && h->status != 304 &&
		   h->content_length != 0;
	f->responded = 1;
	f->status = h->status;
	if (tunnel_h2_respond(f->s, out, n, has_body) < 0) {
		http_client_cancel(cl);
		f->cl = NULL;
		tunnel_h2_stream_reset(f->s, NGHTTP2_INTERNAL_ERROR);
	}
}

static void fwd_on_body(struct http_client *cl, const char *data, size_t len)
{
	struct fwd *f = http_client_data(cl);
	int rc;

	if (f->s == NULL)
		return;
	f->bytes_out += len;
	rc = tunnel_h2_stream_write(f->s, data, len);
	if (rc == 0)
		http_client_pause(cl);
}

static void fwd_on_done(struct http_client *cl, int err)
{
	struct fwd *f = http_client_data(cl);

	f->cl = NULL;
	if (err == 0) {
		if (f->s)
			tunnel_h2_stream_end(f->s);
	} else if (f->s) {
		LOG_WARN("upstream %s %s failed: %s", f->method, f->path, strerror(-err));
		fwd_error(f, 502, "the agent cannot reach LXD at %s", f->ag->cfg.up.url);
	}
	fwd_maybe_free(f);
}

static void fwd_on_client_drain(struct http_client *cl)
{
	struct fwd *f = http_client_data(cl);

	if (f->s && f->unconsumed) {
		tunnel_h2_stream_consume(f->s, f->unconsumed);
		f->unconsumed = 0;
	}
}

/* ---- WebSocket pass-through ---- */

static void fwd_pipe_done(void *arg, uint64_t to_stream, uint64_t to_conn)
{
	struct fwd *f = arg;

	f->bytes_out += to_stream;
	f->bytes_in += to_conn;
	f->piping = 0;
	fwd_maybe_free(f);
}

static void fwd_on_upgrade(struct http_client *cl, const struct http_response_head *h,
			   struct conn *c, const char *extra, size_t extra_len)
{
	struct fwd *f = http_client_data(cl);
	struct tunnel_h2_stream *s;
	struct http_header out[2];
	char accept[32];
	size_t i, n = 0;
	struct slice got = SLICE_NULL;

	f->cl = NULL;
	out[n++] = (struct http_header){LIT(":status"), LIT("200")};
	for (i = 0; i < h->nheaders; i++) {
		if (slice_eq_nocase(h->headers[i].name, LIT("Sec-WebSocket-Accept")))
			got = h->headers[i].value;
		else if (slice_eq_nocase(h->headers[i].name, LIT("Sec-WebSocket-Protocol")) && n < 2)
			out[n++] = (struct http_header){LIT("sec-websocket-protocol"),
							h->headers[i].value};
	}
	if (ws_accept_key(f->ws_key, strlen(f->ws_key), accept) != 0 ||
	    !slice_eq(got, slice_cstr(accept)) || f->s == NULL) {
		conn_close(c);
		fwd_error(f, 502, "LXD answered the WebSocket upgrade wrongly");
		fwd_maybe_free(f);
		return;
	}
	f->responded = 1;
	f->status = 101; /* as the manager records an upgrade */
	if (tunnel_h2_respond(f->s, out, n, 1) < 0) {
		conn_close(c);
		tunnel_h2_stream_reset(f->s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	/* From here the pipe owns LXD's socket and the stream. */
	s = f->s;
	f->s = NULL;
	f->piping = 1;
	if (stream_pipe_start(c, s, extra, extra_len, fwd_pipe_done, f) == NULL) {
		f->piping = 0;
		fwd_maybe_free(f);
	}
}

static const struct http_client_callbacks fwd_client_cbs = {
	.on_head = fwd_on_head,
	.on_body = fwd_on_body,
	.on_done = fwd_on_done,
	.on_drain = fwd_on_client_drain,
	.on_upgrade = fwd_on_upgrade,
};

/* ---- starting the upstream request ---- */

static void fwd_start(struct fwd *f, int64_t body_len)
{
	struct http_header h[TUNNEL_H2_MAX_HEADERS + 6];
	struct http_client_opts opts;
	const char *p = f->head.data;
	size_t i, n = 0;

	f->started = 1;
	for (i = 0; i < f->nhdr && n < TUNNEL_H2_MAX_HEADERS; i++) {
		size_t nl = strlen(p), vl = strlen(p + nl + 1);

		h[n].name = slice_make(p, nl);
		h[n].value = slice_make(p + nl + 1, vl);
		n++;
		p += nl + vl + 2;
	}
	if (f->websocket) {
		if (ws_client_key(f->ws_key) != 0) {
			fwd_error(f, 500, "cannot make a WebSocket key");
			return;
		}
		h[n++] = (struct http_header){LIT("Upgrade"), LIT("websocket")};
		h[n++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
		h[n++] = (struct http_header){LIT("Sec-WebSocket-Version"), LIT("13")};
		h[n++] = (struct http_header){LIT("Sec-WebSocket-Key"), slice_cstr(f->ws_key)};
	}
	upstream_opts(&f->ag->cfg.up, f->ag->lxd_tls, &opts);
	/*
	 * The manager decides how long a request may wait for its answer (its
	 * --proxy-header-timeout) and cancels the stream; here only a dead
	 * upstream is cut: long operation waits and slow uploads are fine.
	 */
	opts.response_timeout_ms = FWD_RESPONSE_TIMEOUT_MS;
	opts.idle_timeout_ms = FWD_IDLE_TIMEOUT_MS;
	opts.pool = f->ag->lxd_pool;
	f->cl = http_client_request(f->ag->loop, &opts, f->websocket ? "GET" : f->method, f->path,
				    h, n, body_len, &fwd_client_cbs, f);
	if (f->cl == NULL)
		fwd_error(f, 502, "the agent cannot reach LXD at %s", f->ag->cfg.up.url);
	else if (body_len == 0)
		http_client_end(f->cl);
}

/* ---- stream callbacks ---- */

static void fwd_s_on_data(struct tunnel_h2_stream *s, const uint8_t *data, size_t len)
{
	struct fwd *f = tunnel_h2_stream_data(s);
	int rc;

	f->bytes_in += len;
	if (!f->started)
		fwd_start(f, f->content_length >= 0 ? f->content_length : -1);
	if (f->cl == NULL) {
		tunnel_h2_stream_consume(s, len);
		return;
	}
	rc = http_client_write(f->cl, data, len);
	if (rc == 1)
		tunnel_h2_stream_consume(s, len);
	else if (rc == 0)
		f->unconsumed += len;
	else
		tunnel_h2_stream_consume(s, len);
}

static void fwd_s_on_end(struct tunnel_h2_stream *s)
{
	struct fwd *f = tunnel_h2_stream_data(s);

	f->body_ended = 1;
	if (!f->started) {
		fwd_start(f, 0);
		return;
	}
	if (f->cl)
		http_client_end(f->cl);
}

static void fwd_s_on_drain(struct tunnel_h2_stream *s)
{
	struct fwd *f = tunnel_h2_stream_data(s);

	if (f->cl)
		http_client_resume(f->cl);
}

static void fwd_s_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct fwd *f = tunnel_h2_stream_data(s);

	(void)code;
	f->s = NULL;
	if (f->cl) {
		http_client_cancel(f->cl); /* the manager gave up: abort upstream */
		f->cl = NULL;
	}
	fwd_maybe_free(f);
}

static const struct tunnel_h2_stream_callbacks fwd_stream_cbs = {
	.on_data = fwd_s_on_data,
	.on_end = fwd_s_on_end,
	.on_drain = fwd_s_on_drain,
	.on_close = fwd_s_on_close,
};

/* The manager's id of the request, if it is one a log line can carry. */
static void fwd_request_id(struct fwd *f, const struct tunnel_h2_headers *h)
{
	struct slice id = tunnel_h2_header(h, LIT("x-request-id"));
	size_t i;

	if (id.len == 0 || id.len > FWD_REQUEST_ID_MAX)
		return;
	for (i = 0; i < id.len; i++)
		if (id.base[i] <= 0x20 || id.base[i] >= 0x7f)
			return;
	memcpy(f->request_id, id.base, id.len);
	f->request_id[id.len] = '\0';
}

/* Copies the headers LXD should see into f->head as name\0value\0 pairs. */
static int fwd_copy_headers(struct fwd *f, const struct tunnel_h2_headers *h)
{
	size_t i;
	long long v;

	for (i = 0; i < h->n; i++) {
		struct slice name = h->h[i].name;

		if (slice_eq(name, LIT("content-length"))) {
			if (slice_to_int64(h->h[i].value, 0, INT64_MAX, &v) != 0)
				return -EINVAL;
			f->content_length = v;
			continue;
		}
		if (fwd_skip(h->h, h->n, name))
			continue;
		if (memchr(h->h[i].value.base, '\0', h->h[i].value.len) ||
		    memchr(name.base, '\0', name.len))
			return -EINVAL;
		if (buf_append(&f->head, name.base, name.len) < 0 ||
		    buf_append(&f->head, "", 1) < 0 ||
		    buf_append(&f->head, h->h[i].value.base, h->h[i].value.len) < 0 ||
		    buf_append(&f->head, "", 1) < 0)
			return -E2BIG;
		f->nhdr++;
	}
	return 0;
}

/*
 * The manager names the person behind a request made with an OIDC session
 * (X-Lxcm-User, which it never takes from the user): logged, printable
 * bytes only, so what people do through the tunnel is on this host too.
 */
static void fwd_log_user(struct tunnel_h2_stream *s, const struct fwd *f, struct slice user)
{
	char who[160];
	size_t i, n = user.len < sizeof(who) - 1 ? user.len : sizeof(who) - 1;

	if (user.base == NULL)
		return;
	for (i = 0; i < n; i++)
		who[i] = user.base[i] >= 0x20 && user.base[i] < 0x7f ? user.base[i] : '?';
	who[n] = '\0';
	LOG_INFO("stream %d: %s %s for %s", tunnel_h2_stream_id(s), f->method, f->path, who);
}

void forward_request(struct agent *ag, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct slice method = tunnel_h2_header(h, LIT(":method"));
	struct slice path = tunnel_h2_header(h, LIT(":path"));
	struct slice proto = tunnel_h2_header(h, LIT(":protocol"));
	struct fwd *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		tunnel_h2_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	f->ag = ag;
	f->s = s;
	f->content_length = -1;
	f->start_ms = uv_now(ag->loop);
	fwd_request_id(f, h);
	buf_init(&f->head, TUNNEL_H2_MAX_HEADER_BYTES);
	tunnel_h2_stream_set_callbacks(s, &fwd_stream_cbs, f);
	if (method.len == 0 || method.len >= sizeof(f->method) || path.len == 0 ||
	    path.len >= sizeof(f->path) || memchr(path.base, '\0', path.len)) {
		fwd_error(f, 400, "invalid request");
		return;
	}
	memcpy(f->method, method.base, method.len);
	memcpy(f->path, path.base, path.len);
	LOG_DEBUG("stream %d: %s %s", tunnel_h2_stream_id(s), f->method, f->path);
	fwd_log_user(s, f, tunnel_h2_header(h, LIT("x-lxcm-user")));
	if (slice_eq(method, LIT("CONNECT"))) {
		if (!slice_eq(proto, LIT("websocket"))) {
			fwd_error(f, 501, "only WebSocket CONNECT streams are supported");
			return;
		}
		f->websocket = 1;
	}
	if (!forward_path_allowed(path, ag->allow, ag->nallow)) {
		LOG_INFO("refused %s %s: not under an allowed path", f->method, f->path);
		fwd_error(f, 403, "path not allowed by this agent");
		return;
	}
	if (fwd_copy_headers(f, h) < 0) {
		fwd_error(f, 400, "invalid request headers");
		return;
	}
	if (f->websocket)
		fwd_start(f, 0);
}
