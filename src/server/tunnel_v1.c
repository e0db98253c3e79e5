/*
 * tunnel_v1.c - tunnel protocol v1 (MicroCloud's JSON frames), server side.
 *
 * Shape: one struct tunnel_v1 per live v1 WebSocket, hung on its registry
 * entry (e->v1). Every proxied request is a struct v1_req that sits on one
 * of two lists of its tunnel:
 *   buffering  the request body is still arriving (held up to
 *              TUNNEL_V1_MAX_BODY; v1 frames carry whole bodies);
 *   inflight   its frame went out; waiting for the response frame with the
 *              same uuid, or for the deadline (the server's proxy header
 *              timeout), in send order, which is also deadline order, so
 *              one timer armed for the head covers them all.
 *
 * Ownership: a v1_req is freed exactly when its HTTP request is finished
 * (answered from a response frame, failed, timed out, or the user went
 * away). The tunnel_v1 outlives its WebSocket only until its timer handle
 * is closed; by then every request of it has been finished with 502, so no
 * v1_req ever points at a freed tunnel. Everything runs on the loop thread.
 *
 * Peer input policy (docs/protocol-v1.md): a frame that is not a JSON
 * object, has no uuid, matches no request, or is malformed as a response is
 * dropped with a (rate limited) log line; a malformed response to a known
 * request answers that request 502. The tunnel stays up. A frame over
 * TUNNEL_V1_MAX_FRAME is refused by the WebSocket layer, which closes the
 * tunnel (1009); pending requests then get 502 at once.
 */
#include "server/tunnel_v1.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "net/ws.h"
#include "server/audit.h"
#include "server/server.h"
#include "server/session_cookies.h"
#include "server/tunnels.h"
#include "store/store_async.h"

#define V1_UUID_LEN 36
#define V1_LOG_FIRST 10 /* bad frames logged per tunnel, then one in V1_LOG_EVERY */
#define V1_LOG_EVERY 1000
#define V1_MAX_COOKIE_LINE 8192 /* one Set-Cookie line we build */
#define V1_ALLOWED_METHODS "GET, POST, PUT, PATCH, DELETE"
/* Go's time.Time zero value and anything before 1601 mean "no Expires". */
#define V1_MIN_EXPIRES (-11644473600LL)

struct v1_req;

struct v1_list {
	struct v1_req *head, *tail;
	size_t n;
};

struct tunnel_v1 {
	struct server *srv;
	struct tunnel_entry *e; /* NULL once unregistered */
	struct ws *ws;		/* NULL once closed */
	struct session_cookies *jar;
	uv_timer_t timer; /* the earliest response deadline */
	struct v1_list buffering;
	struct v1_list inflight;
	size_t buffered; /* body bytes held by the buffering list */
	uint64_t bad_frames;
	char cluster[64];
};

struct v1_req {
	struct v1_req *prev, *next;
	struct v1_list *list; /* the list of tv it is on, NULL when on none */
	struct tunnel_v1 *tv;
	struct http_request *req; /* NULL once finished */
	struct buf body;
	struct session_user user;
	uint64_t deadline;
	uint64_t start_ms;
	uint64_t bytes_in, bytes_out;
	int status;
	int audited;
	char uuid[V1_UUID_LEN + 1];
	char method[16];
	char path[512]; /* for the audit log and log lines, truncated */
	char actor[AUDIT_ACTOR_MAX];
};

/* ---- small helpers ---- */

