/*
 * upstream_v1.c - a request over a v1 tunnel (MicroCloud's JSON frames) as
 * an upstream (upstream.h).
 *
 * v1 frames carry whole bodies, so every request is a struct upstream_v1
 * that sits on one of two lists of its tunnel (tunnel_v1.h):
 *   buffering  the request body is still arriving (held up to
 *              TUNNEL_V1_MAX_BODY; all bodies of a tunnel up to
 *              TUNNEL_V1_MAX_BUFFERED);
 *   inflight   its frame went out (end); waiting for the response frame
 *              with the same uuid. The proxy's header timeout bounds the wait.
 * The response frame becomes on_head, on_data (the whole body) and on_end.
 * The user's LXD `session` cookie is kept per user in the tunnel's jar
 * (session_cookies.c), never passed on to the user.
 *
 * Ownership: the proxy holds the upstream until on_error, reset or close.
 * Callbacks run only from frames and the tunnel's close (never from an op);
 * a reset or close from inside a callback is noted and the struct freed
 * when the callback returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"
#include "net/http_hdr.h"
#include "net/ws.h"
#include "server/server.h"
#include "server/session_cookies.h"
#include "server/tunnel_v1.h"
#include "server/tunnels.h"
#include "server/upstream.h"

#define V1_ALLOWED_METHODS "GET, POST, PUT, PATCH, DELETE"

struct upstream_v1 {
	struct upstream up; /* first: the proxy holds &up */
	TAILQ_ENTRY(upstream_v1) link;
	struct tunnel_v1_list *list; /* the list of tv it is on, NULL when on none */
	struct tunnel_v1 *tv;
	struct buf body;
	struct session_user user;
	char *method; /* copies: rq lives only during start */
	char *path;
	struct http_header *h;
	size_t n;
	char *hbuf; /* the bytes h points into */
	int in_cb; /* a callback of ours runs: free later */
	int gone;  /* the proxy let go */
	char uuid[TUNNEL_V1_FRAME_UUID_LEN + 1];
};

/* ---- lists ---- */

static void uv1_list_append(struct tunnel_v1_list *l, struct upstream_v1 *r)
{
	r->list = l;
	TAILQ_INSERT_TAIL(&l->q, r, link);
	l->n++;
}

static void uv1_list_remove(struct upstream_v1 *r)
{
	struct tunnel_v1_list *l = r->list;

	if (l == NULL)
		return;
	if (l == &r->tv->buffering)
		r->tv->buffered -= r->body.len;
	TAILQ_REMOVE(&l->q, r, link);
	l->n--;
	r->list = NULL;
}

static void uv1_free(struct upstream_v1 *r)
{
	uv1_list_remove(r);
	buf_free(&r->body);
	session_user_wipe(&r->user);
	free(r->method);
	free(r->path);
	free(r->h);
	free(r->hbuf);
	free(r);
}

/* Off its list, tells the proxy, then frees r (the proxy forgets it in on_error). */
static void uv1_error(struct upstream_v1 *r, enum upstream_reason reason, const char *msg)
{
	uv1_list_remove(r);
	upstream_error_set(&r->up.err, reason, "%s", msg);
	r->in_cb = 1;
	r->up.cbs->on_error(&r->up);
	uv1_free(r);
}

void upstream_v1__fail_all(struct tunnel_v1 *tv, const char *msg)
{
	while (!TAILQ_EMPTY(&tv->inflight.q))
		uv1_error(TAILQ_FIRST(&tv->inflight.q), UPSTREAM_CLOSED, msg);
	while (!TAILQ_EMPTY(&tv->buffering.q))
		uv1_error(TAILQ_FIRST(&tv->buffering.q), UPSTREAM_CLOSED, msg);
}

/* ---- admit ---- */

static int uv1_method_allowed(struct slice m)
{
	return slice_eq(m, LIT("GET")) || slice_eq(m, LIT("POST")) || slice_eq(m, LIT("PUT")) ||
	       slice_eq(m, LIT("PATCH")) || slice_eq(m, LIT("DELETE"));
}

/* Refuses what v1 cannot carry, before the proxy builds anything. */
static int uv1_admit(struct tunnel_entry *e, const struct upstream_req *rq,
		     struct upstream_refusal *ref)
{
	struct tunnel_v1 *tv = e->impl;
	const char *why = NULL;

