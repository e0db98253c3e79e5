/*
 * http_client.c - outbound HTTP/1.1 requests on llhttp, and the keep-alive
 * pool (http_pool) they may take connections from and give them back to.
 *
 * One struct http_client per request. The request head is queued on the
 * conn before it is even connected (conn keeps early bytes until the
 * handshake is done), or written at once on a reused connection. One timer
 * covers the connect, response and idle timeouts in turn.
 */
#include "net/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include "common/buf.h"
#include "common/log.h"
#include "net/http_hdr.h"

enum cl_state { CL_CONNECTING, CL_WAITING, CL_READING, CL_DONE };

struct hc_off {
	size_t name_off, name_len, value_off, value_len;
};

/* An idle connection in a pool; freed in its conn's on_close or when taken. */
struct pool_conn {
	TAILQ_ENTRY(pool_conn) pc_link; /* oldest first */
	struct http_pool *pc_pool;
	struct conn *pc_conn;
	uint64_t pc_since; /* uv_now when it went idle */
	char *pc_key;
};

struct http_pool {
	uv_loop_t *hp_loop;
	uv_timer_t hp_timer;
	TAILQ_HEAD(pool_idle, pool_conn) hp_idle;
	size_t hp_nidle, hp_max_idle;
	uint64_t hp_idle_ms;
	unsigned hp_users; /* requests holding the pool, + 1 until closed */
	int hp_closed;
	unsigned long hp_reused, hp_retried;
};

struct http_client {
	uv_loop_t *loop;
	struct conn *conn;
	uv_timer_t timer;
	llhttp_t parser;
	struct http_client_opts opts;
	const struct http_client_callbacks *cbs;
	void *data;
	enum cl_state state;
	int chunked_body;
	int head_request;
	int in_value;
	size_t trailer_bytes; /* of the response's chunk trailers (dropped) */
	int finished; /* on_done delivered or cancelled: no more callbacks */
	int upgraded;
	int informational; /* parsing a 1xx other than 101: skipped */
	int body_done;	   /* the request body is complete (or there is none) */
	int64_t body_left; /* bytes still to come of a Content-Length body */
	int complete;	   /* the response was read to its end */
	int keep_alive;	   /* ... and the server lets the connection be reused */
	int no_reuse;	   /* the caller handles Connection or Upgrade itself */
	int reused;	   /* the connection came from the pool */
	int got_bytes;	   /* some of the response arrived on this connection */
	struct http_pool *pool;
	char *pool_key;
	struct buf retry; /* the request head, to send again on a fresh connection */
	struct buf head;
	struct hc_off hoff[HTTP_MAX_HEADERS];
	size_t nh;
	struct http_response_head resp;
};

static llhttp_settings_t cl_settings;
static int cl_settings_ready;

void *http_client_data(const struct http_client *cl)
{
	return cl->data;
}

static void pool_put(struct http_pool *p, struct conn *c, const char *key);
static void pool_unuse(struct http_pool *p);

static void cl_on_timer_closed(uv_handle_t *h)
{
	struct http_client *cl = h->data;

	buf_free(&cl->head);
	buf_free(&cl->retry);
	free(cl->pool_key);
	if (cl->pool)
		pool_unuse(cl->pool);
	free(cl);
}

/* The connection may serve another request: see http_client.h. */
static int cl_reusable(const struct http_client *cl)
{
	return cl->pool && cl->complete && cl->keep_alive && cl->body_done && !cl->no_reuse &&
	       !cl->upgraded && conn_write_pending(cl->conn) == 0 && !conn_is_closing(cl->conn);
}

/* Frees once both the conn and the timer are gone; a clean conn goes back to the pool. */
static void cl_release(struct http_client *cl)
{
	uv_timer_stop(&cl->timer);
	if (cl->conn) {
		conn_set_data(cl->conn, NULL);
		if (cl_reusable(cl))
			pool_put(cl->pool, cl->conn, cl->pool_key);
		else
			conn_close(cl->conn);
		cl->conn = NULL;
	}
	uv_close((uv_handle_t *)&cl->timer, cl_on_timer_closed);
}