static void v1_list_append(struct v1_list *l, struct v1_req *r)
{
	r->list = l;
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

static void v1_list_remove(struct v1_req *r)
{
	struct v1_list *l = r->list;

	if (l == NULL)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	l->n--;
	r->list = NULL;
	r->prev = r->next = NULL;
}

static int v1_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* An RFC 9110 token: what a header or cookie name may be. */
static int v1_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!v1_is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* A header value we can put on the wire: no CR, LF or NUL. */
static int v1_is_field_value(const char *s, size_t len)
{
	size_t i;

	/* RFC 9110 field-value: HTAB, SP, visible ASCII and obs-text only. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return 0;
	}
	return 1;
}

/* Copies peer bytes into out for a log line: printable ASCII only, cut short. */
static void v1_printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < outlen; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[o] = '\0';
}

/* A random (version 4) UUID in its 36-character text form. */
static int v1_uuid(char out[V1_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i, o = 0;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

/* The user's secret: the bearer token of the request, or SLICE_NULL. */
static struct slice v1_user_secret(const struct http_request *req)
{
	return http_hdr_bearer(http_request_header(req, LIT("Authorization")));
}

/* ---- audit (the same rows as the v2 proxy writes, audit.c) ---- */

/* Once per request, before its answer goes out (or when it is freed). */
static void v1_audit(struct v1_req *r)
{
	struct audit_entry e;

	if (r->audited)
		return;
	r->audited = 1;
	memset(&e, 0, sizeof(e));
	memcpy(e.actor, r->actor, sizeof(e.actor));
	e.cluster = r->tv->cluster;
	e.method = r->method;
	e.path = r->path;
	e.status = r->status;
	e.bytes_in = r->bytes_in;
	e.bytes_out = r->bytes_out;
	e.start_ms = r->start_ms;
	audit_record(r->tv->srv, &e);
}

/* ---- finishing requests ---- */

/* Takes r off its list, logs it to the audit log and frees it; r->req must be finished. */
static void v1_req_free(struct v1_req *r)
{
	if (r->list == &r->tv->buffering)
		r->tv->buffered -= r->body.len;
	v1_list_remove(r);
	v1_audit(r);
	buf_free(&r->body);
	session_user_wipe(&r->user);
	free(r);
}

/* Answers the user with an error envelope and frees r. */
static void v1_fail(struct v1_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void v1_fail(struct v1_req *r, int status, const char *fmt, ...)
{
	struct http_request *req = r->req;
	char msg[400];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	r->req = NULL;
	r->status = status;
	if (req) {
		v1_audit(r);
		http_respond_error(req, status, "%s", msg);
	}
	v1_req_free(r);
}

static void v1_fail_list(struct v1_list *l, int status, const char *msg)
{
	while (l->head)
		v1_fail(l->head, status, "%s", msg);
}

/* ---- deadlines ---- */

static void v1_on_timer(uv_timer_t *t);

static void v1_arm(struct tunnel_v1 *tv)
{
	uint64_t now = uv_now(tv->srv->loop);
	struct v1_req *head = tv->inflight.head;

	if (head == NULL || tv->ws == NULL)
		return;
	uv_timer_start(&tv->timer, v1_on_timer, head->deadline > now ? head->deadline - now : 0, 0);
}

static void v1_on_timer(uv_timer_t *t)
{
	struct tunnel_v1 *tv = t->data;
	uint64_t now = uv_now(tv->srv->loop);

	while (tv->inflight.head && tv->inflight.head->deadline <= now) {
		struct v1_req *r = tv->inflight.head;

		LOG_WARN("cluster %s did not answer %s %s in time (tunnel v1)", tv->cluster,
			 r->method, r->path);
		v1_fail(r, 504, "the cluster did not answer in time");
	}
	v1_arm(tv);
}

/* ---- request frames ---- */

/* Go's CanonicalMIMEHeaderKey for a token: "content-type" -> "Content-Type". */
static void v1_canonical(char *s, size_t len)
{
	int upper = 1;
	size_t i;

	for (i = 0; i < len; i++) {
		if (upper && s[i] >= 'a' && s[i] <= 'z')
			s[i] = (char)(s[i] - 'a' + 'A');
		else if (!upper && s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
		upper = s[i] == '-';
	}
}

/* Appends value to headers[name] (arrays of strings). 0, -EINVAL (not UTF-8), -ENOMEM. */
static int v1_header_add(json_t *hdrs, struct slice name, struct slice value)
{
	char *key = slice_dup(name);
	json_t *arr, *v;
	int rc = -ENOMEM;

	if (key == NULL)
		return -ENOMEM;
	v1_canonical(key, name.len);
	v = json_stringn(value.base ? value.base : "", value.len);
	if (v == NULL) {
		rc = -EINVAL;
		goto out;
	}
	arr = json_object_get(hdrs, key);
	if (arr == NULL) {
		arr = json_array();
		if (arr == NULL || json_object_set_new(hdrs, key, arr) != 0) {
			json_decref(v);
			goto out;
		}
	}
	rc = json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM;
out:
	free(key);
	return rc;
}

/* 1 when the Cookie header value carries a cookie named `session`. */
static int v1_has_session_cookie(struct slice v)
{
	size_t i = 0, start;

	while (i < v.len) {
		while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ';'))
			i++;
		start = i;
		while (i < v.len && v.base[i] != '=' && v.base[i] != ';')
			i++;
		if (slice_eq(slice_make(v.base + start, i - start), LIT("session")))
			return 1;
		while (i < v.len && v.base[i] != ';')
			i++;
	}
	return 0;
}

/* Adds the user's stored `session` cookie unless they sent one themselves. */
static int v1_add_session(struct v1_req *r, json_t *hdrs, int user_has_session)
{
	char line[SESSION_COOKIE_MAX_VALUE + 16];
	size_t len = 0;
	int rc;

	if (user_has_session || !r->user.valid || r->tv->jar == NULL)
		return 0;
	memcpy(line, "session=", 8);
	rc = session_cookies_get(r->tv->jar, &r->user, line + 8, sizeof(line) - 8, &len);
	if (rc != 0)
		return 0; /* none, or it did not authenticate: go without */
	rc = v1_header_add(hdrs, LIT("Cookie"), slice_make(line, 8 + len));
	secret_wipe(line, sizeof(line));
	return rc;
}

/*
 * The cookies of one Cookie header without the manager's own
 * (http_hdr_cookies_for_cluster); notes whether the user sent a `session`
 * cookie themselves. 0, -E2BIG (too many cookie bytes), -EINVAL, -ENOMEM.
 */
static int v1_add_user_cookies(json_t *hdrs, struct slice v, int *user_session)
{
	struct buf b;
	int rc;

	buf_init(&b, HTTP_HDR_MAX_COOKIE);
	rc = http_hdr_cookies_for_cluster(v, &b);
	if (rc == 0 && b.len) {
		*user_session |= v1_has_session_cookie(slice_make(b.data, b.len));
		rc = v1_header_add(hdrs, LIT("Cookie"), slice_make(b.data, b.len));
	}
	buf_free(&b);
	return rc;
}

/* The frame's "headers" object, or NULL with *why set. */
static json_t *v1_request_headers(struct v1_req *r, struct http_request *req, const char **why)
{
	json_t *hdrs = json_object();
	int rc = 0, user_session = 0;
	size_t i;

	*why = "out of memory";
	if (hdrs == NULL)
		return NULL;
	for (i = 0; i < req->nheaders && rc == 0; i++) {
		struct slice n = req->headers[i].name, v = req->headers[i].value;

		if (http_hdr_drop(req->headers, req->nheaders, n, HTTP_HDR_DROP_TO_CLUSTER))
			continue;
		if (slice_eq_nocase(n, LIT("Cookie")))
			rc = v1_add_user_cookies(hdrs, v, &user_session);
		else
			rc = v1_header_add(hdrs, n, v);
	}
	if (rc == 0)
		rc = v1_header_add(hdrs, LIT("X-Forwarded-For"), slice_cstr(req->peer_addr));
	if (rc == 0)
		rc = v1_header_add(hdrs, LIT("X-Forwarded-Proto"), LIT("https"));
	if (rc == 0)
		rc = v1_add_session(r, hdrs, user_session);
	if (rc != 0) {
		if (rc == -EINVAL)
			*why = "a request header is not valid UTF-8, which tunnel v1 (JSON) cannot "
			       "carry";
		else if (rc == -E2BIG)
			*why = "a Cookie header is too large for the tunnel";
		json_decref(hdrs);
		return NULL;
	}
	return hdrs;
}

/* "/" + the path after tunnel/ + "?" + query; malloc'd, NUL-terminated. */
static char *v1_target(const struct http_request *req, size_t *len)
{
	struct slice rest = req->params[1];
	size_t n = 1 + rest.len + (req->query.base ? 1 + req->query.len : 0);
	char *s = malloc(n + 1), *p;

	if (s == NULL)
		return NULL;
	p = s;
	*p++ = '/';
	if (rest.len)
		memcpy(p, rest.base, rest.len);
	p += rest.len;
	if (req->query.base) {
		*p++ = '?';
		if (req->query.len)
			memcpy(p, req->query.base, req->query.len);
		p += req->query.len;
	}
	*p = '\0';
	*len = n;
	return s;
}

/*
 * The whole request frame, malloc'd, in *frame / *flen:
 *   {"uuid":...,"method":...,"path":...,"headers":{...},"body":"<base64>"|null}
 * The small part is made by jansson; the body is base64-encoded straight
 * into the frame. Returns 0 or an HTTP status with *why set.
 */
static int v1_build_frame(struct v1_req *r, char **frame, size_t *flen, const char **why)
{
	struct http_request *req = r->req;
	size_t plen = 0, hlen, blen = r->body.len, elen, total;
	char *path = v1_target(req, &plen), *head = NULL, *f = NULL, *p;
	json_t *o = NULL, *hdrs;
	int status = 500;

	*why = "out of memory";
	if (path == NULL)
		goto out;
	hdrs = v1_request_headers(r, req, why);
	if (hdrs == NULL) {
		status = strcmp(*why, "out of memory") == 0 ? 500 : 400;
		goto out;
	}
	o = json_pack("{s:s,s:s%,s:s%,s:o}", "uuid", r->uuid, "method", req->method.base,
		      req->method.len, "path", path, plen, "headers", hdrs);
	if (o == NULL) {
		*why = "the request path is not valid UTF-8, which tunnel v1 (JSON) cannot carry";
		status = 400;
		goto out;
	}
	head = json_dumps(o, JSON_COMPACT);
	if (head == NULL)
		goto out;
	hlen = strlen(head); /* our own JSON text, ending in '}' */
	elen = blen ? base64_encoded_len(blen) + 2 : 4;
	total = hlen - 1 + sizeof(",\"body\":") - 1 + elen + 1;
	if (total > TUNNEL_V1_MAX_FRAME) {
		*why = "the request does not fit in one tunnel v1 frame";
		status = 413;
		goto out;
	}
	f = malloc(total);
	if (f == NULL)
		goto out;
	p = f;
	memcpy(p, head, hlen - 1);
	p += hlen - 1;
	memcpy(p, ",\"body\":", 8);
	p += 8;
	if (blen) {
		*p++ = '"';
		base64_encode(r->body.data, blen, p);
		p += elen - 2;
		*p++ = '"';
	} else {
		memcpy(p, "null", 4);
		p += 4;
	}
	*p++ = '}';
	*frame = f;
	*flen = (size_t)(p - f);
	status = 0;
out:
	json_decref(o);
	free(head);
	free(path);
	return status;
}

/* The body is complete: send the frame and wait for the answer. */
static void v1_send(struct v1_req *r)
{
	struct tunnel_v1 *tv = r->tv;
	const char *why = NULL;
	char *frame = NULL;
	size_t flen = 0;
	int rc;

	if (tv->ws == NULL) {
		v1_fail(r, 502, "the tunnel to cluster %s is closed", tv->cluster);
		return;
	}
	if (ws_pending(tv->ws) > TUNNEL_V1_MAX_QUEUED) {
		v1_fail(r, 503, "the tunnel to cluster %s is congested; try again later",
			tv->cluster);
		return;
	}
	rc = v1_build_frame(r, &frame, &flen, &why);
	if (rc != 0) {
		v1_fail(r, rc, "%s", why);
		return;
	}
	rc = ws_send(tv->ws, WS_TEXT, frame, flen);
	free(frame);
	if (rc < 0) {
		v1_fail(r, 502, "could not send the request into the tunnel of cluster %s",
			tv->cluster);
		return;
	}
	tv->buffered -= r->body.len;
	v1_list_remove(r);
	buf_free(&r->body); /* the frame is queued (copied) in the WebSocket */
	r->deadline = uv_now(tv->srv->loop) + tv->srv->cfg.proxy_header_timeout_ms;
	v1_list_append(&tv->inflight, r);
	LOG_DEBUG("tunnel v1 of %s: sent %s %s as %s (%zu bytes)", tv->cluster, r->method, r->path,
		  r->uuid, flen);
	if (tv->inflight.n == 1)
		v1_arm(tv);
}

/* ---- the HTTP side ---- */

static void v1_req_on_body(struct http_request *req, const char *data, size_t len)
{
	struct v1_req *r = req->data;
	struct tunnel_v1 *tv = r->tv;

	if (r->body.len + len > TUNNEL_V1_MAX_BODY) {
		v1_fail(r, 413, "the request body exceeds %d MiB, the most tunnel v1 can carry",
			TUNNEL_V1_MAX_BODY / (1024 * 1024));
		return;
	}
	if (tv->buffered + len > TUNNEL_V1_MAX_BUFFERED) {
		v1_fail(r, 503, "too many request bytes in flight to cluster %s; try again later",
			tv->cluster);
		return;
	}
	if (buf_append(&r->body, data, len) != 0) {
		v1_fail(r, 500, "out of memory");
		return;
	}
	tv->buffered += len;
	r->bytes_in += len;
}

static void v1_req_on_body_end(struct http_request *req)
{
	v1_send(req->data);
}

/* The user went away: finish the request and forget it; a late answer is dropped. */
static void v1_req_on_abort(struct http_request *req)
{
	struct v1_req *r = req->data;

	r->req = NULL;
	http_response_abort(req);
	v1_req_free(r);
}

static int v1_method_allowed(struct slice m)
{
	return slice_eq(m, LIT("GET")) || slice_eq(m, LIT("POST")) || slice_eq(m, LIT("PUT")) ||
	       slice_eq(m, LIT("PATCH")) || slice_eq(m, LIT("DELETE"));
}

static void v1_respond_405(struct http_request *req, const char *cluster)
{
	struct http_header h[2] = {
	    {LIT("Content-Type"), LIT("application/json")},
	    {LIT("Allow"), LIT(V1_ALLOWED_METHODS)},
	};
	char msg[256];
	size_t len = 0;
	char *env;

	snprintf(msg, sizeof(msg),
		 "cluster %s is connected with tunnel protocol v1, which carries "
		 "only " V1_ALLOWED_METHODS,
		 cluster);
	env = envelope_error(405, msg, &len);
	if (env == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	http_respond(req, 405, h, 2, env, len);
	free(env);
}

/* Refuses what v1 cannot carry; returns 0 when req may go on. */
static int v1_refuse(struct tunnel_v1 *tv, struct http_request *req)
{
	struct slice rest = req->params[1];
	const char *why = NULL;

	if (req->upgrade) {
		http_respond_error(req, 501,
				   "cluster %s is connected with tunnel protocol v1 (MicroCloud), "
				   "which cannot carry WebSocket or other upgraded connections; "
				   "events, exec and console need an lxcm-agent tunnel (v2)",
				   tv->cluster);
		return -1;
	}
	if (!v1_method_allowed(req->method)) {
		v1_respond_405(req, tv->cluster);
		return -1;
	}
	if (!slice_eq(rest, LIT("1.0")) && !slice_starts_with(rest, LIT("1.0/"))) {
		http_respond_error(req, 501,
				   "cluster %s is connected with tunnel protocol v1, which carries "
				   "only /1.0 and /1.0/... paths",
				   tv->cluster);
		return -1;
	}
	if (http_hdr_path_tail_check(rest, &why) != 0) {
		/* The path rule of every hop (http_hdr.h); 400 as v1 always answered. */
		http_respond_error(req, 400, "the path must not contain . or .. segments, "
					     "encoded dots or slashes, or empty segments: it has %s",
				   why);
		return -1;
	}
	if (req->content_length > TUNNEL_V1_MAX_BODY) {
		http_respond_error(req, 413,
				   "the request body exceeds %d MiB, the most tunnel v1 "
				   "can carry",
				   TUNNEL_V1_MAX_BODY / (1024 * 1024));
		return -1;
	}
	if (tv->buffering.n + tv->inflight.n >= TUNNEL_V1_MAX_PENDING) {
		http_respond_error(req, 503,
				   "too many requests in flight to cluster %s; try again "
				   "later",
				   tv->cluster);
		return -1;
	}
	return 0;
}

void tunnel_v1_proxy(struct tunnel_entry *e, struct http_request *req)
{
	struct tunnel_v1 *tv = e->v1;
	struct v1_req *r;
	struct slice secret;

	if (tv == NULL || tv->ws == NULL) {
		http_respond_error(req, 503, "cluster %s has no live tunnel", e->cluster);
		return;
	}
	if (v1_refuse(tv, req) != 0)
		return;
	r = calloc(1, sizeof(*r));
	if (r == NULL || v1_uuid(r->uuid) != 0) {
		free(r);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	r->tv = tv;
	r->req = req;
	r->start_ms = uv_now(tv->srv->loop);
	audit_actor(req, r->actor);
	buf_init(&r->body, TUNNEL_V1_MAX_BODY);
	snprintf(r->method, sizeof(r->method), "%.*s", (int)req->method.len, req->method.base);
	snprintf(r->path, sizeof(r->path), "/%.*s", (int)req->params[1].len, req->params[1].base);
	secret = v1_user_secret(req);
	if (secret.base && tv->jar && session_cookies_user(tv->jar, secret, &r->user) != 0)
		LOG_WARN("could not derive the session cookie key of a user of %s", tv->cluster);
	v1_list_append(&tv->buffering, r);
	req->data = r;
	req->on_body = v1_req_on_body;
	req->on_body_end = v1_req_on_body_end;
	req->on_abort = v1_req_on_abort;
}

size_t tunnel_v1_active(const struct tunnel_entry *e)
{
	const struct tunnel_v1 *tv = e ? e->v1 : NULL;

	return tv ? tv->buffering.n + tv->inflight.n : 0;
}

/* ---- response frames ---- */

/* What we answer the user with, built from one response frame. */
struct v1_resp {
	struct http_header h[TUNNEL_V1_MAX_HEADERS];
	size_t n;
	char *owned[TUNNEL_V1_MAX_HEADERS]; /* Set-Cookie lines we built */
	size_t nowned;
	json_t *cookies; /* the frame's cookie array, or NULL */
};

static void v1_resp_clear(struct v1_resp *rs)
{
	size_t i;

	for (i = 0; i < rs->nowned; i++)
		free(rs->owned[i]);
	rs->nowned = 0;
}

static int v1_resp_add(struct v1_resp *rs, struct slice name, struct slice value)
{
	if (rs->n >= TUNNEL_V1_MAX_HEADERS)
		return -E2BIG;
	rs->h[rs->n].name = name;
	rs->h[rs->n].value = value;
	rs->n++;
	return 0;
}

/* The name of a Set-Cookie line (up to '='), trimmed. */
static struct slice v1_set_cookie_name(struct slice v)
{
	size_t i = 0, end;

	while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
		i++;
	end = i;
	while (end < v.len && v.base[end] != '=' && v.base[end] != ';')
		end++;
	while (end > i && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
		end--;
	return slice_make(v.base + i, end - i);
}

/* 1 when the frame's cookie array has a cookie called name. */
static int v1_cookies_have(json_t *cookies, struct slice name)
{
	size_t i;
	json_t *c;

	json_array_foreach(cookies, i, c)
	{
		json_t *n = json_object_get(c, "Name");

		if (json_is_string(n) &&
		    slice_eq(slice_make(json_string_value(n), json_string_length(n)), name))
			return 1;
	}
	return 0;
}

/* Keeps (or forgets) the user's LXD session cookie. */
static void v1_keep_session(struct v1_req *r, struct slice value, int expired)
{
	struct session_cookies *jar = r->tv->jar;
	int rc;

	if (!r->user.valid || jar == NULL)
		return;
	if (expired || value.len == 0) {
		session_cookies_forget(jar, &r->user);
		return;
	}
	rc = session_cookies_put(jar, &r->user, value);
	if (rc == -E2BIG)
		LOG_WARN("cluster %s sent a session cookie over %d bytes; not kept", r->tv->cluster,
			 SESSION_COOKIE_MAX_VALUE);
	else if (rc < 0)
		LOG_WARN("could not keep the session cookie of cluster %s (%d)", r->tv->cluster,
			 rc);
}

/*
 * A Set-Cookie header line (the early form, or a frame that sends both):
 * `session` is kept, never passed on; a cookie also in the array is a
 * duplicate. Returns 1 to pass the line on.
 */
static int v1_header_set_cookie(struct v1_req *r, struct v1_resp *rs, struct slice v)
{
	struct slice name = v1_set_cookie_name(v), value, attrs;
	const char *eq = memchr(v.base, '=', v.len), *semi;
	int expired;

	if (rs->cookies && v1_cookies_have(rs->cookies, name))
		return 0;
	if (!slice_eq(name, LIT("session")))
		return 1;
	value = eq ? slice_make(eq + 1, v.len - (size_t)(eq + 1 - v.base)) : SLICE_NULL;
	semi = value.len ? memchr(value.base, ';', value.len) : NULL;
	attrs = semi ? slice_make(semi, value.len - (size_t)(semi - value.base)) : SLICE_NULL;
	if (semi)
		value.len = (size_t)(semi - value.base);
	while (value.len && value.base[0] == ' ') {
		value.base++;
		value.len--;
	}
	while (value.len && value.base[value.len - 1] == ' ')
		value.len--;
	/* Max-Age=0 or a negative Max-Age deletes the cookie. */
	expired = attrs.len && (memmem(attrs.base, attrs.len, "Max-Age=0", 9) != NULL ||
				memmem(attrs.base, attrs.len, "Max-Age=-", 9) != NULL);
	v1_keep_session(r, value, expired);
	return 0;
}

/* One value of a response header; Set-Cookie lines go through v1_header_set_cookie. */
static const char *v1_resp_header_value(struct v1_req *r, struct v1_resp *rs, struct slice name,
					json_t *v)
{
	struct slice sv;

	if (!json_is_string(v))
		return "a header value is not a string";
	sv = slice_make(json_string_value(v), json_string_length(v));
	if (!v1_is_field_value(sv.base, sv.len))
		return "a header value contains CR, LF or NUL";
	if (slice_eq_nocase(name, LIT("Set-Cookie")) && !v1_header_set_cookie(r, rs, sv))
		return NULL;
	return v1_resp_add(rs, name, sv) == 0 ? NULL : "too many headers";
}

/* A JSON string as a slice; SLICE_NULL for anything else. */
static struct slice v1_json_slice(json_t *v)
{
	return json_is_string(v) ? slice_make(json_string_value(v), json_string_length(v))
				 : SLICE_NULL;
}

/*
 * Whether a response header of the frame stays behind (http_hdr.h): by
 * name, or named by one of the frame's Connection headers (values as an
 * array of strings or a single string).
 */
static int v1_resp_drop(json_t *hdrs, struct slice name)
{
	json_t *val, *v;
	void *it;
	size_t i;

	if (http_hdr_flags(name) & HTTP_HDR_DROP_TO_USER)
		return 1;
	for (it = json_object_iter(hdrs); it; it = json_object_iter_next(hdrs, it)) {
		if (!slice_eq_nocase(slice_make(json_object_iter_key(it), json_object_iter_key_len(it)),
				     LIT("Connection")))
			continue;
		val = json_object_iter_value(it);
		if (http_hdr_list_has(v1_json_slice(val), name))
			return 1;
		json_array_foreach(val, i, v)
		{
			if (http_hdr_list_has(v1_json_slice(v), name))
				return 1;
		}
	}
	return 0;
}

/* Adds the frame's "headers" object: values as arrays of strings or single strings. */
static const char *v1_resp_headers(struct v1_req *r, struct v1_resp *rs, json_t *hdrs)
{
	const char *why = NULL;
	json_t *val, *v;
	void *it;
	size_t i;

	if (hdrs == NULL || json_is_null(hdrs))
		return NULL;
	if (!json_is_object(hdrs))
		return "headers is not an object";
	for (it = json_object_iter(hdrs); it && !why; it = json_object_iter_next(hdrs, it)) {
		struct slice name =
		    slice_make(json_object_iter_key(it), json_object_iter_key_len(it));

		val = json_object_iter_value(it);
		if (!v1_is_token(name.base, name.len))
			return "a header name is not a token";
		if (v1_resp_drop(hdrs, name))
			continue;
		if (json_is_array(val)) {
			json_array_foreach(val, i, v)
			{
				why = v1_resp_header_value(r, rs, name, v);
				if (why)
					break;
			}
		} else {
			why = v1_resp_header_value(r, rs, name, val); /* the early form */
		}
	}
	return why;
}

/* A cookie value as Go writes one: quoted if it has a space or comma. */
static int v1_cookie_value_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.base[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == ';' || c == '\\')
			return 0;
	}
	return 1;
}

static int v1_attr_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++)
		if ((unsigned char)v.base[i] < 0x20 || (unsigned char)v.base[i] > 0x7e ||
		    v.base[i] == ';')
			return 0;
	return 1;
}

static int v1_domain_ok(struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++) {
		char c = v.base[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == ':'))
			return 0;
	}
	return v.len > 0;
}

