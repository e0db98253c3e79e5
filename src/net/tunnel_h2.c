/*
 * tunnel_h2.c - HTTP/2 sessions for tunnel v2 (see tunnel_h2.h).
 *
 * nghttp2 does framing, multiplexing, flow control and HTTP semantics
 * checks. We add: header collection with caps, per-stream output queues
 * behind data providers (deferred while empty, resumed on write), and
 * output gathering into transport-sized chunks.
 *
 * Output: DATA frames carry up to TUNNEL_H2_SEND_CHUNK - 9 bytes when the peer
 * allows (tn_read_length), so a bulk stream leaves as one frame per
 * transport message. DATA payload is never copied into nghttp2: the data
 * provider answers NGHTTP2_DATA_FLAG_NO_COPY and tn_send_data writes the
 * 9-byte frame header into the stream queue right before the payload (each
 * queue keeps that much headroom; what lies there is already sent) and
 * hands header and payload on as one buffer. Small frames are gathered into
 * tunnel_sendbuf (tn_emit); a big one met with nothing gathered goes to the
 * transport as it is.
 *
 * Re-entrancy: nghttp2 must not be driven (mem_send) from inside its own
 * callbacks, and user callbacks must not run inside mem_send's data
 * provider. So flushes requested while receiving are done once feed ends,
 * and drain notifications raised by the data provider are delivered after
 * mem_send returns.
 */
#include "net/tunnel_h2.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <nghttp2/nghttp2.h>

#include "common/log.h"

struct out_queue {
	uint8_t *data;
	size_t off, len, alloc;
};

struct hdr_off {
	size_t name_off, name_len, value_off, value_len;
};

struct tunnel_h2_stream {
	struct tunnel_h2 *t;
	int32_t id;
	const struct tunnel_h2_stream_callbacks *cbs;
	void *data;
	struct out_queue out;
	int out_end;	  /* the user ended the body */
	int deferred;	  /* the data provider is waiting for bytes */
	int want_drain;	  /* a write returned 0 */
	int in_drain_list;
	struct tunnel_h2_stream *drain_next;
	struct buf hdr;
	struct hdr_off hoff[TUNNEL_H2_MAX_HEADERS];
	size_t nh;
	int ended_in; /* peer END_STREAM seen */
	int final_in; /* a final (non-1xx) response head was delivered */
	struct tunnel_h2_stream *prev, *next; /* every live stream of the tunnel */
};

struct tunnel_h2 {
	nghttp2_session *sess;
	struct tunnel_h2_io io;
	const struct tunnel_h2_callbacks *cbs;
	void *data;
	struct tunnel_h2_config cfg;
	int is_client;
	int in_recv;
	int flushing;
	int flush_again;
	int kicked; /* io.kick called, flush not yet run */
	size_t gathered; /* bytes in tunnel_sendbuf, during a flush */
	int send_full;	 /* the transport said "full" during this batch */
	int dead;
	uint64_t ping_sent_ms;
	int64_t rtt_ms;
	uint64_t last_recv_ms;
	uint64_t now_ms;
	size_t nstreams;
	struct tunnel_h2_stream *streams;
	struct tunnel_h2_stream *drain_list;
	/* nghttp2's big blocks, mapped on their own (tn_mem_*). */
	void *big[TUNNEL_H2_BIG_MAX];
	size_t big_len[TUNNEL_H2_BIG_MAX];
};

/* ---- nghttp2's memory ---- */

/*
 * Every nghttp2 session allocates its outbound frame buffer (16 KiB and a
 * few bytes) when it is made, and an idle tunnel only ever writes the
 * first bytes of it (SETTINGS, PING, WINDOW_UPDATE; DATA payload never
 * goes through it). From the heap, that block's pages end up resident
 * anyway once the heap has been churned by handshakes; mapped on its own,
 * only the page that is written is. So blocks of at least
 * TUNNEL_H2_BIG_ALLOC get their own anonymous mapping, at most
 * TUNNEL_H2_BIG_MAX per session (more, as for huge header blocks, come
 * from the heap). Everything else is malloc.
 */
