/* stream_pipe.c - the one byte pipe between sockets and tunnel streams (see stream_pipe.h). */
#include "net/stream_pipe.h"

#include <stdlib.h>

#include <nghttp2/nghttp2.h>

#include "common/log.h"

/* One end: a socket or a stream (the other pointer is NULL). */
struct sp_end {
	struct conn *c;		 /* a socket end, NULL once closed */
	struct tunnel_h2_stream *s; /* a stream end, NULL once closed */
	int in_done;		 /* it sent its last byte (EOF, END_STREAM) */
	int out_done;		 /* we ended what we send to it */
	size_t held;	/* a stream: bytes read from it, credited once the other end drains */
	uint64_t moved; /* bytes read from it and written to the other end */
};

struct stream_pipe {
	struct sp_end e[2];
	uv_timer_t fin;	 /* half-closed and quiet this long: cut (sp_on_fin) */
	uint64_t fin_ms; /* 0: no limit */
	uint64_t fin_mark; /* sp_progress when the timer was last armed */
	int freeing;	 /* both ends gone; waiting for the timer's close */
	stream_pipe_done_cb done;
	void *arg;
};

static void sp_on_timer_closed(uv_handle_t *h)
{
	struct stream_pipe *p = h->data;

	if (p->done)
		p->done(p->arg, p->e[0].moved, p->e[1].moved);
	free(p);
}

static void sp_maybe_free(struct stream_pipe *p)
{
	if (p->e[0].c || p->e[0].s || p->e[1].c || p->e[1].s || p->freeing)
		return;
	p->freeing = 1;
	uv_close((uv_handle_t *)&p->fin, sp_on_timer_closed);
}

static int sp_index_conn(const struct stream_pipe *p, const struct conn *c)
{
	return p->e[0].c == c ? 0 : 1;
}

static int sp_index_stream(const struct stream_pipe *p, const struct tunnel_h2_stream *s)
{
	return p->e[0].s == s ? 0 : 1;
}

/* An error somewhere: every end goes now (their close callbacks free p). */
static void sp_abort(struct stream_pipe *p)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (p->e[i].c)
			conn_close(p->e[i].c);
		if (p->e[i].s)
			tunnel_h2_stream_reset(p->e[i].s, NGHTTP2_CANCEL);
	}
}

/*
 * Once one end has ended, the pipe is half-closed: the other direction
 * may go on (stream_pipe.h), but only while bytes move. An end that never
 * ends and stays quiet (a cluster that keeps an events stream open after
 * the user left, a user gone without a word after its EOF) would otherwise
 * hold the sockets, the stream and their memory forever: HAProxy's
 * client-fin/server-fin timeouts, for the same reason.
 */
/*
 * Bytes moved so far: read from either end, and taken by the kernel of
 * either socket end. The last counts a slow reader that takes a queued
 * answer bit by bit (no new bytes arrive meanwhile) as progress.
 */
static uint64_t sp_progress(const struct stream_pipe *p)
{
	uint64_t n = p->e[0].moved + p->e[1].moved;
	int i;

	for (i = 0; i < 2; i++)
		if (p->e[i].c)
			n += conn_bytes_sent(p->e[i].c);
	return n;
}

static void sp_on_fin(uv_timer_t *t)
{
	struct stream_pipe *p = t->data;
	uint64_t mark = sp_progress(p);

	if (mark != p->fin_mark) {
		/* A socket took bytes meanwhile (a slow reader, a flush after
		 * the other end's EOF): that is progress, not quiet. */
		p->fin_mark = mark;
		uv_timer_start(&p->fin, sp_on_fin, p->fin_ms, 0);
		return;
	}
	LOG_INFO("half-closed pass-through quiet for %llu ms: closing it",
		 (unsigned long long)p->fin_ms);
	sp_abort(p);
}

/* (Re)starts the half-close timer if an end has ended. */
static void sp_fin_touch(struct stream_pipe *p)
{
	if ((p->e[0].in_done || p->e[1].in_done) && p->fin_ms && !p->freeing) {
		p->fin_mark = sp_progress(p);
		uv_timer_start(&p->fin, sp_on_fin, p->fin_ms, 0);
	}
}

void stream_pipe_set_fin_timeout(struct stream_pipe *p, uint64_t ms)
{
	p->fin_ms = ms;
	if (ms == 0)
		uv_timer_stop(&p->fin);
	else
		sp_fin_touch(p);
}

/* Bytes read from end i go to the other end, with backpressure. */
static void sp_forward(struct stream_pipe *p, int i, const char *data, size_t len)
{
	struct sp_end *from = &p->e[i], *to = &p->e[1 - i];
	int rc;

	if (len == 0)
		return;
	if ((to->c == NULL && to->s == NULL) || to->out_done) {
		if (from->s)
			tunnel_h2_stream_consume(from->s, len); /* nowhere to go: dropped */
		return;
	}
	from->moved += len;
	sp_fin_touch(p);
	rc = to->c ? conn_write(to->c, data, len)
		   : tunnel_h2_stream_write(to->s, (const uint8_t *)data, len);
	if (rc < 0) {
		sp_abort(p);
	} else if (from->s) {
		if (rc == 1)
			tunnel_h2_stream_consume(from->s, len);
		else
			from->held += len;
	} else if (rc == 0) {
		conn_read_stop(from->c);
	}
}

/* End j's output fell below its high-water mark: its source may go on. */
static void sp_drained(struct stream_pipe *p, int j)
{
	struct sp_end *src = &p->e[1 - j];

	if (src->c) {
		conn_read_start(src->c);
	} else if (src->s && src->held) {
		tunnel_h2_stream_consume(src->s, src->held);
		src->held = 0;
	}
}