/* Unix time -> "Mon, 02 Jan 2006 15:04:05 GMT" (RFC 9110 IMF-fixdate). */
static int v1_http_date(int64_t t, char *out, size_t outlen)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	int n;

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -EINVAL;
	n = snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
		     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		     tm.tm_sec);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

/* The cookie's Expires as Unix time, or INT64_MIN when it has none. */
static int64_t v1_cookie_expires(json_t *c)
{
	json_t *e = json_object_get(c, "Expires");
	int64_t t;

	if (!json_is_string(e) ||
	    time_parse_rfc3339(json_string_value(e), json_string_length(e), &t) != 0 ||
	    t < V1_MIN_EXPIRES)
		return INT64_MIN;
	return t;
}

static const char *v1_same_site(json_t *s)
{
	if (json_is_integer(s)) {
		switch (json_integer_value(s)) {
		case 2:
			return "Lax";
		case 3:
			return "Strict";
		case 4:
			return "None";
		default:
			return NULL;
		}
	}
	if (json_is_string(s)) {
		if (strcasecmp(json_string_value(s), "lax") == 0)
			return "Lax";
		if (strcasecmp(json_string_value(s), "strict") == 0)
			return "Strict";
		if (strcasecmp(json_string_value(s), "none") == 0)
			return "None";
	}
	return NULL;
}