static void *tn_mem_map(struct tunnel_h2 *t, size_t size)
{
	void *p;
	int i;

	for (i = 0; i < TUNNEL_H2_BIG_MAX; i++) {
		if (t->big[i] != NULL)
			continue;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		t->big[i] = p;
		t->big_len[i] = size;
		return p;
	}
	return NULL;
}

static int tn_mem_mapped(struct tunnel_h2 *t, void *p)
{
	int i;

	for (i = 0; p != NULL && i < TUNNEL_H2_BIG_MAX; i++)
		if (t->big[i] == p)
			return i;
	return -1;
}

static void *tn_mem_malloc(size_t size, void *ud)
{
	void *p = size >= TUNNEL_H2_BIG_ALLOC ? tn_mem_map(ud, size) : NULL;

	return p ? p : malloc(size);
}

static void tn_mem_free(void *p, void *ud)
{
	struct tunnel_h2 *t = ud;
	int i = tn_mem_mapped(t, p);

	if (i < 0) {
		free(p);
		return;
	}
	munmap(p, t->big_len[i]);
	t->big[i] = NULL;
}

static void *tn_mem_calloc(size_t n, size_t size, void *ud)
{
	void *p = NULL;

	/* A fresh mapping is zeroed already. */
	if (size != 0 && n <= SIZE_MAX / size && n * size >= TUNNEL_H2_BIG_ALLOC)
		p = tn_mem_map(ud, n * size);
	return p ? p : calloc(n, size);
}

static void *tn_mem_realloc(void *p, size_t size, void *ud)
{
	struct tunnel_h2 *t = ud;
	int i = tn_mem_mapped(t, p);
	void *np;

	if (p == NULL)
		return tn_mem_malloc(size, t); /* how nghttp2 makes its frame buffer */
	if (i < 0)
		return realloc(p, size);
	np = malloc(size);
	if (np == NULL)
		return NULL;
	memcpy(np, p, size < t->big_len[i] ? size : t->big_len[i]);
	tn_mem_free(p, t);
	return np;
}

/* Output is gathered here before it goes to the transport; one per thread. */
static _Thread_local uint8_t *tunnel_sendbuf_storage;

/* A frame at least this big is sent on its own, not copied into tunnel_sendbuf. */
#define TUNNEL_H2_SEND_DIRECT (TUNNEL_H2_SEND_CHUNK / 2)
/* The fixed 9-byte header of an HTTP/2 frame. */
#define TUNNEL_H2_FRAME_HEADER 9

static int tn_kick(struct tunnel_h2 *t);
static int tn_send_data(nghttp2_session *sess, nghttp2_frame *frame, const uint8_t *framehd,
			size_t length, nghttp2_data_source *src, void *ud);

void tunnel_h2_config_defaults(struct tunnel_h2_config *c)
{
	if (!c->max_streams)
		c->max_streams = TUNNEL_H2_DEFAULT_MAX_STREAMS;
	if (!c->stream_window)
		c->stream_window = TUNNEL_H2_DEFAULT_STREAM_WINDOW;
	if (!c->conn_window)
		c->conn_window = TUNNEL_H2_DEFAULT_CONN_WINDOW;
	if (!c->stream_out_high)
		c->stream_out_high = TUNNEL_H2_DEFAULT_STREAM_OUT_HIGH;
}

/* ---- output queue ---- */

static size_t oq_size(const struct out_queue *q)
{
	return q->len - q->off;
}

/*
 * Appends to a stream's queue. Live bytes are q->data[off..len); the queue
 * always keeps TUNNEL_H2_FRAME_HEADER bytes before them (off >= that), where
 * tn_send_data writes a DATA frame's header.
 */
static int oq_append(struct out_queue *q, const void *data, size_t len)
{
	if (q->data == NULL) {
		q->off = q->len = TUNNEL_H2_FRAME_HEADER;
	} else if (q->off >= TUNNEL_H2_FRAME_HEADER + q->len / 2) {
		memmove(q->data + TUNNEL_H2_FRAME_HEADER, q->data + q->off, q->len - q->off);
		q->len -= q->off - TUNNEL_H2_FRAME_HEADER;
		q->off = TUNNEL_H2_FRAME_HEADER;
	}
	if (q->len + len > q->alloc) {
		size_t n = q->alloc ? q->alloc : 16384;
		uint8_t *p;

		while (n < q->len + len)
			n *= 2;
		p = realloc(q->data, n);
		if (p == NULL)
			return -ENOMEM;
		q->data = p;
		q->alloc = n;
	}
	memcpy(q->data + q->len, data, len);
	q->len += len;
	return 0;
}