/* A socket whose both directions are over is flushed and closed. */
static void sp_conn_maybe_finish(struct sp_end *e)
{
	if (e->c && e->in_done && e->out_done)
		conn_shutdown(e->c);
}

/* End i sent its last byte: end the other end's input (see stream_pipe.h). */
static void sp_ended(struct stream_pipe *p, int i)
{
	struct sp_end *from = &p->e[i], *to = &p->e[1 - i];

	from->in_done = 1;
	sp_fin_touch(p);
	if (to->s) {
		to->out_done = 1;
		tunnel_h2_stream_end(to->s);
	} else if (to->c && from->s) {
		to->out_done = 1;
		conn_shutdown(to->c); /* a stream's end finishes its socket */
	} else if (to->c) {
		to->out_done = 1;
		conn_shutdown_write(to->c);
		sp_conn_maybe_finish(to);
	}
	if (from->c && (to->c == NULL && to->s == NULL))
		conn_close(from->c); /* the other end is gone already */
	else
		sp_conn_maybe_finish(from);
}

/* ---- socket ends ---- */

static void sp_c_on_data(struct conn *c, const char *data, size_t len)
{
	struct stream_pipe *p = conn_data(c);

	sp_forward(p, sp_index_conn(p, c), data, len);
}

static void sp_c_on_end(struct conn *c, int err)
{
	struct stream_pipe *p = conn_data(c);

	if (err == 0)
		sp_ended(p, sp_index_conn(p, c));
	else
		sp_abort(p);
}

static void sp_c_on_drain(struct conn *c)
{
	struct stream_pipe *p = conn_data(c);

	sp_drained(p, sp_index_conn(p, c));
}

/*
 * A socket is gone. After both its directions ended that is the normal
 * finish (the other end is finishing too); otherwise it is an error.
 */
static void sp_c_on_close(struct conn *c)
{
	struct stream_pipe *p = conn_data(c);
	int i = sp_index_conn(p, c);
	struct sp_end *other = &p->e[1 - i];

	p->e[i].c = NULL;
	if (other->s)
		tunnel_h2_stream_reset(other->s, NGHTTP2_CANCEL);
	else if (other->c && p->e[i].in_done && p->e[i].out_done)
		conn_shutdown(other->c);
	else if (other->c)
		conn_close(other->c);
	sp_maybe_free(p);
}

static const struct conn_callbacks sp_conn_cbs = {
    .on_data = sp_c_on_data,
    .on_end = sp_c_on_end,
    .on_drain = sp_c_on_drain,
    .on_close = sp_c_on_close,
};

/* ---- stream ends ---- */

static void sp_s_on_data(struct tunnel_h2_stream *s, const uint8_t *data, size_t len)
{
	struct stream_pipe *p = tunnel_h2_stream_data(s);

	sp_forward(p, sp_index_stream(p, s), (const char *)data, len);
}

static void sp_s_on_end(struct tunnel_h2_stream *s)
{
	struct stream_pipe *p = tunnel_h2_stream_data(s);

	sp_ended(p, sp_index_stream(p, s));
}

static void sp_s_on_drain(struct tunnel_h2_stream *s)
{
	struct stream_pipe *p = tunnel_h2_stream_data(s);

	sp_drained(p, sp_index_stream(p, s));
}

/* Closed cleanly (both sides ended) or reset (code != 0). */
static void sp_s_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct stream_pipe *p = tunnel_h2_stream_data(s);
	int i = sp_index_stream(p, s);
	struct sp_end *other = &p->e[1 - i];

	p->e[i].s = NULL;
	if (other->c) {
		if (code != 0)
			conn_close(other->c);
		else
			conn_shutdown(other->c);
	}
	sp_maybe_free(p);
}

static const struct tunnel_h2_stream_callbacks sp_stream_cbs = {
    .on_data = sp_s_on_data,
    .on_end = sp_s_on_end,
    .on_drain = sp_s_on_drain,
    .on_close = sp_s_on_close,
};

/* ---- starting ---- */

static struct stream_pipe *sp_new(uv_loop_t *loop, stream_pipe_done_cb done, void *arg)
{
	struct stream_pipe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->fin_ms = STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS;
	uv_timer_init(loop, &p->fin);
	p->fin.data = p;
	p->done = done;
	p->arg = arg;
	return p;
}

static void sp_take_conn(struct stream_pipe *p, int i, struct conn *c)
{
	p->e[i].c = c;
	conn_set_callbacks(c, &sp_conn_cbs);
	conn_set_data(c, p);
	conn_read_start(c);
}

struct stream_pipe *stream_pipe_start(struct conn *c, struct tunnel_h2_stream *s, const char *extra,
				      size_t extra_len, stream_pipe_done_cb done, void *arg)
{
	struct stream_pipe *p = sp_new(conn_loop(c), done, arg);

	if (p == NULL) {
		conn_close(c);
		tunnel_h2_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return NULL;
	}
	p->e[1].s = s;
	tunnel_h2_stream_set_callbacks(s, &sp_stream_cbs, p);
	sp_take_conn(p, 0, c);
	sp_forward(p, 0, extra, extra_len);
	return p;
}

struct stream_pipe *stream_pipe_start_conns(struct conn *a, const char *a_extra, size_t a_len,
					    struct conn *b, const char *b_extra, size_t b_len,
					    stream_pipe_done_cb done, void *arg)
{
	struct stream_pipe *p = sp_new(conn_loop(a), done, arg);

	if (p == NULL) {
		conn_close(a);
		conn_close(b);
		return NULL;
	}
	sp_take_conn(p, 0, a);
	sp_take_conn(p, 1, b);
	sp_forward(p, 0, a_extra, a_len);
	sp_forward(p, 1, b_extra, b_len);
	return p;
}

void stream_pipe_close(struct stream_pipe *p)
{
	sp_abort(p);
}