static void cl_done(struct http_client *cl, int err)
{
	if (cl->finished)
		return;
	cl->finished = 1;
	cl->state = CL_DONE;
	if (cl->cbs->on_done)
		cl->cbs->on_done(cl, err);
	cl_release(cl);
}

static void cl_on_timer(uv_timer_t *t)
{
	struct http_client *cl = t->data;

	cl_done(cl, HTTP_CLIENT_ETIMEDOUT);
}

static void cl_arm(struct http_client *cl, uint64_t ms)
{
	uv_timer_start(&cl->timer, cl_on_timer, ms, 0);
}

/* ---- parser ---- */

static int cl_append(struct http_client *cl, const char *at, size_t len)
{
	return buf_append(&cl->head, at, len) < 0 ? -1 : 0;
}

/*
 * Chunk trailers arrive through the header callbacks once the head was
 * handed out (sealed, see cl_on_headers_complete). They are dropped; their
 * bytes count against the header cap.
 */
static int cl_trailer(struct http_client *cl, size_t len)
{
	if (len > HTTP_CLIENT_MAX_HEADER_BYTES - cl->trailer_bytes)
		return -1;
	cl->trailer_bytes += len;
	return 0;
}

static int cl_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_client *cl = p->data;

	if (cl->head.sealed)
		return cl_trailer(cl, len);
	if (cl->in_value || cl->nh == 0) {
		if (cl->nh >= HTTP_MAX_HEADERS)
			return -1;
		memset(&cl->hoff[cl->nh], 0, sizeof(cl->hoff[0]));
		cl->hoff[cl->nh].name_off = cl->head.len;
		cl->nh++;
		cl->in_value = 0;
	}
	cl->hoff[cl->nh - 1].name_len += len;
	return cl_append(cl, at, len);
}

static int cl_on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_client *cl = p->data;

	if (cl->head.sealed)
		return cl_trailer(cl, len);
	if (!cl->in_value) {
		cl->hoff[cl->nh - 1].value_off = cl->head.len;
		cl->in_value = 1;
	}
	cl->hoff[cl->nh - 1].value_len += len;
	return cl_append(cl, at, len);
}

static int cl_on_headers_complete(llhttp_t *p)
{
	struct http_client *cl = p->data;
	size_t i;

	if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
		/* 100 Continue and friends: not the response; wait for it. */
		cl->informational = 1;
		cl->nh = 0;
		cl->in_value = 0;
		buf_reset(&cl->head);
		return 0;
	}
	/* The slices below point into the head: it never moves again. */
	buf_seal(&cl->head);
	cl->resp.status = p->status_code;
	cl->resp.nheaders = cl->nh;
	for (i = 0; i < cl->nh; i++) {
		cl->resp.headers[i].name =
			slice_make(cl->head.data + cl->hoff[i].name_off, cl->hoff[i].name_len);
		cl->resp.headers[i].value =
			slice_make(cl->head.data + cl->hoff[i].value_off, cl->hoff[i].value_len);
	}
	cl->resp.content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
	cl->resp.peer_fp = cl->conn ? conn_peer_fingerprint(cl->conn) : NULL;
	cl->state = CL_READING;
	cl_arm(cl, cl->opts.idle_timeout_ms);
	if (p->status_code == 101)
		return 2; /* upgrade: execute returns HPE_PAUSED_UPGRADE */
	if (cl->cbs->on_head)
		cl->cbs->on_head(cl, &cl->resp);
	if (cl->finished)
		return -1;
	return cl->head_request ? 1 : 0;
}

static int cl_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_client *cl = p->data;

	cl_arm(cl, cl->opts.idle_timeout_ms);
	if (cl->cbs->on_body)
		cl->cbs->on_body(cl, at, len);
	return cl->finished ? -1 : 0;
}

/* The response ended; the caller of llhttp delivers on_done (cl_complete). */
static int cl_on_message_complete(llhttp_t *p)
{
	struct http_client *cl = p->data;

	if (cl->informational) {
		cl->informational = 0;
		return 0;
	}
	if (cl->resp.status == 101)
		return 0;
	cl->complete = 1;
	cl->keep_alive = llhttp_should_keep_alive(p);
	return HPE_PAUSED;
}