/* Drops n bytes from the front of the queue. */
static void oq_consume(struct out_queue *q, size_t n)
{
	q->off += n;
	if (q->off == q->len)
		q->off = q->len = TUNNEL_H2_FRAME_HEADER;
}

static void oq_free(struct out_queue *q)
{
	free(q->data);
	memset(q, 0, sizeof(*q));
}

/* ---- streams ---- */

static struct tunnel_h2_stream *ts_new(struct tunnel_h2 *t)
{
	struct tunnel_h2_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->t = t;
	buf_init(&s->hdr, TUNNEL_H2_MAX_HEADER_BYTES);
	t->nstreams++;
	s->next = t->streams;
	if (t->streams)
		t->streams->prev = s;
	t->streams = s;
	return s;
}

static void ts_unlink_drain(struct tunnel_h2_stream *s)
{
	struct tunnel_h2_stream **pp;

	if (!s->in_drain_list)
		return;
	for (pp = &s->t->drain_list; *pp; pp = &(*pp)->drain_next) {
		if (*pp == s) {
			*pp = s->drain_next;
			break;
		}
	}
	s->in_drain_list = 0;
}

static void ts_free(struct tunnel_h2_stream *s)
{
	ts_unlink_drain(s);
	s->t->nstreams--;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->t->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	oq_free(&s->out);
	buf_free(&s->hdr);
	free(s);
}

void tunnel_h2_stream_set_callbacks(struct tunnel_h2_stream *s, const struct tunnel_h2_stream_callbacks *cbs,
				 void *data)
{
	s->cbs = cbs;
	s->data = data;
}

void *tunnel_h2_stream_data(const struct tunnel_h2_stream *s)
{
	return s->data;
}

void tunnel_h2_stream_set_data(struct tunnel_h2_stream *s, void *data)
{
	s->data = data;
}

struct tunnel_h2 *tunnel_h2_stream_tunnel(const struct tunnel_h2_stream *s)
{
	return s->t;
}

int32_t tunnel_h2_stream_id(const struct tunnel_h2_stream *s)
{
	return s->id;
}

static void ts_fill_headers(struct tunnel_h2_stream *s, struct tunnel_h2_headers *hs)
{
	size_t i;

	hs->n = s->nh;
	for (i = 0; i < s->nh; i++) {
		hs->h[i].name = slice_make(s->hdr.data + s->hoff[i].name_off, s->hoff[i].name_len);
		hs->h[i].value = slice_make(s->hdr.data + s->hoff[i].value_off, s->hoff[i].value_len);
	}
}

struct slice tunnel_h2_header(const struct tunnel_h2_headers *h, struct slice name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (slice_eq(h->h[i].name, name))
			return h->h[i].value;
	return SLICE_NULL;
}

/* ---- nghttp2 callbacks ---- */

/*
 * The data provider: says how much of the stream's queue the next DATA
 * frame carries, without copying it (tn_send_data sends it from the queue).
 */
static ssize_t ts_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct tunnel_h2_stream *s = src->ptr;
	struct tunnel_h2 *t = ud;
	size_t n = oq_size(&s->out), rest;

	(void)sess;
	(void)id;
	(void)buf;
	if (n > length)
		n = length;
	rest = oq_size(&s->out) - n;
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (rest == 0) {
		if (s->out_end) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		} else if (n == 0) {
			s->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	if (s->want_drain && rest <= t->cfg.stream_out_high / 2 && !s->in_drain_list) {
		s->in_drain_list = 1;
		s->drain_next = t->drain_list;
		t->drain_list = s;
	}
	return (ssize_t)n;
}

/* DATA payload per frame: as much as the windows and the peer allow, up to one message. */
static ssize_t tn_read_length(nghttp2_session *sess, uint8_t frame_type, int32_t id,
			      int32_t conn_window, int32_t stream_window, uint32_t remote_max,
			      void *ud)
{
	ssize_t n = TUNNEL_H2_SEND_CHUNK - TUNNEL_H2_FRAME_HEADER;

	(void)sess;
	(void)frame_type;
	(void)id;
	(void)ud;
	if (n > conn_window)
		n = conn_window;
	if (n > stream_window)
		n = stream_window;
	if ((size_t)n > remote_max)
		n = (ssize_t)remote_max;
	return n > 0 ? n : 1;
}

