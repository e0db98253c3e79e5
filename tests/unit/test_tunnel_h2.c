/*
 * test_tunnel_h2.c - two tunnel sessions wired back to back in memory:
 * requests and responses with bodies, many streams, per-stream flow control
 * (a stream nobody consumes does not stall the others), resets, PING RTT,
 * extended CONNECT, junk from the peer, and bulk data in frames that fill a
 * whole transport message (SETTINGS_MAX_FRAME_SIZE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "common/buf.h"
#include "net/tunnel_h2.h"

struct wire {
	struct buf to_client, to_server;
	struct tunnel_h2 *client, *server;
	int kicked_client, kicked_server; /* flush owed, as an event loop would */
	size_t sends, full_sends; /* transport messages, and those of TUNNEL_H2_SEND_CHUNK bytes */
	size_t full_every;	  /* 0, or: every that many sends the transport says "full" */
};

static void count_send(struct wire *w, size_t n)
{
	assert_true(n > 0 && n <= TUNNEL_H2_SEND_CHUNK);
	w->sends++;
	if (n == TUNNEL_H2_SEND_CHUNK)
		w->full_sends++;
}

static void kick_client(void *io)
{
	((struct wire *)io)->kicked_client = 1;
}

static void kick_server(void *io)
{
	((struct wire *)io)->kicked_server = 1;
}

static int send_to_server(void *io, const uint8_t *d, size_t n)
{
	struct wire *w = io;

	count_send(w, n);
	if (buf_append(&w->to_server, d, n) < 0)
		return -1;
	if (w->full_every && w->sends % w->full_every == 0) {
		w->kicked_client = 1; /* the transport's drain: flush again */
		return 0;
	}
	return 1;
}

static int send_to_client(void *io, const uint8_t *d, size_t n)
{
	struct wire *w = io;

	count_send(w, n);
	if (buf_append(&w->to_client, d, n) < 0)
		return -1;
	if (w->full_every && w->sends % w->full_every == 0) {
		w->kicked_server = 1;
		return 0;
	}
	return 1;
}

/* Moves bytes both ways until both sides are quiet. */
static void pump(struct wire *w)
{
	int moved = 1;

	while (moved) {
		moved = 0;
		/* What the owners' loops do on their next turn. */
		if (w->kicked_client) {
			w->kicked_client = 0;
			tunnel_h2_flush(w->client);
			moved = 1;
		}
		if (w->kicked_server) {
			w->kicked_server = 0;
			tunnel_h2_flush(w->server);
			moved = 1;
		}
		if (w->to_server.len) {
			struct buf b = w->to_server;

			buf_init(&w->to_server, 1 << 30);
			assert_int_equal(tunnel_h2_feed(w->server, (uint8_t *)b.data, b.len), 0);
			buf_free(&b);
			moved = 1;
		}
		if (w->to_client.len) {
			struct buf b = w->to_client;

			buf_init(&w->to_client, 1 << 30);
			assert_int_equal(tunnel_h2_feed(w->client, (uint8_t *)b.data, b.len), 0);
			buf_free(&b);
			moved = 1;
		}
	}
}

/* ---- agent side: echo the path and the request body back ---- */

struct srv_stream {
	struct buf body;
	int consume; /* credit windows as data arrives */
};

static void srv_on_data(struct tunnel_h2_stream *s, const uint8_t *d, size_t n)
{
	struct srv_stream *ss = tunnel_h2_stream_data(s);

	buf_append(&ss->body, d, n);
	if (ss->consume)
		tunnel_h2_stream_consume(s, n);
}

static void srv_on_end(struct tunnel_h2_stream *s)
{
	struct srv_stream *ss = tunnel_h2_stream_data(s);
	static const struct http_header rh[] = {{LIT(":status"), LIT("200")}};

	tunnel_h2_respond(s, rh, 1, 1);
	tunnel_h2_stream_write(s, ss->body.data ? ss->body.data : "", ss->body.len);
	tunnel_h2_stream_end(s);
}

static void srv_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct srv_stream *ss = tunnel_h2_stream_data(s);

	(void)code;
	buf_free(&ss->body);
	free(ss);
}

static const struct tunnel_h2_stream_callbacks srv_stream_cbs = {
	.on_data = srv_on_data,
	.on_end = srv_on_end,
	.on_close = srv_on_close,
};

static int hold_path_seen;

static void srv_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct srv_stream *ss = calloc(1, sizeof(*ss));
	struct slice path = tunnel_h2_header(h, LIT(":path"));

	(void)t;
	buf_init(&ss->body, 64 << 20);
	ss->consume = !slice_eq(path, LIT("/hold"));
	if (!ss->consume)
		hold_path_seen = 1;
	tunnel_h2_stream_set_callbacks(s, &srv_stream_cbs, ss);
	if (slice_eq(path, LIT("/reset")))
		tunnel_h2_stream_reset(s, NGHTTP2_REFUSED_STREAM);
}