/* The attributes after name=value, as Go's Cookie.String writes them. */
static int v1_cookie_attrs(json_t *c, struct buf *b)
{
	json_t *path = json_object_get(c, "Path"), *dom = json_object_get(c, "Domain");
	json_t *ma = json_object_get(c, "MaxAge");
	int64_t exp = v1_cookie_expires(c);
	const char *ss = v1_same_site(json_object_get(c, "SameSite"));
	char date[40];
	int rc = 0;

	if (json_is_string(path) && json_string_length(path) &&
	    v1_attr_ok(slice_make(json_string_value(path), json_string_length(path))))
		rc |= buf_printf(b, "; Path=%s", json_string_value(path));
	if (json_is_string(dom)) {
		struct slice d = slice_make(json_string_value(dom), json_string_length(dom));

		if (d.len && d.base[0] == '.') {
			d.base++;
			d.len--;
		}
		if (v1_domain_ok(d))
			rc |= buf_printf(b, "; Domain=%.*s", (int)d.len, d.base);
	}
	if (exp != INT64_MIN && v1_http_date(exp, date, sizeof(date)) == 0)
		rc |= buf_printf(b, "; Expires=%s", date);
	if (json_is_integer(ma) && json_integer_value(ma) > 0)
		rc |= buf_printf(b, "; Max-Age=%lld", (long long)json_integer_value(ma));
	else if (json_is_integer(ma) && json_integer_value(ma) < 0)
		rc |= buf_append_str(b, "; Max-Age=0");
	if (json_is_true(json_object_get(c, "HttpOnly")))
		rc |= buf_append_str(b, "; HttpOnly");
	if (json_is_true(json_object_get(c, "Secure")))
		rc |= buf_append_str(b, "; Secure");
	if (ss)
		rc |= buf_printf(b, "; SameSite=%s", ss);
	if (json_is_true(json_object_get(c, "Partitioned")))
		rc |= buf_append_str(b, "; Partitioned");
	return rc ? -E2BIG : 0;
}