static void cl_settings_init(void)
{
	if (cl_settings_ready)
		return;
	llhttp_settings_init(&cl_settings);
	cl_settings.on_header_field = cl_on_header_field;
	cl_settings.on_header_value = cl_on_header_value;
	cl_settings.on_headers_complete = cl_on_headers_complete;
	cl_settings.on_body = cl_on_body;
	cl_settings.on_message_complete = cl_on_message_complete;
	cl_settings_ready = 1;
}

/* ---- conn callbacks ---- */

static void cl_on_open(struct conn *c)
{
	struct http_client *cl = conn_data(c);

	cl->state = CL_WAITING;
	/* While the body uploads, silence is what counts; then the answer's wait. */
	cl_arm(cl, cl->body_done ? cl->opts.response_timeout_ms : cl->opts.idle_timeout_ms);
}

/* The request is fully sent: from now the response timeout runs. */
static void cl_body_complete(struct http_client *cl)
{
	cl->body_done = 1;
	if (cl->state == CL_WAITING)
		cl_arm(cl, cl->opts.response_timeout_ms);
}

static void cl_hand_over(struct http_client *cl, const char *extra, size_t extra_len)
{
	struct conn *c = cl->conn;

	cl->finished = 1;
	cl->upgraded = 1;
	cl->conn = NULL;
	conn_set_data(c, NULL);
	conn_set_callbacks(c, NULL);
	if (cl->cbs->on_upgrade)
		cl->cbs->on_upgrade(cl, &cl->resp, c, extra, extra_len);
	else
		conn_close(c);
	cl_release(cl);
}

static void cl_on_data(struct conn *c, const char *data, size_t len)
{
	struct http_client *cl = conn_data(c);
	llhttp_errno_t err;

	if (cl == NULL || cl->finished)
		return;
	if (len)
		cl->got_bytes = 1;
	err = llhttp_execute(&cl->parser, data, len);
	if (cl->finished)
		return;
	if (cl->complete) {
		/* Bytes after the response: the server is not speaking HTTP/1.1 to us. */
		if (err != HPE_PAUSED || llhttp_get_error_pos(&cl->parser) != data + len)
			cl->keep_alive = 0;
		cl_done(cl, 0);
		return;
	}
	if (err == HPE_OK)
		return;
	if (err == HPE_PAUSED_UPGRADE && cl->resp.status == 101) {
		const char *pos = llhttp_get_error_pos(&cl->parser);
		size_t used = (size_t)(pos - data);

		if (cl->cbs->on_upgrade) {
			cl_hand_over(cl, data + used, len - used);
			return;
		}
		cl_done(cl, -EPROTO);
		return;
	}
	LOG_DEBUG("bad response: %s", llhttp_errno_name(err));
	cl_done(cl, -EPROTO);
}

static int cl_retry(struct http_client *cl);

static void cl_on_end(struct conn *c, int err)
{
	struct http_client *cl = conn_data(c);

	if (cl == NULL || cl->finished)
		return;
	if (err == 0 && cl->state == CL_READING) {
		/* A body delimited by the end of the connection. */
		llhttp_errno_t e = llhttp_finish(&cl->parser);

		if (cl->finished)
			return;
		if (e == HPE_OK || cl->complete) {
			cl->keep_alive = 0;
			cl_done(cl, 0);
			return;
		}
	}
	/* A pooled connection the server had closed meanwhile: once more, afresh. */
	if (cl->reused && !cl->got_bytes && cl->retry.len && cl_retry(cl) == 0)
		return;
	cl_done(cl, err ? err : -ECONNRESET);
}

static void cl_on_drain(struct conn *c)
{
	struct http_client *cl = conn_data(c);

	if (cl && !cl->finished && cl->cbs->on_drain)
		cl->cbs->on_drain(cl);
}

static const struct conn_callbacks cl_conn_cbs = {
	.on_open = cl_on_open,
	.on_data = cl_on_data,
	.on_end = cl_on_end,
	.on_drain = cl_on_drain,
};

/* ---- API ---- */