static const struct tunnel_h2_callbacks srv_cbs = {.on_request = srv_on_request};
static const struct tunnel_h2_callbacks cli_cbs = {0};

/* ---- manager side ---- */

struct cli_stream {
	int status;
	struct buf body;
	int ended;
	int closed;
	uint32_t code;
};

static void cli_on_response(struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct cli_stream *cs = tunnel_h2_stream_data(s);
	long long v = 0;

	slice_to_int64(tunnel_h2_header(h, LIT(":status")), 100, 999, &v);
	cs->status = (int)v;
}

static void cli_on_data(struct tunnel_h2_stream *s, const uint8_t *d, size_t n)
{
	struct cli_stream *cs = tunnel_h2_stream_data(s);

	buf_append(&cs->body, d, n);
	tunnel_h2_stream_consume(s, n);
}

static void cli_on_end(struct tunnel_h2_stream *s)
{
	struct cli_stream *cs = tunnel_h2_stream_data(s);

	cs->ended = 1;
}

static void cli_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct cli_stream *cs = tunnel_h2_stream_data(s);

	cs->closed = 1;
	cs->code = code;
}

static const struct tunnel_h2_stream_callbacks cli_stream_cbs = {
	.on_response = cli_on_response,
	.on_data = cli_on_data,
	.on_end = cli_on_end,
	.on_close = cli_on_close,
};

static void wire_init(struct wire *w)
{
	struct tunnel_h2_io cio = {.send = send_to_server, .kick = kick_client, .io = w};
	struct tunnel_h2_io sio = {.send = send_to_client, .kick = kick_server, .io = w};

	memset(w, 0, sizeof(*w));
	buf_init(&w->to_client, 1 << 30);
	buf_init(&w->to_server, 1 << 30);
	w->client = tunnel_h2_new(1, NULL, &cio, &cli_cbs, NULL);
	w->server = tunnel_h2_new(0, NULL, &sio, &srv_cbs, NULL);
	assert_non_null(w->client);
	assert_non_null(w->server);
	tunnel_h2_flush(w->client);
	tunnel_h2_flush(w->server);
	pump(w);
}

static void wire_free(struct wire *w)
{
	tunnel_h2_free(w->client);
	tunnel_h2_free(w->server);
	buf_free(&w->to_client);
	buf_free(&w->to_server);
}

static struct tunnel_h2_stream *req(struct wire *w, const char *method, const char *path,
				 struct cli_stream *cs, const char *body, size_t len)
{
	struct http_header h[] = {
		{LIT(":method"), slice_cstr(method)},
		{LIT(":scheme"), LIT("http")},
		{LIT(":authority"), LIT("lxd")},
		{LIT(":path"), slice_cstr(path)},
		{LIT("User-Agent"), LIT("test")},
	};
	struct tunnel_h2_stream *s;

	memset(cs, 0, sizeof(*cs));
	buf_init(&cs->body, 64 << 20);
	s = tunnel_h2_request(w->client, h, 5, body != NULL, &cli_stream_cbs, cs);
	assert_non_null(s);
	if (body) {
		tunnel_h2_stream_write(s, body, len);
		tunnel_h2_stream_end(s);
	}
	return s;
}

static void test_roundtrip(void **state)
{
	struct wire w;
	struct cli_stream cs;

	(void)state;
	wire_init(&w);
	assert_true(tunnel_h2_connect_protocol_enabled(w.client));
	req(&w, "POST", "/1.0/instances", &cs, "{\"name\":\"x\"}", 12);
	pump(&w);
	assert_int_equal(cs.status, 200);
	assert_true(cs.ended);
	assert_true(cs.closed);
	assert_int_equal(cs.code, 0);
	assert_int_equal(cs.body.len, 12);
	assert_memory_equal(cs.body.data, "{\"name\":\"x\"}", 12);
	buf_free(&cs.body);
	assert_int_equal(tunnel_h2_active_streams(w.client), 0);
	assert_int_equal(tunnel_h2_active_streams(w.server), 0);
	wire_free(&w);
}

static void test_big_body_and_many_streams(void **state)
{
	struct wire w;
	struct cli_stream cs[40];
	size_t big = 8 << 20, i;
	char *data = malloc(big);

	(void)state;
	for (i = 0; i < big; i++)
		data[i] = (char)(i * 7);
	wire_init(&w);
	for (i = 0; i < 40; i++)
		req(&w, "PUT", "/x", &cs[i], i == 0 ? data : "abc", i == 0 ? big : 3);
	pump(&w);
	for (i = 0; i < 40; i++) {
		assert_int_equal(cs[i].status, 200);
		assert_true(cs[i].closed);
		assert_int_equal(cs[i].body.len, i == 0 ? big : 3);
		buf_free(&cs[i].body);
	}
	wire_free(&w);
	free(data);
}

