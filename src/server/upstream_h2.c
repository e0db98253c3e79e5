/*
 * upstream_h2.c - a stream of a v2 tunnel (HTTP/2 over the WebSocket,
 * tunnel_h2.c) as an upstream (upstream.h).
 *
 * One struct upstream_h2 per proxied request, around one tunnel_stream:
 *   request body:  write -> tunnel_h2_stream_write (0: the stream's output is
 *                  above its high-water mark; on_drain follows)
 *   response body: on_data as DATA arrives; the stream window is credited
 *                  only by consume, so a slow user stalls only this stream.
 * WebSocket requests become RFC 8441 extended CONNECT streams; the agent's
 * 200 is reported as on_head(101), and pipe hands the stream to stream_pipe.
 *
 * Lifetime: the wrapper lives until the stream's on_close. reset, close and
 * pipe detach it from the proxy at once (no callback follows); a detached
 * wrapper is freed when its stream closes. on_error is the last callback of
 * an attached wrapper, which is freed right after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "net/http_hdr.h"
#include "net/tunnel_h2.h"
#include "server/tunnels.h"
#include "server/upstream.h"

#define UPSTREAM_H2_MAX_PATH 8192

struct upstream_h2 {
	struct upstream up; /* first: the proxy holds &up */
	struct tunnel_h2_stream *s; /* NULL once handed to a pipe */
	int detached;		 /* the proxy let go: ignore the stream's events */
	int websocket;
	int head_seen; /* on_head went to the proxy */
};

static struct upstream_h2 *uh2_of(struct tunnel_h2_stream *s)
{
	return tunnel_h2_stream_data(s);
}

/* Tells the proxy the exchange failed, then lets go of the stream. */
static void uh2_fail(struct upstream_h2 *u, enum upstream_reason reason, const char *msg,
		     uint32_t code)
{
	u->detached = 1;
	upstream_error_set(&u->up.err, reason, "%s", msg);
	u->up.cbs->on_error(&u->up);
	tunnel_h2_stream_reset(u->s, code); /* on_close follows and frees u */
}