/* Appends the pieces in turn: 0, or -1 once one does not fit. */
static int cl_append3(struct buf *b, struct slice x, struct slice y, struct slice z)
{
	if (buf_append(b, x.base, x.len) < 0 || buf_append(b, y.base, y.len) < 0 ||
	    buf_append(b, z.base, z.len) < 0)
		return -1;
	return 0;
}

/*
 * The request head. Built with appends rather than printf: this runs for
 * every tunnelled request.
 */
static int cl_build_head(struct buf *b, const struct http_client_opts *o, const char *method,
			 const char *target, const struct http_header *hdrs, size_t n,
			 int64_t body_len)
{
	int rc = cl_append3(b, slice_cstr(method), LIT(" "), slice_cstr(target));
	int have_host = 0;
	size_t i;

	if (rc == 0)
		rc = buf_append_str(b, " HTTP/1.1\r\n");
	for (i = 0; i < n; i++)
		if (slice_eq_nocase(hdrs[i].name, LIT("Host")))
			have_host = 1;
	if (rc == 0 && !have_host) {
		if (o->host_header)
			rc = buf_printf(b, "Host: %s\r\n", o->host_header);
		else if (o->unix_path)
			rc = buf_append_str(b, "Host: lxd\r\n");
		else if (strchr(o->host, ':'))
			rc = buf_printf(b, "Host: [%s]:%d\r\n", o->host, o->port);
		else
			rc = buf_printf(b, "Host: %s:%d\r\n", o->host, o->port);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		rc = cl_append3(b, hdrs[i].name, LIT(": "), hdrs[i].value);
		if (rc == 0)
			rc = buf_append(b, "\r\n", 2);
	}
	if (rc == 0 && body_len > 0)
		rc = buf_printf(b, "Content-Length: %lld\r\n", (long long)body_len);
	else if (rc == 0 && body_len < 0)
		rc = buf_append_str(b, "Transfer-Encoding: chunked\r\n");
	if (rc == 0)
		rc = buf_append_str(b, "\r\n");
	return rc < 0 ? -1 : 0;
}

/* Opens a new connection for cl and queues head on it. 0 or a negative code. */
static int cl_connect(struct http_client *cl, const char *head, size_t len)
{
	const struct http_client_opts *o = &cl->opts;
	int rc;

	cl->conn = conn_new(cl->loop, o->tls, &cl_conn_cbs, cl);
	if (cl->conn == NULL)
		return -ENOMEM;
	cl->state = CL_CONNECTING;
	if (o->pin)
		conn_set_pin(cl->conn, o->pin);
	rc = conn_write(cl->conn, head, len) < 0 ? -EIO : 0;
	if (rc == 0)
		rc = o->unix_path ? conn_connect_unix(cl->conn, o->unix_path)
				  : conn_connect_tcp(cl->conn, o->host, o->port);
	if (rc < 0)
		return rc;
	cl_arm(cl, o->connect_timeout_ms);
	return 0;
}

/* Sends the saved request head again on a fresh connection (see cl_on_end). */
static int cl_retry(struct http_client *cl)
{
	struct conn *old = cl->conn;

	conn_set_data(old, NULL);
	conn_close(old);
	cl->conn = NULL;
	cl->reused = 0;
	cl->got_bytes = 0;
	cl->pool->hp_retried++;
	if (cl_connect(cl, cl->retry.data, cl->retry.len) == 0) {
		buf_free(&cl->retry);
		return 0;
	}
	if (cl->conn) {
		conn_set_data(cl->conn, NULL);
		conn_close(cl->conn);
		cl->conn = NULL;
	}
	return -1;
}

static struct conn *pool_take(struct http_pool *p, const char *key);

/*
 * Sends head on an idle pooled connection, if one to this upstream works.
 * Returns 1 when the request is under way on it, else 0.
 */
static int cl_use_pooled(struct http_client *cl, const char *head, size_t len)
{
	struct conn *c;

	while ((c = pool_take(cl->pool, cl->pool_key)) != NULL) {
		conn_set_callbacks(c, &cl_conn_cbs);
		conn_set_data(c, cl);
		if (conn_write(c, head, len) < 0) {
			conn_set_data(c, NULL);
			conn_close(c);
			continue;
		}
		cl->conn = c;
		cl->reused = 1;
		cl->pool->hp_reused++;
		cl->state = CL_WAITING;
		cl_arm(cl, cl->body_done ? cl->opts.response_timeout_ms : cl->opts.idle_timeout_ms);
		return 1;
	}
	return 0;
}