/* One Go-style cookie object: `session` is kept, others become Set-Cookie lines. */
static const char *v1_resp_cookie(struct v1_req *r, struct v1_resp *rs, json_t *c)
{
	json_t *n = json_object_get(c, "Name"), *v = json_object_get(c, "Value");
	json_t *ma = json_object_get(c, "MaxAge");
	struct slice name, value;
	struct buf b;
	int quote, expired;
	int64_t exp;

	if (!json_is_object(c) || !json_is_string(n))
		return "a cookie is not an object with a Name";
	name = slice_make(json_string_value(n), json_string_length(n));
	value =
	    json_is_string(v) ? slice_make(json_string_value(v), json_string_length(v)) : LIT("");
	if (!v1_is_token(name.base, name.len) || !v1_cookie_value_ok(value)) {
		LOG_WARN("cluster %s sent a cookie with an invalid name or value; dropped",
			 r->tv->cluster);
		return NULL;
	}
	if (slice_eq(name, LIT("session"))) {
		exp = v1_cookie_expires(c);
		expired = (json_is_integer(ma) && json_integer_value(ma) < 0) ||
			  (exp != INT64_MIN && exp < time_now());
		v1_keep_session(r, value, expired);
		return NULL;
	}
	quote = json_is_true(json_object_get(c, "Quoted")) || memchr(value.base, ' ', value.len) ||
		memchr(value.base, ',', value.len);
	buf_init(&b, V1_MAX_COOKIE_LINE);
	if (buf_printf(&b, "%.*s=%s%.*s%s", (int)name.len, name.base, quote ? "\"" : "",
		       (int)value.len, value.base, quote ? "\"" : "") != 0 ||
	    v1_cookie_attrs(c, &b) != 0) {
		buf_free(&b);
		return "a cookie is too long";
	}
	if (rs->nowned >= TUNNEL_V1_MAX_HEADERS ||
	    v1_resp_add(rs, LIT("Set-Cookie"), slice_make(b.data, b.len)) != 0) {
		buf_free(&b);
		return "too many headers";
	}
	rs->owned[rs->nowned++] = b.data; /* freed by v1_resp_clear */
	return NULL;
}