	ref->status = 0;
	if (tv == NULL || tv->ws == NULL) {
		ref->status = 503;
		snprintf(ref->msg, sizeof(ref->msg), "cluster %s has no live tunnel", e->cluster);
	} else if (rq->upgrade) {
		ref->status = 501;
		snprintf(ref->msg, sizeof(ref->msg),
			 "cluster %s is connected with tunnel protocol v1 (MicroCloud), which "
			 "cannot carry WebSocket or other upgraded connections; events, exec and "
			 "console need an lxcm-agent tunnel (v2)",
			 tv->cluster);
	} else if (!uv1_method_allowed(rq->method)) {
		ref->status = 405;
		ref->allow = LIT(V1_ALLOWED_METHODS);
		snprintf(ref->msg, sizeof(ref->msg),
			 "cluster %s is connected with tunnel protocol v1, which carries "
			 "only " V1_ALLOWED_METHODS,
			 tv->cluster);
	} else if (!slice_eq(rq->tail, LIT("1.0")) && !slice_starts_with(rq->tail, LIT("1.0/"))) {
		ref->status = 501;
		snprintf(ref->msg, sizeof(ref->msg),
			 "cluster %s is connected with tunnel protocol v1, which carries only /1.0 "
			 "and /1.0/... paths",
			 tv->cluster);
	} else if (http_hdr_path_tail_check(rq->tail, &why) != 0) {
		/* The path rule of every hop (http_hdr.h); 400 as v1 always answered. */
		ref->status = 400;
		snprintf(ref->msg, sizeof(ref->msg),
			 "the path must not contain . or .. segments, encoded dots or slashes, or "
			 "empty segments: it has %s",
			 why);
	} else if (rq->content_length > TUNNEL_V1_MAX_BODY) {
		ref->status = 413;
		snprintf(ref->msg, sizeof(ref->msg),
			 "the request body exceeds %d MiB, the most tunnel v1 can carry",
			 TUNNEL_V1_MAX_BODY / (1024 * 1024));
	} else if (tv->buffering.n + tv->inflight.n >= TUNNEL_V1_MAX_PENDING) {
		ref->status = 503;
		snprintf(ref->msg, sizeof(ref->msg),
			 "too many requests in flight to cluster %s; try again later", tv->cluster);
	}
	return ref->status ? -1 : 0;
}

static size_t uv1_active(const struct tunnel_entry *e)
{
	const struct tunnel_v1 *tv = e ? e->impl : NULL;

	return tv ? tv->buffering.n + tv->inflight.n : 0;
}

/* ---- start: the head is copied, the frame is made at end ---- */

static int uv1_copy_head(struct upstream_v1 *r, const struct upstream_req *rq)
{
	size_t i, total = 0;
	char *p;

	for (i = 0; i < rq->n; i++)
		total += rq->h[i].name.len + rq->h[i].value.len;
	r->method = slice_dup(rq->method);
	r->path = slice_dup(rq->path);
	r->h = calloc(rq->n ? rq->n : 1, sizeof(*r->h));
	r->hbuf = malloc(total ? total : 1);
	if (r->method == NULL || r->path == NULL || r->h == NULL || r->hbuf == NULL)
		return -ENOMEM;
	p = r->hbuf;
	for (i = 0; i < rq->n; i++) {
		memcpy(p, rq->h[i].name.base, rq->h[i].name.len);
		r->h[i].name = slice_make(p, rq->h[i].name.len);
		p += rq->h[i].name.len;
		if (rq->h[i].value.len)
			memcpy(p, rq->h[i].value.base, rq->h[i].value.len);
		r->h[i].value = slice_make(p, rq->h[i].value.len);
		p += rq->h[i].value.len;
	}
	r->n = rq->n;
	return 0;
}

static struct upstream *uv1_start(struct tunnel_entry *e, const struct upstream_req *rq,
				  const struct upstream_callbacks *cbs, void *arg,
				  struct upstream_error *err)
{
	struct tunnel_v1 *tv = e->impl;
	struct upstream_v1 *r = calloc(1, sizeof(*r));

	if (r == NULL || tunnel_v1_frame_uuid(r->uuid) != 0 || uv1_copy_head(r, rq) != 0) {
		if (r) {
			free(r->method);
			free(r->path);
			free(r->h);
			free(r->hbuf);
		}
		free(r);
		upstream_error_set(err, UPSTREAM_INTERNAL, "out of memory");
		return NULL;
	}
	r->up.ops = &upstream_v1_ops;
	r->up.cbs = cbs;
	r->up.arg = arg;
	r->tv = tv;
	buf_init(&r->body, TUNNEL_V1_MAX_BODY);
	if (rq->user_key.base && tv->jar &&
	    session_cookies_user(tv->jar, rq->user_key, &r->user) != 0)
		LOG_WARN("could not derive the session cookie key of a user of %s", tv->cluster);
	uv1_list_append(&tv->buffering, r);
	return &r->up;
}