/* RFC 9110 9.2.2; only without a body is a request cheap to send twice. */
static int cl_idempotent(const char *method)
{
	static const char *const m[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(method, m[i]) == 0)
			return 1;
	return 0;
}

/* The pool key of an upstream: where, and with which TLS settings. NULL: out of memory. */
static char *cl_pool_key(const struct http_client_opts *o)
{
	struct buf b;
	int rc;

	buf_init(&b, 4096);
	if (o->unix_path)
		rc = cl_append3(&b, LIT("unix:"), slice_cstr(o->unix_path), LIT(""));
	else
		rc = buf_printf(&b, "tcp:%s|%d|%p|%s|%s", o->host, o->port, (void *)o->tls,
				o->pin ? o->pin : "", o->host_header ? o->host_header : "");
	if (rc != 0 || buf_append(&b, "", 1) != 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* Sets up pooling for cl; a request that cannot use the pool just goes without it. */
static void cl_pool_init(struct http_client *cl, const char *method,
			 const struct http_header *hdrs, size_t n, int64_t body_len)
{
	size_t i;

	if (cl->opts.pool == NULL || cl->opts.pool->hp_closed)
		return;
	cl->pool_key = cl_pool_key(&cl->opts);
	if (cl->pool_key == NULL)
		return;
	cl->pool = cl->opts.pool;
	cl->pool->hp_users++;
	for (i = 0; i < n; i++)
		if (slice_eq_nocase(hdrs[i].name, LIT("Connection")) ||
		    slice_eq_nocase(hdrs[i].name, LIT("Upgrade")))
			cl->no_reuse = 1;
	buf_init(&cl->retry, HTTP_CLIENT_MAX_HEADER_BYTES * 2);
	(void)body_len;
	(void)method;
}

struct http_client *http_client_request(uv_loop_t *loop, const struct http_client_opts *opts,
					const char *method, const char *target,
					const struct http_header *hdrs, size_t n, int64_t body_len,
					const struct http_client_callbacks *cbs, void *data)
{
	struct http_client *cl = calloc(1, sizeof(*cl));
	struct buf req;
	int rc;

	if (cl == NULL)
		return NULL;
	cl_settings_init();
	cl->loop = loop;
	cl->opts = *opts;
	if (!cl->opts.connect_timeout_ms)
		cl->opts.connect_timeout_ms = HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
	if (!cl->opts.response_timeout_ms)
		cl->opts.response_timeout_ms = HTTP_CLIENT_DEFAULT_RESPONSE_TIMEOUT_MS;
	if (!cl->opts.idle_timeout_ms)
		cl->opts.idle_timeout_ms = HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
	cl->cbs = cbs;
	cl->data = data;
	cl->chunked_body = body_len < 0;
	cl->body_done = body_len == 0;
	cl->body_left = body_len > 0 ? body_len : 0;
	cl->head_request = strcmp(method, "HEAD") == 0;
	buf_init(&cl->head, HTTP_CLIENT_MAX_HEADER_BYTES);
	llhttp_init(&cl->parser, HTTP_RESPONSE, &cl_settings);
	cl->parser.data = cl;
	uv_timer_init(loop, &cl->timer);
	cl->timer.data = cl;
	cl_pool_init(cl, method, hdrs, n, body_len);

	buf_init(&req, HTTP_CLIENT_MAX_HEADER_BYTES * 2);
	rc = cl_build_head(&req, opts, method, target, hdrs, n, body_len);
	if (rc == 0 && cl->pool && cl_use_pooled(cl, req.data, req.len)) {
		/* Kept for one more try on a fresh connection, when that is safe. */
		if (body_len == 0 && cl_idempotent(method))
			buf_append(&cl->retry, req.data, req.len);
		buf_free(&req);
		return cl;
	}
	if (rc == 0)
		rc = cl_connect(cl, req.data, req.len);
	buf_free(&req);
	if (rc < 0)
		goto fail;
	return cl;
fail:
	cl->finished = 1;
	cl_release(cl);
	return NULL;
}

int http_client_write(struct http_client *cl, const void *data, size_t len)
{
	char head[24];
	int n, rc;

	if (cl->finished || cl->conn == NULL)
		return -EPIPE;
	if (len == 0)
		return 1;
	if (cl->state == CL_WAITING && !cl->body_done)
		cl_arm(cl, cl->opts.idle_timeout_ms);
	if (!cl->chunked_body) {
		cl->body_left -= (int64_t)len;
		if (cl->body_left <= 0 && !cl->body_done)
			cl_body_complete(cl);
		return conn_write(cl->conn, data, len);
	}
	n = snprintf(head, sizeof(head), "%zx\r\n", len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	rc = conn_write(cl->conn, head, (size_t)n);
	if (rc >= 0)
		rc = conn_write(cl->conn, data, len);
	if (rc >= 0)
		rc = conn_write(cl->conn, "\r\n", 2);
	return rc;
}

int http_client_end(struct http_client *cl)
{
	if (cl->finished || cl->conn == NULL)
		return -EPIPE;
	if (!cl->body_done)
		cl_body_complete(cl);
	if (cl->chunked_body)
		return conn_write(cl->conn, "0\r\n\r\n", 5) < 0 ? -EPIPE : 0;
	return 0;
}

void http_client_pause(struct http_client *cl)
{
	if (cl->conn)
		conn_read_stop(cl->conn);
	uv_timer_stop(&cl->timer);
}

void http_client_resume(struct http_client *cl)
{
	if (cl->finished)
		return;
	if (cl->conn)
		conn_read_start(cl->conn);
	cl_arm(cl, cl->opts.idle_timeout_ms);
}

void http_client_cancel(struct http_client *cl)
{
	if (cl == NULL || cl->finished)
		return;
	cl->finished = 1;
	cl_release(cl);
}

/* ---- the keep-alive pool ---- */

static void pool_on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* One user less (a request, or the owner by closing); frees the pool after the last. */
static void pool_unuse(struct http_pool *p)
{
	if (--p->hp_users == 0)
		uv_close((uv_handle_t *)&p->hp_timer, pool_on_timer_closed);
}

static void pool_unlink(struct http_pool *p, struct pool_conn *pc)
{
	TAILQ_REMOVE(&p->hp_idle, pc, pc_link);
	pc->pc_pool = NULL;
	p->hp_nidle--;
}

/* Closes an idle connection; pc is freed in the conn's on_close. */
static void pool_drop(struct http_pool *p, struct pool_conn *pc)
{
	pool_unlink(p, pc);
	conn_close(pc->pc_conn);
}

static void pool_pc_free(struct pool_conn *pc)
{
	free(pc->pc_key);
	free(pc);
}

/* An idle connection must stay silent: data or an end means it is done for. */
static void pool_idle_on_data(struct conn *c, const char *data, size_t len)
{
	struct pool_conn *pc = conn_data(c);

	(void)data;
	(void)len;
	if (pc && pc->pc_pool)
		pool_drop(pc->pc_pool, pc);
}

static void pool_idle_on_end(struct conn *c, int err)
{
	(void)err;
	pool_idle_on_data(c, NULL, 0);
}

static void pool_idle_on_close(struct conn *c)
{
	struct pool_conn *pc = conn_data(c);

	if (pc == NULL)
		return;
	if (pc->pc_pool)
		pool_unlink(pc->pc_pool, pc);
	pool_pc_free(pc);
}

static const struct conn_callbacks pool_idle_cbs = {
    .on_data = pool_idle_on_data,
    .on_end = pool_idle_on_end,
    .on_close = pool_idle_on_close,
};

static void pool_on_timer(uv_timer_t *t);

/* Closes the connections idle for idle_ms, then waits for the next one to be. */
static void pool_expire(struct http_pool *p)
{
	uint64_t now = uv_now(p->hp_loop);
	struct pool_conn *pc;

	while ((pc = TAILQ_FIRST(&p->hp_idle)) != NULL && now - pc->pc_since >= p->hp_idle_ms)
		pool_drop(p, pc);
	if (pc)
		uv_timer_start(&p->hp_timer, pool_on_timer, pc->pc_since + p->hp_idle_ms - now, 0);
	else
		uv_timer_stop(&p->hp_timer);
}

static void pool_on_timer(uv_timer_t *t)
{
	pool_expire(t->data);
}

/* Takes the most recently used idle connection to key, or NULL. */
static struct conn *pool_take(struct http_pool *p, const char *key)
{
	struct pool_conn *pc, *prev;
	struct conn *c;

	for (pc = TAILQ_LAST(&p->hp_idle, pool_idle); pc; pc = prev) {
		prev = TAILQ_PREV(pc, pool_idle, pc_link);
		if (strcmp(pc->pc_key, key) != 0)
			continue;
		c = pc->pc_conn;
		pool_unlink(p, pc);
		conn_set_callbacks(c, NULL);
		conn_set_data(c, NULL);
		pool_pc_free(pc);
		if (!conn_is_closing(c))
			return c;
	}
	return NULL;
}

/* Keeps c for a later request to key, or closes it when the pool is full or closed. */
static void pool_put(struct http_pool *p, struct conn *c, const char *key)
{
	struct pool_conn *pc;

	if (p->hp_closed || p->hp_max_idle == 0 || (pc = calloc(1, sizeof(*pc))) == NULL) {
		conn_close(c);
		return;
	}
	pc->pc_key = strdup(key);
	if (pc->pc_key == NULL) {
		free(pc);
		conn_close(c);
		return;
	}
	if (p->hp_nidle >= p->hp_max_idle)
		pool_drop(p, TAILQ_FIRST(&p->hp_idle));
	pc->pc_pool = p;
	pc->pc_conn = c;
	pc->pc_since = uv_now(p->hp_loop);
	TAILQ_INSERT_TAIL(&p->hp_idle, pc, pc_link);
	p->hp_nidle++;
	conn_set_callbacks(c, &pool_idle_cbs);
	conn_set_data(c, pc);
	conn_read_start(c);
	if (!uv_is_active((uv_handle_t *)&p->hp_timer))
		pool_expire(p);
}

struct http_pool *http_pool_new(uv_loop_t *loop, size_t max_idle, uint64_t idle_ms)
{
	struct http_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->hp_loop = loop;
	p->hp_max_idle = max_idle;
	p->hp_idle_ms = idle_ms ? idle_ms : HTTP_POOL_DEFAULT_IDLE_MS;
	p->hp_users = 1;
	TAILQ_INIT(&p->hp_idle);
	uv_timer_init(loop, &p->hp_timer);
	p->hp_timer.data = p;
	return p;
}

void http_pool_close(struct http_pool *p)
{
	if (p == NULL || p->hp_closed)
		return;
	p->hp_closed = 1;
	while (!TAILQ_EMPTY(&p->hp_idle))
		pool_drop(p, TAILQ_FIRST(&p->hp_idle));
	uv_timer_stop(&p->hp_timer);
	pool_unuse(p);
}

void http_pool_stats(const struct http_pool *p, struct http_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	out->idle = p->hp_nidle;
	out->reused = p->hp_reused;
	out->retried = p->hp_retried;
}

/* ---- buffered fetch ---- */

struct http_fetch {
	struct http_client *cl;
	struct buf body;
	struct http_fetch_result res;
	http_fetch_cb cb;
	void *arg;
};

static void fetch_free(struct http_fetch *f)
{
	http_fetch_result_clear(&f->res);
	buf_free(&f->body);
	free(f);
}

/* Delivers the result once (with the body read so far unless cut), then frees the fetch. */
static void fetch_finish(struct http_fetch *f, int err, int with_body)
{
	f->cl = NULL;
	f->res.err = err;
	if (with_body)
		f->res.body = buf_steal(&f->body, &f->res.body_len);
	f->cb(&f->res, f->arg);
	fetch_free(f);
}

static void fetch_on_head(struct http_client *cl, const struct http_response_head *h)
{
	struct http_fetch *f = http_client_data(cl);
	const struct http_header *hs = h->headers;
	struct slice v;
	int n;

	f->res.status = h->status;
	v = http_hdr_get(hs, h->nheaders, LIT("Content-Type"));
	if (v.base)
		f->res.content_type = slice_dup(v);
	v = http_hdr_get(hs, h->nheaders, LIT("Retry-After"));
	if (v.base)
		f->res.retry_after = slice_dup(v);
	if (h->peer_fp) {
		n = snprintf(f->res.peer_fp, sizeof(f->res.peer_fp), "%s", h->peer_fp);
		if (n < 0 || (size_t)n >= sizeof(f->res.peer_fp))
			f->res.peer_fp[0] = '\0';
	}
}

static void fetch_on_body(struct http_client *cl, const char *data, size_t len)
{
	struct http_fetch *f = http_client_data(cl);

	if (buf_append(&f->body, data, len) == 0)
		return;
	/* Past the cap (or out of memory): give up on this response. */
	http_client_cancel(cl);
	fetch_finish(f, -E2BIG, 0);
}

static void fetch_on_done(struct http_client *cl, int err)
{
	fetch_finish(http_client_data(cl), err, 1);
}

static const struct http_client_callbacks fetch_cbs = {
	.on_head = fetch_on_head,
	.on_body = fetch_on_body,
	.on_done = fetch_on_done,
};

struct http_fetch *http_fetch_start(uv_loop_t *loop, const struct http_client_opts *opts,
				    const char *method, const char *target,
				    const struct http_header *hdrs, size_t n, const void *body,
				    size_t body_len, size_t max_response, http_fetch_cb cb,
				    void *arg)
{
	struct http_fetch *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	buf_init(&f->body, max_response);
	f->cb = cb;
	f->arg = arg;
	f->cl = http_client_request(loop, opts, method, target, hdrs, n, (int64_t)body_len,
				    &fetch_cbs, f);
	if (f->cl == NULL) {
		fetch_free(f);
		return NULL;
	}
	/* Before the connection is up the bytes are only queued: this cannot fail. */
	if (body_len && http_client_write(f->cl, body, body_len) < 0) {
		http_client_cancel(f->cl);
		fetch_free(f);
		return NULL;
	}
	return f;
}

void http_fetch_cancel(struct http_fetch *f)
{
	if (f == NULL)
		return;
	http_client_cancel(f->cl);
	fetch_free(f);
}

int http_fetch(uv_loop_t *loop, const struct http_client_opts *opts, const char *method,
	       const char *target, const struct http_header *hdrs, size_t n, const void *body,
	       size_t body_len, size_t max_response, http_fetch_cb cb, void *arg)
{
	return http_fetch_start(loop, opts, method, target, hdrs, n, body, body_len, max_response,
				cb, arg)
		       ? 0
		       : -EIO;
}

void http_fetch_result_clear(struct http_fetch_result *res)
{
	free(res->body);
	free(res->content_type);
	free(res->retry_after);
	res->body = res->content_type = res->retry_after = NULL;
	res->body_len = 0;
}

struct fetch_sync {
	struct http_fetch_result *out;
	int done;
};

static void fetch_sync_cb(struct http_fetch_result *res, void *arg)
{
	struct fetch_sync *s = arg;

	*s->out = *res;
	/* Keep the buffers: ownership moves to the caller. */
	res->body = res->content_type = res->retry_after = NULL;
	s->done = 1;
}

int http_fetch_sync(const struct http_client_opts *opts, const char *method, const char *target,
		    const struct http_header *hdrs, size_t n, const void *body, size_t body_len,
		    size_t max_response, struct http_fetch_result *res)
{
	struct fetch_sync s = {res, 0};
	uv_loop_t loop;
	int rc;

	memset(res, 0, sizeof(*res));
	if (uv_loop_init(&loop) != 0)
		return -ENOMEM;
	rc = http_fetch(&loop, opts, method, target, hdrs, n, body, body_len, max_response,
			fetch_sync_cb, &s);
	if (rc == 0)
		uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (rc < 0)
		return rc;
	return res->err;
}