static const char *v1_resp_cookies(struct v1_req *r, struct v1_resp *rs)
{
	const char *why;
	json_t *c;
	size_t i;

	if (rs->cookies == NULL)
		return NULL;
	json_array_foreach(rs->cookies, i, c)
	{
		why = v1_resp_cookie(r, rs, c);
		if (why)
			return why;
	}
	return NULL;
}

/* Answers r from its response frame; returns a reason when the frame is unusable. */
static const char *v1_answer(struct v1_req *r, json_t *root)
{
	json_t *st = json_object_get(root, "status"), *body = json_object_get(root, "body");
	json_t *cookies = json_object_get(root, "cookies");
	struct v1_resp rs;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	const char *why = NULL;
	struct http_request *req;

	memset(&rs, 0, sizeof(rs));
	if (!json_is_integer(st) || json_integer_value(st) < 200 || json_integer_value(st) > 599)
		return "status is missing or not an HTTP status from 200 to 599";
	if (cookies && !json_is_null(cookies) && !json_is_array(cookies))
		return "cookies is not an array";
	rs.cookies = json_is_array(cookies) ? cookies : NULL;
	if (body && !json_is_null(body)) {
		if (!json_is_string(body))
			return "body is not a base64 string";
		raw = malloc(base64_decoded_max(json_string_length(body)) + 1);
		if (raw == NULL)
			return "out of memory";
		if (base64_decode(json_string_value(body), json_string_length(body), raw,
				  &rawlen) != 0) {
			free(raw);
			return "body is not valid base64";
		}
	}
	why = v1_resp_headers(r, &rs, json_object_get(root, "headers"));
	if (why == NULL)
		why = v1_resp_cookies(r, &rs);
	if (why == NULL) {
		req = r->req;
		r->req = NULL;
		r->status = (int)json_integer_value(st);
		r->bytes_out = rawlen;
		v1_audit(r);
		http_respond(req, r->status, rs.h, rs.n, raw, rawlen);
		v1_req_free(r);
	}
	v1_resp_clear(&rs);
	free(raw);
	return why;
}