static int uv1_write(struct upstream *up, const void *data, size_t len)
{
	struct upstream_v1 *r = (struct upstream_v1 *)up;
	struct tunnel_v1 *tv = r->tv;

	if (r->body.len + len > TUNNEL_V1_MAX_BODY) {
		upstream_error_set(&up->err, UPSTREAM_TOO_LARGE,
				   "the request body exceeds %d MiB, the most tunnel v1 can carry",
				   TUNNEL_V1_MAX_BODY / (1024 * 1024));
		return -E2BIG;
	}
	if (tv->buffered + len > TUNNEL_V1_MAX_BUFFERED) {
		upstream_error_set(&up->err, UPSTREAM_BUSY,
				   "too many request bytes in flight to cluster %s; try again later",
				   tv->cluster);
		return -EBUSY;
	}
	if (buf_append(&r->body, data, len) != 0) {
		upstream_error_set(&up->err, UPSTREAM_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	tv->buffered += len;
	return 1;
}

/* The user's stored `session` cookie as "session=...", in line; 0 or -ENOENT. */
static int uv1_session(struct upstream_v1 *r, char *line, size_t cap, size_t *len)
{
	size_t n = 0;

	if (!r->user.valid || r->tv->jar == NULL || cap < 9)
		return -ENOENT;
	memcpy(line, "session=", 8);
	if (session_cookies_get(r->tv->jar, &r->user, line + 8, cap - 8, &n) != 0)
		return -ENOENT; /* none, or it did not authenticate: go without */
	*len = 8 + n;
	return 0;
}

static enum upstream_reason uv1_frame_reason(int rc)
{
	return rc == -EINVAL ? UPSTREAM_BAD_REQUEST
			     : rc == -E2BIG ? UPSTREAM_TOO_LARGE : UPSTREAM_INTERNAL;
}

/* The body is complete: send the frame and wait for the answer. */
static int uv1_end(struct upstream *up)
{
	struct upstream_v1 *r = (struct upstream_v1 *)up;
	struct tunnel_v1 *tv = r->tv;
	char line[SESSION_COOKIE_MAX_VALUE + 16];
	struct tunnel_v1_frame_req fr;
	const char *why = NULL;
	char *frame = NULL;
	size_t flen = 0, slen = 0;
	int rc;

	if (tv->ws == NULL) {
		upstream_error_set(&up->err, UPSTREAM_CLOSED, "the tunnel to cluster %s is closed",
				   tv->cluster);
		return -EPIPE;
	}
	if (ws_pending(tv->ws) > TUNNEL_V1_MAX_QUEUED) {
		upstream_error_set(&up->err, UPSTREAM_BUSY,
				   "the tunnel to cluster %s is congested; try again later",
				   tv->cluster);
		return -EBUSY;
	}
	memset(&fr, 0, sizeof(fr));
	fr.uuid = r->uuid;
	fr.method = slice_cstr(r->method);
	fr.path = slice_cstr(r->path);
	fr.h = r->h;
	fr.n = r->n;
	if (uv1_session(r, line, sizeof(line), &slen) == 0)
		fr.session = slice_make(line, slen);
	fr.body = r->body.data;
	fr.body_len = r->body.len;
	rc = tunnel_v1_frame_request(&fr, &frame, &flen, &why);
	secret_wipe(line, sizeof(line));
	if (rc != 0) {
		upstream_error_set(&up->err, uv1_frame_reason(rc), "%s", why);
		return rc;
	}
	rc = ws_send(tv->ws, WS_TEXT, frame, flen);
	free(frame);
	if (rc < 0) {
		upstream_error_set(&up->err, UPSTREAM_CLOSED,
				   "could not send the request into the tunnel of cluster %s",
				   tv->cluster);
		return rc;
	}
	uv1_list_remove(r);
	buf_free(&r->body); /* the frame is queued (copied) in the WebSocket */
	uv1_list_append(&tv->inflight, r);
	LOG_DEBUG("tunnel v1 of %s: sent %s %s as %s (%zu bytes)", tv->cluster, r->method, r->path,
		  r->uuid, flen);
	return 0;
}

static void uv1_consume(struct upstream *up, size_t n)
{
	(void)up; /* the whole answer came in one frame: no window to credit */
	(void)n;
}

/* The proxy lets go: a late answer finds no request and is dropped. */
static void uv1_release(struct upstream *up)
{
	struct upstream_v1 *r = (struct upstream_v1 *)up;

	r->gone = 1;
	uv1_list_remove(r);
	if (!r->in_cb)
		uv1_free(r);
}

/* ---- response frames ---- */

/* Keeps (or forgets) the user's LXD session cookie. */
static void uv1_keep_session(struct upstream_v1 *r, const struct tunnel_v1_frame_resp *rs)
{
	struct session_cookies *jar = r->tv->jar;
	int rc;

	if (!rs->session_seen || !r->user.valid || jar == NULL)
		return;
	if (rs->session_expired || rs->session_value.len == 0) {
		session_cookies_forget(jar, &r->user);
		return;
	}
	rc = session_cookies_put(jar, &r->user, rs->session_value);
	if (rc == -E2BIG)
		LOG_WARN("cluster %s sent a session cookie over %d bytes; not kept", r->tv->cluster,
			 SESSION_COOKIE_MAX_VALUE);
	else if (rc < 0)
		LOG_WARN("could not keep the session cookie of cluster %s (%d)", r->tv->cluster,
			 rc);
}

/* Hands a parsed answer to the proxy: head, the whole body, end. */
static void uv1_deliver(struct upstream_v1 *r, const struct tunnel_v1_frame_resp *rs)
{
	const struct upstream_callbacks *cbs = r->up.cbs;

	uv1_list_remove(r);
	r->in_cb = 1;
	cbs->on_head(&r->up, rs->status, rs->h, rs->n, (int64_t)rs->body_len);
	if (!r->gone && rs->body_len)
		cbs->on_data(&r->up, rs->body, rs->body_len);
	if (!r->gone)
		cbs->on_end(&r->up);
	r->in_cb = 0;
	if (r->gone)
		uv1_free(r);
}

static struct upstream_v1 *uv1_find(struct tunnel_v1 *tv, struct slice id)
{
	struct upstream_v1 *r;

	TAILQ_FOREACH(r, &tv->inflight.q, link)
		if (slice_eq(id, slice_make(r->uuid, TUNNEL_V1_FRAME_UUID_LEN)))
			return r;
	return NULL;
}

void upstream_v1__on_frame(struct tunnel_v1 *tv, json_t *root)
{
	json_t *id = json_object_get(root, "uuid");
	struct tunnel_v1_frame_resp *rs;
	struct upstream_v1 *r;
	const char *why;
	char shown[64], msg[UPSTREAM_MSG_MAX];

	if (!json_is_string(id))
		id = json_object_get(root, "id"); /* early MicroCloud builds */
	if (!json_is_string(id)) {
		tunnel_v1_bad_frame(tv, "a frame without a uuid", NULL);
		return;
	}
	r = uv1_find(tv, slice_make(json_string_value(id), json_string_length(id)));
	if (r == NULL) {
		tunnel_v1_frame_printable(json_string_value(id), json_string_length(id), shown,
					  sizeof(shown));
		tunnel_v1_bad_frame(tv, "a response for a uuid no request is waiting for", shown);
		return;
	}
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL) {
		uv1_error(r, UPSTREAM_INTERNAL, "out of memory");
		return;
	}
	rs->cluster = tv->cluster;
	why = tunnel_v1_frame_response(root, rs);
	uv1_keep_session(r, rs);
	if (why) {
		LOG_WARN("tunnel v1 of %s: invalid response to %s %s: %s", tv->cluster, r->method,
			 r->path, why);
		snprintf(msg, sizeof(msg), "the cluster sent an invalid response (%s)", why);
		uv1_error(r, UPSTREAM_INVALID, msg);
	} else {
		uv1_deliver(r, rs);
	}
	tunnel_v1_frame_resp_clear(rs);
	free(rs);
}

const struct upstream_ops upstream_v1_ops = {
	.name = "v1",
	.active = uv1_active,
	.admit = uv1_admit,
	.start = uv1_start,
	.write = uv1_write,
	.end = uv1_end,
	.consume = uv1_consume,
	.reset = uv1_release,
	.close = uv1_release,
	.pipe = NULL,
};