static int tn_on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct tunnel_h2 *t = ud;
	struct tunnel_h2_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (f->headers.cat == NGHTTP2_HCAT_REQUEST && !t->is_client) {
		s = ts_new(t);
		if (s == NULL)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		s->id = f->hd.stream_id;
		nghttp2_session_set_stream_user_data(sess, s->id, s);
		return 0;
	}
	s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	if (s) {
		/* A response (or 1xx, or trailers) replaces what came before. */
		buf_reset(&s->hdr);
		s->nh = 0;
	}
	return 0;
}

static int tn_on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
			size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			void *ud)
{
	struct tunnel_h2_stream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	struct hdr_off *h;

	(void)flags;
	(void)ud;
	if (s == NULL)
		return 0;
	if (s->nh >= TUNNEL_H2_MAX_HEADERS)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	h = &s->hoff[s->nh];
	h->name_off = s->hdr.len;
	h->name_len = namelen;
	if (buf_append(&s->hdr, name, namelen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	h->value_off = s->hdr.len;
	h->value_len = valuelen;
	if (buf_append(&s->hdr, value, valuelen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->nh++;
	return 0;
}

static void ts_peer_ended(struct tunnel_h2_stream *s)
{
	if (s->ended_in)
		return;
	s->ended_in = 1;
	if (s->cbs && s->cbs->on_end)
		s->cbs->on_end(s);
}

static void tn_headers_frame(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const nghttp2_frame *f)
{
	struct tunnel_h2_headers hs;
	struct slice st;

	ts_fill_headers(s, &hs);
	if (f->headers.cat == NGHTTP2_HCAT_REQUEST && !t->is_client) {
		if (t->cbs->on_request)
			t->cbs->on_request(t, s, &hs);
		else
			nghttp2_submit_rst_stream(t->sess, NGHTTP2_FLAG_NONE, s->id,
						  NGHTTP2_REFUSED_STREAM);
		return;
	}
	/*
	 * The response head; after a 1xx, nghttp2 files the final head as
	 * HCAT_HEADERS (like trailers), so a head with a :status that comes
	 * before any final one is the response too.
	 */
	if (t->is_client && !s->final_in &&
	    (f->headers.cat == NGHTTP2_HCAT_RESPONSE || f->headers.cat == NGHTTP2_HCAT_HEADERS)) {
		st = tunnel_h2_header(&hs, LIT(":status"));
		if (st.len == 0 || (st.len == 3 && st.base[0] == '1'))
			return; /* informational (or trailers without a head: nghttp2 refuses those) */
		s->final_in = 1;
		if (s->cbs && s->cbs->on_response)
			s->cbs->on_response(s, &hs);
	}
}

static int tn_on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct tunnel_h2 *t = ud;
	struct tunnel_h2_stream *s = NULL;

	if (f->hd.stream_id)
		s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (s == NULL)
			break;
		tn_headers_frame(t, s, f);
		/* The stream may be gone if the user reset it; look again. */
		s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
		if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			ts_peer_ended(s);
		break;
	case NGHTTP2_DATA:
		if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			ts_peer_ended(s);
		break;
	case NGHTTP2_PING:
		if ((f->hd.flags & NGHTTP2_FLAG_ACK) && t->ping_sent_ms) {
			t->rtt_ms = (int64_t)(t->now_ms - t->ping_sent_ms);
			t->ping_sent_ms = 0;
		}
		break;
	case NGHTTP2_GOAWAY:
		if (t->cbs->on_goaway)
			t->cbs->on_goaway(t, f->goaway.error_code);
		break;
	default:
		break;
	}
	return 0;
}

static int tn_on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
			    size_t len, void *ud)
{
	struct tunnel_h2_stream *s = nghttp2_session_get_stream_user_data(sess, id);

	(void)flags;
	(void)ud;
	/* The connection window is credited at once; the stream's when consumed. */
	nghttp2_session_consume_connection(sess, len);
	if (s == NULL || s->cbs == NULL || s->cbs->on_data == NULL) {
		if (s)
			nghttp2_session_consume_stream(sess, id, len);
		return 0;
	}
	s->cbs->on_data(s, data, len);
	return 0;
}

static int tn_on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *ud)
{
	struct tunnel_h2_stream *s = nghttp2_session_get_stream_user_data(sess, id);

	(void)ud;
	if (s == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(sess, id, NULL);
	if (s->cbs && s->cbs->on_close)
		s->cbs->on_close(s, error_code);
	ts_free(s);
	return 0;
}

/* ---- session ---- */

static int tunnel_h2_submit_settings(struct tunnel_h2 *t)
{
	nghttp2_settings_entry iv[5];
	size_t n = 0;
	int rc;

	iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
					   (uint32_t)t->cfg.stream_window};
	iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE, TUNNEL_H2_MAX_FRAME_SIZE};
	if (t->is_client) {
		iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
	} else {
		iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
						   t->cfg.max_streams};
		iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
	}
	rc = nghttp2_submit_settings(t->sess, NGHTTP2_FLAG_NONE, iv, n);
	if (rc == 0)
		rc = nghttp2_session_set_local_window_size(t->sess, NGHTTP2_FLAG_NONE, 0,
							   t->cfg.conn_window);
	return rc;
}