/* Counts a dropped frame; logs the first few and then one in V1_LOG_EVERY. */
static void v1_bad_frame(struct tunnel_v1 *tv, const char *what, const char *detail)
{
	tv->bad_frames++;
	if (tv->bad_frames <= V1_LOG_FIRST || tv->bad_frames % V1_LOG_EVERY == 0)
		LOG_WARN("tunnel v1 of %s: dropped %s%s%s (%llu dropped on this tunnel)",
			 tv->cluster, what, detail ? ": " : "", detail ? detail : "",
			 (unsigned long long)tv->bad_frames);
}

static struct v1_req *v1_find(struct tunnel_v1 *tv, struct slice id)
{
	struct v1_req *r;

	for (r = tv->inflight.head; r; r = r->next)
		if (slice_eq(id, slice_make(r->uuid, V1_UUID_LEN)))
			return r;
	return NULL;
}

static void v1_on_frame(struct tunnel_v1 *tv, json_t *root)
{
	json_t *id = json_object_get(root, "uuid");
	struct v1_req *r;
	const char *why;
	char shown[64];

	if (!json_is_string(id))
		id = json_object_get(root, "id"); /* early MicroCloud builds */
	if (!json_is_string(id)) {
		v1_bad_frame(tv, "a frame without a uuid", NULL);
		return;
	}
	r = v1_find(tv, slice_make(json_string_value(id), json_string_length(id)));
	if (r == NULL) {
		v1_printable(json_string_value(id), json_string_length(id), shown, sizeof(shown));
		v1_bad_frame(tv, "a response for a uuid no request is waiting for", shown);
		return;
	}
	why = v1_answer(r, root);
	if (why) {
		LOG_WARN("tunnel v1 of %s: invalid response to %s %s: %s", tv->cluster, r->method,
			 r->path, why);
		v1_fail(r, 502, "the cluster sent an invalid response (%s)", why);
	}
}