/*
 * 4 MiB each way: DATA frames of TUNNEL_H2_SEND_CHUNK - 9 bytes, each sent as
 * one whole transport message (not four 16 KiB frames gathered).
 */
static void test_big_frames(void **state)
{
	struct wire w;
	struct cli_stream cs;
	size_t big = 4 << 20, i;
	char *data = malloc(big);

	(void)state;
	for (i = 0; i < big; i++)
		data[i] = (char)(i * 13);
	wire_init(&w);
	w.sends = w.full_sends = 0;
	req(&w, "PUT", "/x", &cs, data, big);
	pump(&w);
	assert_int_equal(cs.status, 200);
	assert_true(cs.closed);
	assert_int_equal(cs.body.len, big);
	assert_memory_equal(cs.body.data, data, big);
	/* 2 x 4 MiB in 65527-byte frames: 130 of them at least, all full. */
	assert_true(w.full_sends >= 2 * (big / (TUNNEL_H2_SEND_CHUNK - 9)));
	assert_true(w.sends < w.full_sends + 40);
	buf_free(&cs.body);
	wire_free(&w);
	free(data);
}

/*
 * A transport that often says "full": frames already out of nghttp2 are
 * still sent, nothing is lost or reordered, and everything arrives once the
 * owner flushes again (as on the transport's drain).
 */
static void test_transport_full(void **state)
{
	struct wire w;
	struct cli_stream cs[8];
	size_t big = 3 << 20, i, every;
	char *data = malloc(big);

	(void)state;
	for (i = 0; i < big; i++)
		data[i] = (char)(i * 31 + 1);
	for (every = 1; every <= 3; every++) {
		wire_init(&w);
		w.full_every = every;
		for (i = 0; i < 8; i++)
			req(&w, "PUT", "/x", &cs[i], i % 2 ? data : "small", i % 2 ? big - i : 5);
		pump(&w);
		for (i = 0; i < 8; i++) {
			assert_int_equal(cs[i].status, 200);
			assert_true(cs[i].closed);
			assert_int_equal(cs[i].body.len, i % 2 ? big - i : 5);
			assert_memory_equal(cs[i].body.data, i % 2 ? data : "small", cs[i].body.len);
			buf_free(&cs[i].body);
		}
		wire_free(&w);
	}
	free(data);
}

/* A stream whose window is never credited must not block another. */
static void test_stalled_stream_does_not_block(void **state)
{
	struct wire w;
	struct cli_stream held, other;
	size_t big = 4 << 20;
	char *data = calloc(1, big);

	(void)state;
	wire_init(&w);
	hold_path_seen = 0;
	req(&w, "PUT", "/hold", &held, data, big);
	pump(&w);
	assert_true(hold_path_seen);
	assert_false(held.closed); /* stuck at its 1 MiB window */
	req(&w, "PUT", "/other", &other, "hello", 5);
	pump(&w);
	assert_true(other.closed);
	assert_int_equal(other.status, 200);
	buf_free(&other.body);
	wire_free(&w);
	assert_true(held.closed); /* told on tunnel_h2_free */
	assert_int_equal(held.code, NGHTTP2_CANCEL);
	buf_free(&held.body);
	free(data);
}

static void test_reset_and_ping(void **state)
{
	struct wire w;
	struct cli_stream cs;

	(void)state;
	wire_init(&w);
	req(&w, "GET", "/reset", &cs, NULL, 0);
	pump(&w);
	assert_true(cs.closed);
	assert_int_equal(cs.code, NGHTTP2_REFUSED_STREAM);
	buf_free(&cs.body);
	assert_int_equal(tunnel_h2_rtt_ms(w.client), -1);
	tunnel_h2_ping(w.client, 1000);
	tunnel_h2_touch(w.client, 1007);
	pump(&w);
	assert_int_equal(tunnel_h2_rtt_ms(w.client), 7);
	wire_free(&w);
}

static void test_junk(void **state)
{
	struct wire w;

	(void)state;
	wire_init(&w);
	assert_true(tunnel_h2_feed(w.server, (const uint8_t *)"GET / HTTP/1.1\r\n\r\nxxxxxxxxxxxxxxxx",
				34) < 0 ||
		    !tunnel_h2_alive(w.server));
	wire_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_big_body_and_many_streams),
		cmocka_unit_test(test_big_frames),
		cmocka_unit_test(test_transport_full),
		cmocka_unit_test(test_stalled_stream_does_not_block),
		cmocka_unit_test(test_reset_and_ping),
		cmocka_unit_test(test_junk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