struct tunnel_h2 *tunnel_h2_new(int is_client, const struct tunnel_h2_config *cfg, const struct tunnel_h2_io *io,
			  const struct tunnel_h2_callbacks *cbs, void *data)
{
	struct tunnel_h2 *t = calloc(1, sizeof(*t));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_mem mem = {NULL, tn_mem_malloc, tn_mem_free, tn_mem_calloc, tn_mem_realloc};
	int rc;

	if (t == NULL)
		return NULL;
	if (cfg)
		t->cfg = *cfg;
	tunnel_h2_config_defaults(&t->cfg);
	t->io = *io;
	t->cbs = cbs;
	t->data = data;
	t->is_client = is_client;
	t->rtt_ms = -1;
	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, tn_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, tn_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, tn_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, tn_on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, tn_on_stream_close);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, tn_read_length);
	nghttp2_session_callbacks_set_send_data_callback(cb, tn_send_data);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(opt, t->cfg.max_streams);
	nghttp2_option_set_max_send_header_block_length(opt, TUNNEL_H2_MAX_HEADER_BYTES * 2);
	mem.mem_user_data = t;
	if (is_client)
		rc = nghttp2_session_client_new3(&t->sess, cb, t, opt, &mem);
	else
		rc = nghttp2_session_server_new3(&t->sess, cb, t, opt, &mem);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	cb = NULL;
	opt = NULL;
	if (rc != 0 || tunnel_h2_submit_settings(t) != 0)
		goto fail;
	return t;
fail:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (t->sess)
		nghttp2_session_del(t->sess);
	free(t);
	return NULL;
}

/*
 * nghttp2_session_del runs no callbacks, so every live stream is told here
 * (NGHTTP2_CANCEL) before the session goes.
 */
void tunnel_h2_free(struct tunnel_h2 *t)
{
	if (t == NULL)
		return;
	t->dead = 1;
	while (t->streams) {
		struct tunnel_h2_stream *s = t->streams;

		if (s->id)
			nghttp2_session_set_stream_user_data(t->sess, s->id, NULL);
		if (s->cbs && s->cbs->on_close)
			s->cbs->on_close(s, NGHTTP2_CANCEL);
		ts_free(s);
	}
	nghttp2_session_del(t->sess);
	free(t);
}

void *tunnel_h2_data(const struct tunnel_h2 *t)
{
	return t->data;
}

void tunnel_h2_set_data(struct tunnel_h2 *t, void *data)
{
	t->data = data;
}

int tunnel_h2_alive(const struct tunnel_h2 *t)
{
	return !t->dead &&
	       (nghttp2_session_want_read(t->sess) || nghttp2_session_want_write(t->sess));
}

size_t tunnel_h2_active_streams(const struct tunnel_h2 *t)
{
	return t->nstreams;
}

