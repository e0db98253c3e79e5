/* stream_pipe.c - socket <-> tunnel stream pass-through (see stream_pipe.h). */
#include "net/stream_pipe.h"

#include <stdlib.h>

#include <nghttp2/nghttp2.h>

#include "common/log.h"

struct stream_pipe {
	struct conn *c;		 /* NULL once closed */
	struct tunnel_stream *s; /* NULL once closed */
	size_t unconsumed;	 /* stream bytes written to c, not yet credited */
	uint64_t to_stream, to_conn;
	uv_timer_t fin;	 /* half-closed and quiet this long: cut (sp_on_fin) */
	uint64_t fin_ms; /* 0: no limit */
	int c_ended;	 /* the socket's peer sent its EOF */
	int s_ended;	 /* the stream's peer sent END_STREAM */
	int freeing;	 /* both sides gone; waiting for the timer's close */
	stream_pipe_done_cb done;
	void *arg;
};

static void sp_on_timer_closed(uv_handle_t *h)
{
	struct stream_pipe *p = h->data;

	if (p->done)
		p->done(p->arg, p->to_stream, p->to_conn);
	free(p);
}

static void sp_maybe_free(struct stream_pipe *p)
{
	if (p->c || p->s || p->freeing)
		return;
	p->freeing = 1;
	uv_close((uv_handle_t *)&p->fin, sp_on_timer_closed);
}

/*
 * Once one side has ended, the pipe is half-closed: the other direction
 * may go on (stream_pipe.h), but only while bytes move. A side that never
 * ends and stays quiet (a cluster that keeps an events stream open after
 * the user left, a user gone without a word after its EOF) would otherwise
 * hold the socket, the stream and their memory forever: HAProxy's
 * client-fin/server-fin timeouts, for the same reason.
 */
static void sp_on_fin(uv_timer_t *t)
{
	struct stream_pipe *p = t->data;

	LOG_INFO("half-closed pass-through quiet for %llu ms: closing it",
		 (unsigned long long)p->fin_ms);
	if (p->s)
		tunnel_stream_reset(p->s, NGHTTP2_CANCEL);
	if (p->c)
		conn_close(p->c);
}

/* (Re)starts the half-close timer if a side has ended. */
static void sp_fin_touch(struct stream_pipe *p)
{
	if ((p->c_ended || p->s_ended) && p->fin_ms && !p->freeing)
		uv_timer_start(&p->fin, sp_on_fin, p->fin_ms, 0);
}

void stream_pipe_set_fin_timeout(struct stream_pipe *p, uint64_t ms)
{
	p->fin_ms = ms;
	if (ms == 0)
		uv_timer_stop(&p->fin);
	else
		sp_fin_touch(p);
}

/* ---- socket side ---- */

static void sp_c_on_data(struct conn *c, const char *data, size_t len)
{
	struct stream_pipe *p = conn_data(c);
	int rc;

	if (p->s == NULL)
		return;
	p->to_stream += len;
	sp_fin_touch(p);
	rc = tunnel_stream_write(p->s, data, len);
	if (rc == 0)
		conn_read_stop(c);
	else if (rc < 0)
		conn_close(c);
}

/*
 * The user's EOF may be a half-close: end our side of the stream and keep
 * writing what the cluster sends until it ends too (sp_s_on_end shuts the
 * socket down then). An error ends both at once.
 */
static void sp_c_on_end(struct conn *c, int err)
{
	struct stream_pipe *p = conn_data(c);

	if (p->s && err == 0) {
		p->c_ended = 1;
		sp_fin_touch(p);
		tunnel_stream_end(p->s);
		return;
	}
	if (p->s)
		tunnel_stream_reset(p->s, NGHTTP2_CANCEL);
	conn_close(c);
}

static void sp_c_on_drain(struct conn *c)
{
	struct stream_pipe *p = conn_data(c);

	if (p->s && p->unconsumed) {
		tunnel_stream_consume(p->s, p->unconsumed);
		p->unconsumed = 0;
	}
}

static void sp_c_on_close(struct conn *c)
{
	struct stream_pipe *p = conn_data(c);

	p->c = NULL;
	if (p->s)
		tunnel_stream_reset(p->s, NGHTTP2_CANCEL);
	sp_maybe_free(p);
}

static const struct conn_callbacks sp_conn_cbs = {
	.on_data = sp_c_on_data,
	.on_end = sp_c_on_end,
	.on_drain = sp_c_on_drain,
	.on_close = sp_c_on_close,
};

/* ---- stream side ---- */

static void sp_s_on_data(struct tunnel_stream *s, const uint8_t *data, size_t len)
{
	struct stream_pipe *p = tunnel_stream_data(s);
	int rc;

	if (p->c == NULL) {
		tunnel_stream_consume(s, len);
		return;
	}
	p->to_conn += len;
	sp_fin_touch(p);
	rc = conn_write(p->c, data, len);
	if (rc == 1)
		tunnel_stream_consume(s, len);
	else if (rc == 0)
		p->unconsumed += len;
	else
		tunnel_stream_reset(s, NGHTTP2_CANCEL);
}

static void sp_s_on_end(struct tunnel_stream *s)
{
	struct stream_pipe *p = tunnel_stream_data(s);

	p->s_ended = 1;
	sp_fin_touch(p);
	if (p->c)
		conn_shutdown(p->c);
}

static void sp_s_on_drain(struct tunnel_stream *s)
{
	struct stream_pipe *p = tunnel_stream_data(s);

	if (p->c)
		conn_read_start(p->c);
}

static void sp_s_on_close(struct tunnel_stream *s, uint32_t code)
{
	struct stream_pipe *p = tunnel_stream_data(s);

	p->s = NULL;
	if (p->c) {
		if (code != 0)
			conn_close(p->c);
		else
			conn_shutdown(p->c);
	}
	sp_maybe_free(p);
}

static const struct tunnel_stream_callbacks sp_stream_cbs = {
	.on_data = sp_s_on_data,
	.on_end = sp_s_on_end,
	.on_drain = sp_s_on_drain,
	.on_close = sp_s_on_close,
};

struct stream_pipe *stream_pipe_start(struct conn *c, struct tunnel_stream *s, const char *extra,
				      size_t extra_len, stream_pipe_done_cb done, void *arg)
{
	struct stream_pipe *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		conn_close(c);
		tunnel_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return NULL;
	}
	p->c = c;
	p->s = s;
	p->fin_ms = STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS;
	uv_timer_init(conn_loop(c), &p->fin);
	p->fin.data = p;
	p->done = done;
	p->arg = arg;
	conn_set_callbacks(c, &sp_conn_cbs);
	conn_set_data(c, p);
	tunnel_stream_set_callbacks(s, &sp_stream_cbs, p);
	conn_read_start(c);
	if (extra_len)
		sp_c_on_data(c, extra, extra_len);
	return p;
}