/* ---- the WebSocket ---- */

/*
 * Text and binary messages are both read as JSON (Go's ReadJSON, which the
 * reference uses, accepts either). wslay bounds a message by
 * TUNNEL_V1_MAX_FRAME before we see it.
 */
static void v1_ws_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	struct tunnel_v1 *tv = ws_data(w);
	char why[sizeof(((json_error_t *)0)->text)];
	json_error_t err;
	json_t *root;

	(void)opcode;
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL || !json_is_object(root)) {
		/* jansson quotes the peer's bytes near the error: keep the log line clean. */
		if (root == NULL)
			v1_printable(err.text, strnlen(err.text, sizeof(err.text)), why,
				     sizeof(why));
		v1_bad_frame(tv, "a frame that is not a JSON object", root ? NULL : why);
		json_decref(root);
		return;
	}
	v1_on_frame(tv, root);
	json_decref(root);
}

static void v1_ws_on_drain(struct ws *w)
{
	(void)w; /* queued frames are bounded by TUNNEL_V1_MAX_QUEUED at send time */
}

static void v1_on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* The tunnel is gone: every request of it gets 502 now, then the entry and jar go. */
static void v1_ws_on_close(struct ws *w, int code)
{
	struct tunnel_v1 *tv = ws_data(w);
	struct tunnel_entry *e = tv->e;
	char msg[160];

	tv->ws = NULL;
	LOG_INFO("tunnel v1 of %s closed (%d); failing %zu pending requests", tv->cluster, code,
		 tv->buffering.n + tv->inflight.n);
	snprintf(msg, sizeof(msg), "the tunnel to cluster %s closed before a response",
		 tv->cluster);
	v1_fail_list(&tv->inflight, 502, msg);
	v1_fail_list(&tv->buffering, 502, msg);
	tv->e = NULL;
	if (e) {
		e->ws = NULL;
		e->closing = 1;
		e->v1 = NULL;
		tunnels_unregister(e);
	}
	session_cookies_free(tv->jar); /* the cookies die with the tunnel */
	tv->jar = NULL;
	uv_timer_stop(&tv->timer);
	uv_close((uv_handle_t *)&tv->timer, v1_on_timer_closed);
}

static const struct ws_callbacks v1_ws_cbs = {
    .on_message = v1_ws_on_message,
    .on_drain = v1_ws_on_drain,
    .on_close = v1_ws_on_close,
};

void tunnel_v1_accept(struct server *srv, const char *cluster, struct http_request *req)
{
	struct tunnel_v1 *tv = calloc(1, sizeof(*tv));
	struct tunnel_entry *e = tunnels_entry_new(srv->tunnels, cluster, 1);
	struct session_cookies *jar = session_cookies_new(cluster);
	struct ws *ws;

	if (tv == NULL || e == NULL || jar == NULL) {
		free(tv);
		free(e);
		session_cookies_free(jar);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	tv->srv = srv;
	tv->jar = jar;
	snprintf(tv->cluster, sizeof(tv->cluster), "%s", cluster);
	ws = ws_server_accept(req, NULL, TUNNEL_V1_MAX_FRAME, &v1_ws_cbs, tv);
	if (ws == NULL) {
		free(tv);
		free(e);
		session_cookies_free(jar);
		return;
	}
	uv_timer_init(srv->loop, &tv->timer);
	tv->timer.data = tv;
	tv->ws = ws;
	tv->e = e;
	e->ws = ws;
	e->v1 = tv;
	tunnels_register(srv->tunnels, e);
}