int64_t tunnel_h2_rtt_ms(const struct tunnel_h2 *t)
{
	return t->rtt_ms;
}

uint64_t tunnel_h2_last_recv_ms(const struct tunnel_h2 *t)
{
	return t->last_recv_ms;
}

void tunnel_h2_touch(struct tunnel_h2 *t, uint64_t now_ms)
{
	t->now_ms = now_ms;
}

int tunnel_h2_connect_protocol_enabled(const struct tunnel_h2 *t)
{
	return nghttp2_session_get_remote_settings(t->sess,
						   NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
}

static void tunnel_h2_deliver_drains(struct tunnel_h2 *t)
{
	while (t->drain_list) {
		struct tunnel_h2_stream *s = t->drain_list;

		t->drain_list = s->drain_next;
		s->in_drain_list = 0;
		s->want_drain = 0;
		if (s->cbs && s->cbs->on_drain)
			s->cbs->on_drain(s);
	}
}

/* Sends the frames gathered in tunnel_sendbuf. 1, 0 (full) or < 0. */
static int tn_send_gathered(struct tunnel_h2 *t)
{
	size_t n = t->gathered;

	t->gathered = 0;
	return n ? t->io.send(t->io.io, tunnel_sendbuf_storage, n) : 1;
}

/*
 * Takes one frame (p, n) for the transport: a big one goes as it is when
 * nothing is gathered (else right after the gathered ones), a small one is
 * gathered up to TUNNEL_H2_SEND_CHUNK. The frame is always taken; a 0 from the
 * transport sets t->send_full. Returns 0, or -EPIPE when the transport is dead.
 */
static int tn_emit(struct tunnel_h2 *t, const uint8_t *p, size_t n)
{
	int rc = 1;

	if (n > TUNNEL_H2_SEND_CHUNK - t->gathered || (n >= TUNNEL_H2_SEND_DIRECT && t->gathered))
		rc = tn_send_gathered(t);
	if (rc >= 0 && n >= TUNNEL_H2_SEND_DIRECT) {
		if (rc == 0)
			t->send_full = 1;
		rc = t->io.send(t->io.io, p, n);
	} else if (rc >= 0) {
		memcpy(tunnel_sendbuf_storage + t->gathered, p, n);
		t->gathered += n;
		if (t->gathered == TUNNEL_H2_SEND_CHUNK && rc > 0)
			rc = tn_send_gathered(t);
	}
	if (rc < 0)
		return -EPIPE;
	if (rc == 0)
		t->send_full = 1;
	return 0;
}

/*
 * NGHTTP2_DATA_FLAG_NO_COPY: the frame header goes into the queue's
 * headroom right before the payload, and both leave as one buffer.
 */
static int tn_send_data(nghttp2_session *sess, nghttp2_frame *frame, const uint8_t *framehd,
			size_t length, nghttp2_data_source *src, void *ud)
{
	struct tunnel_h2_stream *s = src->ptr;
	struct tunnel_h2 *t = ud;
	uint8_t *p;

	(void)sess;
	if (frame->data.padlen || length > oq_size(&s->out) || s->out.off < TUNNEL_H2_FRAME_HEADER)
		return NGHTTP2_ERR_CALLBACK_FAILURE; /* we never pad; the queue has it all */
	p = s->out.data + s->out.off - TUNNEL_H2_FRAME_HEADER;
	memcpy(p, framehd, TUNNEL_H2_FRAME_HEADER);
	if (tn_emit(t, p, TUNNEL_H2_FRAME_HEADER + length) < 0) {
		t->dead = 1; /* the transport is gone: tn_send_batch says -EPIPE */
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	oq_consume(&s->out, length);
	return t->send_full ? NGHTTP2_ERR_PAUSE : 0;
}

/*
 * Pulls frames out of nghttp2 until it has no more or the transport is
 * full: DATA through tn_send_data, the rest through tn_emit. Frames that
 * left the session are always sent, even when the transport said "full"
 * meanwhile. Returns 1: go on; 0: stop (nothing more, or the transport is
 * full); -EPROTO (nghttp2 failed) or -EPIPE (the transport is dead).
 */
static int tn_send_batch(struct tunnel_h2 *t)
{
	const uint8_t *p;
	ssize_t n;
	int rc;

	t->send_full = 0;
	t->gathered = 0;
	for (;;) {
		n = nghttp2_session_mem_send(t->sess, &p);
		if (n < 0) {
			if (t->dead)
				return -EPIPE;
			LOG_WARN("nghttp2: %s", nghttp2_strerror((int)n));
			return -EPROTO;
		}
		if (n == 0 || t->send_full)
			break;
		if (tn_emit(t, p, (size_t)n) < 0)
			return -EPIPE;
		if (t->send_full)
			break;
	}
	rc = tn_send_gathered(t);
	if (rc < 0)
		return -EPIPE;
	if (rc == 0)
		t->send_full = 1;
	return n > 0 && !t->send_full;
}

int tunnel_h2_flush(struct tunnel_h2 *t)
{
	int rc = 0;

	if (t->dead)
		return -EPIPE;
	if (tunnel_sendbuf_storage == NULL &&
	    (tunnel_sendbuf_storage = malloc(TUNNEL_H2_SEND_CHUNK)) == NULL)
		return 0; /* try again on the next flush */
	if (t->in_recv || t->flushing) {
		t->flush_again = 1;
		return 0;
	}
	t->kicked = 0;
	t->flushing = 1;
	do {
		t->flush_again = 0;
		/* While the transport is full, its drain flushes again. */
		while (!t->io.writable || t->io.writable(t->io.io)) {
			rc = tn_send_batch(t);
			if (rc < 0) {
				t->dead = 1;
				goto out;
			}
			if (rc == 0)
				break;
		}
		t->flushing = 0;
		tunnel_h2_deliver_drains(t);
		t->flushing = 1;
	} while (t->flush_again && !t->dead);
	rc = 0;
out:
	t->flushing = 0;
	return rc;
}

int tunnel_h2_feed(struct tunnel_h2 *t, const uint8_t *data, size_t len)
{
	ssize_t n;

	if (t->dead)
		return -EPIPE;
	t->last_recv_ms = t->now_ms;
	t->in_recv++;
	n = nghttp2_session_mem_recv(t->sess, data, len);
	t->in_recv--;
	if (n < 0) {
		LOG_INFO("tunnel protocol error: %s", nghttp2_strerror((int)n));
		t->dead = 1;
		return -EPROTO;
	}
	if (t->in_recv == 0)
		return tunnel_h2_flush(t);
	return 0;
}

int tunnel_h2_ping(struct tunnel_h2 *t, uint64_t now_ms)
{
	t->now_ms = now_ms;
	if (t->ping_sent_ms == 0)
		t->ping_sent_ms = now_ms ? now_ms : 1;
	if (nghttp2_submit_ping(t->sess, NGHTTP2_FLAG_NONE, NULL) != 0)
		return -EIO;
	return tn_kick(t);
}

int tunnel_h2_goaway(struct tunnel_h2 *t)
{
	return tunnel_h2_goaway_error(t, NGHTTP2_NO_ERROR, NULL);
}

int tunnel_h2_goaway_error(struct tunnel_h2 *t, uint32_t error_code, const char *why)
{
	size_t len = why ? strlen(why) : 0;
	int rc = nghttp2_submit_goaway(t->sess, NGHTTP2_FLAG_NONE,
				       nghttp2_session_get_last_proc_stream_id(t->sess), error_code,
				       (const uint8_t *)why, len);

	if (rc != 0)
		return -EIO;
	return tn_kick(t);
}

/* Output is pending: flush now, or have the owner flush on its next turn. */
static int tn_kick(struct tunnel_h2 *t)
{
	if (t->dead)
		return -EPIPE;
	if (t->io.kick == NULL)
		return tunnel_h2_flush(t);
	if (!t->kicked) {
		t->kicked = 1;
		t->io.kick(t->io.io);
	}
	return 0;
}

/* ---- submitting ---- */

/*
 * HTTP/2 wants lowercase names; callers pass HTTP/1 names as they came.
 * The names are lowered into one scratch buffer that nghttp2 copies from.
 */
static int tn_make_nva(const struct http_header *h, size_t n, nghttp2_nv *nva, char *scratch,
		       size_t scratch_len)
{
	size_t i, j, used = 0;

	for (i = 0; i < n; i++) {
		if (h[i].name.len > scratch_len - used)
			return -E2BIG;
		for (j = 0; j < h[i].name.len; j++)
			scratch[used + j] = (char)tolower((unsigned char)h[i].name.base[j]);
		nva[i].name = (uint8_t *)scratch + used;
		nva[i].namelen = h[i].name.len;
		nva[i].value = (uint8_t *)h[i].value.base;
		nva[i].valuelen = h[i].value.len;
		nva[i].flags = NGHTTP2_NV_FLAG_NONE;
		used += h[i].name.len;
	}
	return 0;
}

struct tunnel_h2_stream *tunnel_h2_request(struct tunnel_h2 *t, const struct http_header *nv, size_t n,
				     int has_body, const struct tunnel_h2_stream_callbacks *cbs,
				     void *data)
{
	static _Thread_local char scratch[TUNNEL_H2_MAX_HEADER_BYTES];
	nghttp2_nv nva[TUNNEL_H2_MAX_HEADERS + 8];
	nghttp2_data_provider prd;
	struct tunnel_h2_stream *s;
	int32_t id;

	if (t->dead || n > TUNNEL_H2_MAX_HEADERS + 8 ||
	    tn_make_nva(nv, n, nva, scratch, sizeof(scratch)) < 0)
		return NULL;
	s = ts_new(t);
	if (s == NULL)
		return NULL;
	s->cbs = cbs;
	s->data = data;
	prd.source.ptr = s;
	prd.read_callback = ts_read;
	id = nghttp2_submit_request(t->sess, NULL, nva, n, has_body ? &prd : NULL, s);
	if (id < 0) {
		LOG_INFO("cannot open a tunnel stream: %s", nghttp2_strerror(id));
		ts_free(s);
		return NULL;
	}
	s->id = id;
	tn_kick(t); /* if the tunnel is dead, on_close comes through tunnel_h2_free */
	return s;
}

int tunnel_h2_respond(struct tunnel_h2_stream *s, const struct http_header *nv, size_t n, int has_body)
{
	static _Thread_local char scratch[TUNNEL_H2_MAX_HEADER_BYTES];
	nghttp2_nv nva[TUNNEL_H2_MAX_HEADERS + 8];
	nghttp2_data_provider prd;
	int rc;

	if (n > TUNNEL_H2_MAX_HEADERS + 8 || tn_make_nva(nv, n, nva, scratch, sizeof(scratch)) < 0)
		return -E2BIG;
	prd.source.ptr = s;
	prd.read_callback = ts_read;
	rc = nghttp2_submit_response(s->t->sess, s->id, nva, n, has_body ? &prd : NULL);
	if (rc != 0)
		return -EIO;
	return tn_kick(s->t);
}

int tunnel_h2_stream_write(struct tunnel_h2_stream *s, const void *data, size_t len)
{
	struct tunnel_h2 *t = s->t;

	if (t->dead || s->out_end)
		return -EPIPE;
	if (len && oq_append(&s->out, data, len) < 0)
		return -ENOMEM;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(t->sess, s->id);
	}
	tn_kick(t);
	if (oq_size(&s->out) > t->cfg.stream_out_high) {
		s->want_drain = 1;
		return 0;
	}
	return 1;
}

int tunnel_h2_stream_end(struct tunnel_h2_stream *s)
{
	struct tunnel_h2 *t = s->t;

	if (t->dead)
		return -EPIPE;
	s->out_end = 1;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(t->sess, s->id);
	}
	return tn_kick(t);
}

void tunnel_h2_stream_consume(struct tunnel_h2_stream *s, size_t n)
{
	if (s->t->dead || n == 0)
		return;
	nghttp2_session_consume_stream(s->t->sess, s->id, n);
	tn_kick(s->t);
}

int tunnel_h2_stream_sent_all(const struct tunnel_h2_stream *s)
{
	return s->out_end && oq_size(&s->out) == 0;
}

void tunnel_h2_stream_reset(struct tunnel_h2_stream *s, uint32_t error_code)
{
	if (s->t->dead)
		return;
	nghttp2_submit_rst_stream(s->t->sess, NGHTTP2_FLAG_NONE, s->id, error_code);
	tn_kick(s->t);
}
