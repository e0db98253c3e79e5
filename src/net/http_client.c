/*
 * http_client.c - outbound HTTP/1.1 requests on llhttp.
 *
 * One struct http_client per request and connection. The request head is
 * queued on the conn before it is even connected (conn keeps early bytes
 * until the handshake is done). One timer covers the connect, response and
 * idle timeouts in turn.
 */
#include "net/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

enum cl_state { CL_CONNECTING, CL_WAITING, CL_READING, CL_DONE };

struct hc_off {
	size_t name_off, name_len, value_off, value_len;
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
	int finished; /* on_done delivered or cancelled: no more callbacks */
	int upgraded;
	int informational; /* parsing a 1xx other than 101: skipped */
	int body_done;	   /* the request body is complete (or there is none) */
	int64_t body_left; /* bytes still to come of a Content-Length body */
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

static void cl_on_timer_closed(uv_handle_t *h)
{
	struct http_client *cl = h->data;

	buf_free(&cl->head);
	free(cl);
}

/* Frees once both the conn and the timer are gone. */
static void cl_release(struct http_client *cl)
{
	uv_timer_stop(&cl->timer);
	if (cl->conn) {
		conn_set_data(cl->conn, NULL);
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

static int cl_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_client *cl = p->data;

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

static int cl_on_message_complete(llhttp_t *p)
{
	struct http_client *cl = p->data;

	if (cl->informational) {
		cl->informational = 0;
		return 0;
	}
	if (cl->resp.status == 101)
		return 0;
	cl_done(cl, 0);
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
	err = llhttp_execute(&cl->parser, data, len);
	if (cl->finished)
		return;
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

static void cl_on_end(struct conn *c, int err)
{
	struct http_client *cl = conn_data(c);

	if (cl == NULL || cl->finished)
		return;
	if (err == 0 && cl->state == CL_READING) {
		/* A body delimited by the end of the connection. */
		if (llhttp_finish(&cl->parser) == HPE_OK && !cl->finished) {
			cl_done(cl, 0);
			return;
		}
		if (cl->finished)
			return;
	}
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

static int cl_build_head(struct buf *b, const struct http_client_opts *o, const char *method,
			 const char *target, const struct http_header *hdrs, size_t n,
			 int64_t body_len)
{
	int rc = buf_printf(b, "%s %s HTTP/1.1\r\n", method, target);
	int have_host = 0;
	size_t i;

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
	for (i = 0; rc == 0 && i < n; i++)
		rc = buf_printf(b, "%.*s: %.*s\r\n", (int)hdrs[i].name.len, hdrs[i].name.base,
				(int)hdrs[i].value.len, hdrs[i].value.base);
	if (rc == 0 && body_len > 0)
		rc = buf_printf(b, "Content-Length: %lld\r\n", (long long)body_len);
	else if (rc == 0 && body_len < 0)
		rc = buf_append_str(b, "Transfer-Encoding: chunked\r\n");
	if (rc == 0)
		rc = buf_append_str(b, "\r\n");
	return rc;
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

	cl->conn = conn_new(loop, opts->tls, &cl_conn_cbs, cl);
	if (cl->conn == NULL)
		goto fail;
	if (opts->pin)
		conn_set_pin(cl->conn, opts->pin);
	buf_init(&req, HTTP_CLIENT_MAX_HEADER_BYTES * 2);
	rc = cl_build_head(&req, opts, method, target, hdrs, n, body_len);
	if (rc == 0)
		rc = conn_write(cl->conn, req.data, req.len) < 0 ? -EIO : 0;
	buf_free(&req);
	if (rc == 0)
		rc = opts->unix_path ? conn_connect_unix(cl->conn, opts->unix_path)
				     : conn_connect_tcp(cl->conn, opts->host, opts->port);
	if (rc < 0)
		goto fail;
	cl_arm(cl, cl->opts.connect_timeout_ms);
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

/* ---- buffered fetch ---- */

struct fetch_ctx {
	struct buf body;
	struct http_fetch_result res;
	http_fetch_cb cb;
	void *arg;
	int too_big;
};

static struct slice fetch_find(const struct http_response_head *h, struct slice name)
{
	size_t i;

	for (i = 0; i < h->nheaders; i++)
		if (slice_eq_nocase(h->headers[i].name, name))
			return h->headers[i].value;
	return SLICE_NULL;
}

static void fetch_on_head(struct http_client *cl, const struct http_response_head *h)
{
	struct fetch_ctx *f = http_client_data(cl);
	struct slice v;

	f->res.status = h->status;
	v = fetch_find(h, LIT("Content-Type"));
	if (v.base)
		f->res.content_type = slice_dup(v);
	v = fetch_find(h, LIT("Retry-After"));
	if (v.base)
		f->res.retry_after = slice_dup(v);
	if (h->peer_fp)
		snprintf(f->res.peer_fp, sizeof(f->res.peer_fp), "%s", h->peer_fp);
}

static void fetch_on_body(struct http_client *cl, const char *data, size_t len)
{
	struct fetch_ctx *f = http_client_data(cl);

	if (buf_append(&f->body, data, len) < 0) {
		f->too_big = 1;
		http_client_cancel(cl);
		f->res.err = -E2BIG;
		f->cb(&f->res, f->arg);
		http_fetch_result_clear(&f->res);
		buf_free(&f->body);
		free(f);
	}
}

static void fetch_on_done(struct http_client *cl, int err)
{
	struct fetch_ctx *f = http_client_data(cl);

	f->res.err = err;
	f->res.body = buf_steal(&f->body, &f->res.body_len);
	f->cb(&f->res, f->arg);
	http_fetch_result_clear(&f->res);
	free(f);
}

static const struct http_client_callbacks fetch_cbs = {
	.on_head = fetch_on_head,
	.on_body = fetch_on_body,
	.on_done = fetch_on_done,
};

int http_fetch(uv_loop_t *loop, const struct http_client_opts *opts, const char *method,
	       const char *target, const struct http_header *hdrs, size_t n, const void *body,
	       size_t body_len, size_t max_response, http_fetch_cb cb, void *arg)
{
	struct fetch_ctx *f = calloc(1, sizeof(*f));
	struct http_client *cl;

	if (f == NULL)
		return -ENOMEM;
	buf_init(&f->body, max_response);
	f->cb = cb;
	f->arg = arg;
	cl = http_client_request(loop, opts, method, target, hdrs, n, (int64_t)body_len,
				 &fetch_cbs, f);
	if (cl == NULL) {
		free(f);
		return -EIO;
	}
	if (body_len && http_client_write(cl, body, body_len) < 0) {
		/* Cannot happen before connect: bytes are queued. */
		LOG_WARN("could not queue the request body");
	}
	return 0;
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