static void uh2_on_response(struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct upstream_h2 *u = uh2_of(s);
	struct http_header out[TUNNEL_H2_MAX_HEADERS];
	int64_t clen = -1;
	long long v;
	size_t i, n = 0;
	int status;

	if (u->detached)
		return;
	if (slice_to_int64(tunnel_h2_header(h, LIT(":status")), 200, 599, &v) != 0) {
		uh2_fail(u, UPSTREAM_INVALID, "the cluster's agent sent an invalid response",
			 NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	status = (int)v;
	for (i = 0; i < h->n; i++) {
		if (h->h[i].name.len && h->h[i].name.base[0] == ':')
			continue;
		if (slice_eq(h->h[i].name, LIT("content-length"))) {
			if (slice_to_int64(h->h[i].value, 0, INT64_MAX, &v) == 0)
				clen = v;
			continue;
		}
		out[n++] = h->h[i];
	}
	/* An extended CONNECT the agent accepted: the WebSocket is up. */
	if (u->websocket && status == 200)
		status = 101;
	u->head_seen = 1;
	u->up.cbs->on_head(&u->up, status, out, n, clen);
}

static void uh2_on_data(struct tunnel_h2_stream *s, const uint8_t *data, size_t len)
{
	struct upstream_h2 *u = uh2_of(s);

	if (u->detached) {
		tunnel_h2_stream_consume(s, len);
		return;
	}
	if (!u->head_seen) {
		/* Body bytes before a response head (say, after a 1xx the tunnel
		 * dropped): never written raw to the user. */
		tunnel_h2_stream_consume(s, len);
		uh2_fail(u, UPSTREAM_INVALID, "the cluster's agent sent a body without a response",
			 NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	u->up.cbs->on_data(&u->up, data, len);
}

static void uh2_on_end(struct tunnel_h2_stream *s)
{
	struct upstream_h2 *u = uh2_of(s);

	/* A stream that ended without headers is reported by on_close. */
	if (!u->detached && u->head_seen)
		u->up.cbs->on_end(&u->up);
}

static void uh2_on_drain(struct tunnel_h2_stream *s)
{
	struct upstream_h2 *u = uh2_of(s);

	if (!u->detached)
		u->up.cbs->on_drain(&u->up);
}

static void uh2_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct upstream_h2 *u = uh2_of(s);

	u->s = NULL;
	if (!u->detached) {
		if (code == NGHTTP2_REFUSED_STREAM)
			upstream_error_set(&u->up.err, UPSTREAM_BUSY,
					   "the cluster's agent refused the request (too busy)");
		else if (code == NGHTTP2_CANCEL && !u->head_seen)
			upstream_error_set(&u->up.err, UPSTREAM_CLOSED,
					   "the tunnel to the cluster closed before a response");
		else
			upstream_error_set(&u->up.err, UPSTREAM_INCOMPLETE,
					   "the cluster's agent did not complete the response");
		u->up.cbs->on_error(&u->up);
	}
	free(u);
}

static const struct tunnel_h2_stream_callbacks uh2_stream_cbs = {
	.on_response = uh2_on_response,
	.on_data = uh2_on_data,
	.on_end = uh2_on_end,
	.on_drain = uh2_on_drain,
	.on_close = uh2_on_close,
};

/* ---- the head ---- */

struct uh2_head {
	struct http_header h[TUNNEL_H2_MAX_HEADERS];
	size_t n;
	char clen[24];
};

static int uh2_add(struct uh2_head *hd, struct slice name, struct slice value)
{
	return http_hdr_append(hd->h, &hd->n, TUNNEL_H2_MAX_HEADERS, name, value);
}

/* Pseudo-headers first, then the proxy's headers and the body's length. */
static int uh2_build_head(const struct upstream_req *rq, struct uh2_head *hd)
{
	size_t i;
	int rc = 0;

	if (rq->path.len > UPSTREAM_H2_MAX_PATH)
		return -E2BIG;
	if (rq->websocket) {
		rc |= uh2_add(hd, LIT(":method"), LIT("CONNECT"));
		rc |= uh2_add(hd, LIT(":protocol"), LIT("websocket"));
	} else {
		rc |= uh2_add(hd, LIT(":method"), rq->method);
	}
	rc |= uh2_add(hd, LIT(":scheme"), LIT("https"));
	rc |= uh2_add(hd, LIT(":authority"),
		      rq->authority.base && rq->authority.len ? rq->authority : LIT("lxd"));
	rc |= uh2_add(hd, LIT(":path"), rq->path);
	for (i = 0; i < rq->n; i++)
		rc |= uh2_add(hd, rq->h[i].name, rq->h[i].value);
	if (rq->content_length >= 0 && !rq->websocket) {
		snprintf(hd->clen, sizeof(hd->clen), "%lld", (long long)rq->content_length);
		rc |= uh2_add(hd, LIT("content-length"), slice_cstr(hd->clen));
	}
	return rc ? -E2BIG : 0;
}

/* ---- the ops ---- */

static size_t uh2_active(const struct tunnel_entry *e)
{
	return e->t ? tunnel_h2_active_streams(e->t) : 0;
}

static int uh2_admit(struct tunnel_entry *e, const struct upstream_req *rq,
		     struct upstream_refusal *ref)
{
	if (e->t == NULL) {
		ref->status = 501;
		snprintf(ref->msg, sizeof(ref->msg),
			 "this cluster's tunnel protocol cannot carry this request");
		return -1;
	}
	if (rq->websocket && !tunnel_h2_connect_protocol_enabled(e->t)) {
		ref->status = 501;
		snprintf(ref->msg, sizeof(ref->msg), "the cluster's agent cannot carry WebSockets");
		return -1;
	}
	return 0;
}

static struct upstream *uh2_start(struct tunnel_entry *e, const struct upstream_req *rq,
				  const struct upstream_callbacks *cbs, void *arg,
				  struct upstream_error *err)
{
	struct upstream_h2 *u = calloc(1, sizeof(*u));
	struct uh2_head *hd = calloc(1, sizeof(*hd));

	if (u == NULL || hd == NULL) {
		upstream_error_set(err, UPSTREAM_INTERNAL, "out of memory");
		goto fail;
	}
	if (uh2_build_head(rq, hd) < 0) {
		upstream_error_set(err, UPSTREAM_HEAD_TOO_LARGE,
				   "request path or headers too large for the tunnel");
		goto fail;
	}
	u->up.ops = &upstream_h2_ops;
	u->up.cbs = cbs;
	u->up.arg = arg;
	u->websocket = rq->websocket;
	u->s = tunnel_h2_request(e->t, hd->h, hd->n, rq->has_body, &uh2_stream_cbs, u);
	if (u->s == NULL) {
		upstream_error_set(err, UPSTREAM_BUSY,
				   "the tunnel to the cluster cannot take more requests");
		goto fail;
	}
	free(hd);
	return &u->up;
fail:
	free(hd);
	free(u);
	return NULL;
}

static int uh2_write(struct upstream *up, const void *data, size_t len)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;
	int rc = tunnel_h2_stream_write(u->s, data, len);

	if (rc < 0 && !u->head_seen)
		upstream_error_set(&up->err, UPSTREAM_CLOSED,
				   "the tunnel to the cluster closed before a response");
	else if (rc < 0)
		upstream_error_set(&up->err, UPSTREAM_INCOMPLETE,
				   "the cluster's agent did not complete the response");
	return rc;
}

static int uh2_end(struct upstream *up)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;

	/* An upgrade's request has no body, but its stream carries the
	 * WebSocket afterwards: it must stay open for writing. */
	if (u->websocket)
		return 0;
	tunnel_h2_stream_end(u->s);
	return 0;
}

static void uh2_consume(struct upstream *up, size_t n)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;

	if (u->s)
		tunnel_h2_stream_consume(u->s, n);
}

static void uh2_reset(struct upstream *up)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;

	u->detached = 1;
	tunnel_h2_stream_reset(u->s, NGHTTP2_CANCEL); /* on_close frees u */
}

/*
 * The answer is complete. A request body still on its way is not wanted
 * (and may be blocked by flow control forever): cancel the stream rather
 * than end it behind that body.
 */
static void uh2_close(struct upstream *up)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;

	u->detached = 1;
	if (tunnel_h2_stream_sent_all(u->s))
		tunnel_h2_stream_end(u->s);
	else
		tunnel_h2_stream_reset(u->s, NGHTTP2_CANCEL);
}

static struct stream_pipe *uh2_pipe(struct upstream *up, struct conn *c, const char *extra,
				    size_t extra_len, stream_pipe_done_cb done, void *arg)
{
	struct upstream_h2 *u = (struct upstream_h2 *)up;
	struct tunnel_h2_stream *s = u->s;

	/* From here the pipe owns the stream (and sets its callbacks): u goes. */
	u->s = NULL;
	free(u);
	return stream_pipe_start(c, s, extra, extra_len, done, arg);
}

const struct upstream_ops upstream_h2_ops = {
	.name = "v2",
	.active = uh2_active,
	.admit = uh2_admit,
	.start = uh2_start,
	.write = uh2_write,
	.end = uh2_end,
	.consume = uh2_consume,
	.reset = uh2_reset,
	.close = uh2_close,
	.pipe = uh2_pipe,
};
