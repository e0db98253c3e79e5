/*
 * test_upstream.c - upstream_h2.c, the v2 tunnel's upstream (upstream.h),
 * driven as proxy.c drives it, over two tunnel_h2 sessions wired back to
 * back in memory (as test_tunnel_h2.c does) with a scripted agent on the
 * far side: the head it builds, the body both ways, the credit of the
 * response (nothing more arrives until the proxy consumes), the mapping of
 * the agent's refusals and resets to reasons, reset and close, and admit.
 *
 * And upstream_v1.c, the v1 tunnel's upstream, over a real loopback
 * WebSocket whose far end plays the cluster: what admit refuses, the body
 * caps, the one JSON frame end sends, the answer with the same uuid as
 * head, body and end, an answer for no one dropped, and every pending
 * request failed when the tunnel goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <unistd.h>
#include <uv.h>

#include "common/base64.h"
#include "common/buf.h"
#include "net/conn.h"
#include "net/tunnel_h2.h"
#include "net/ws.h"
#include "server/tunnel_v1.h"
#include "server/tunnels.h"
#include "server/upstream.h"

/* ---- the wire ---- */

struct wire {
	struct buf to_agent, to_manager;
	struct tunnel_h2 *manager, *agent;
	int kicked_manager, kicked_agent;
};

static struct wire W;

static void kick_manager(void *io)
{
	((struct wire *)io)->kicked_manager = 1;
}

static void kick_agent(void *io)
{
	((struct wire *)io)->kicked_agent = 1;
}

static int send_to_agent(void *io, const uint8_t *d, size_t n)
{
	return buf_append(&((struct wire *)io)->to_agent, d, n) < 0 ? -1 : 1;
}

static int send_to_manager(void *io, const uint8_t *d, size_t n)
{
	return buf_append(&((struct wire *)io)->to_manager, d, n) < 0 ? -1 : 1;
}

static void deliver(struct buf *b, struct tunnel_h2 *to)
{
	struct buf in = *b;

	buf_init(b, 1 << 30);
	assert_int_equal(tunnel_h2_feed(to, (uint8_t *)in.data, in.len), 0);
	buf_free(&in);
}

/* Moves bytes both ways until both sides are quiet (an event loop's turns). */
static void pump(void)
{
	int moved = 1;

	while (moved) {
		moved = 0;
		if (W.kicked_manager) {
			W.kicked_manager = 0;
			tunnel_h2_flush(W.manager);
			moved = 1;
		}
		if (W.kicked_agent) {
			W.kicked_agent = 0;
			tunnel_h2_flush(W.agent);
			moved = 1;
		}
		if (W.to_agent.len) {
			deliver(&W.to_agent, W.agent);
			moved = 1;
		}
		if (W.to_manager.len) {
			deliver(&W.to_manager, W.manager);
			moved = 1;
		}
	}
}

/* ---- the agent: answers by path ---- */

#define BIG (1u << 20)
#define WINDOW (64 << 10) /* the manager's stream window: BIG needs credit */

static struct {
	char method[16], path[64], xa[16], clen[16];
	struct buf body;
	struct tunnel_h2_stream *s; /* the last request's stream, while open */
	uint32_t closed_code;
	int closed;
} A;

static void agent_on_data(struct tunnel_h2_stream *s, const uint8_t *d, size_t n)
{
	buf_append(&A.body, d, n);
	tunnel_h2_stream_consume(s, n);
}

static void agent_on_end(struct tunnel_h2_stream *s)
{
	static uint8_t big[BIG];
	struct http_header rh[] = {{LIT(":status"), LIT("200")},
				   {LIT("content-length"), LIT("")},
				   {LIT("x-agent"), LIT("yes")}};
	char clen[24];

	if (strcmp(A.path, "/echo") == 0) {
		snprintf(clen, sizeof(clen), "%zu", A.body.len);
		rh[1].value = slice_cstr(clen);
		tunnel_h2_respond(s, rh, 3, 1);
		tunnel_h2_stream_write(s, A.body.data, A.body.len);
		tunnel_h2_stream_end(s);
	} else if (strcmp(A.path, "/big") == 0) {
		rh[1].value = LIT("1048576");
		tunnel_h2_respond(s, rh, 3, 1);
		tunnel_h2_stream_write(s, big, BIG);
		tunnel_h2_stream_end(s);
	} else if (strcmp(A.path, "/cut") == 0) {
		rh[1].value = LIT("10");
		tunnel_h2_respond(s, rh, 3, 1);
		tunnel_h2_stream_write(s, "hel", 3); /* the test resets the stream next */
	}
}

static void agent_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	(void)s;
	A.s = NULL;
	A.closed = 1;
	A.closed_code = code;
}

static const struct tunnel_h2_stream_callbacks agent_stream_cbs = {
	.on_data = agent_on_data,
	.on_end = agent_on_end,
	.on_close = agent_on_close,
};

static void copy_header(const struct tunnel_h2_headers *h, const char *name, char *out,
			size_t outlen)
{
	struct slice v = tunnel_h2_header(h, slice_cstr(name));

	snprintf(out, outlen, "%.*s", (int)v.len, v.base ? v.base : "");
}

static void agent_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s,
			     const struct tunnel_h2_headers *h)
{
	(void)t;
	copy_header(h, ":method", A.method, sizeof(A.method));
	copy_header(h, ":path", A.path, sizeof(A.path));
	copy_header(h, "x-a", A.xa, sizeof(A.xa));
	copy_header(h, "content-length", A.clen, sizeof(A.clen));
	A.s = s;
	tunnel_h2_stream_set_callbacks(s, &agent_stream_cbs, NULL);
	if (strcmp(A.path, "/refuse") == 0)
		tunnel_h2_stream_reset(s, NGHTTP2_REFUSED_STREAM);
	else if (strcmp(A.path, "/cancel") == 0)
		tunnel_h2_stream_reset(s, NGHTTP2_CANCEL);
}

static const struct tunnel_h2_callbacks agent_cbs = {.on_request = agent_on_request};
static const struct tunnel_h2_callbacks manager_cbs = {0};

/* ---- the proxy's side ---- */

static struct {
	int heads, status, ends, errors, drains;
	int64_t clen;
	char agent_hdr[16];
	int pseudo_seen;
	size_t got;
	enum upstream_reason reason;
	int consume; /* credit response bytes as they come */
} P;

static void p_on_head(struct upstream *u, int status, const struct http_header *h, size_t n,
		      int64_t clen)
{
	size_t i;

	(void)u;
	P.heads++;
	P.status = status;
	P.clen = clen;
	for (i = 0; i < n; i++) {
		if (h[i].name.len && h[i].name.base[0] == ':')
			P.pseudo_seen = 1;
		if (slice_eq(h[i].name, LIT("x-agent")))
			snprintf(P.agent_hdr, sizeof(P.agent_hdr), "%.*s", (int)h[i].value.len,
				 h[i].value.base);
	}
}

static void p_on_data(struct upstream *u, const uint8_t *d, size_t n)
{
	(void)d;
	P.got += n;
	if (P.consume)
		u->ops->consume(u, n);
}

/* As proxy.c does: the response is complete, so close the exchange at once. */
static void p_on_end(struct upstream *u)
{
	P.ends++;
	u->ops->close(u);
}

static void p_on_drain(struct upstream *u)
{
	(void)u;
	P.drains++;
}

static void p_on_error(struct upstream *u)
{
	P.errors++;
	P.reason = u->err.reason;
}

static const struct upstream_callbacks p_cbs = {
	.on_head = p_on_head,
	.on_data = p_on_data,
	.on_end = p_on_end,
	.on_drain = p_on_drain,
	.on_error = p_on_error,
};

static struct tunnel_entry E;

static int setup(void **state)
{
	struct tunnel_h2_io mio = {.send = send_to_agent, .kick = kick_manager, .io = &W};
	struct tunnel_h2_io aio = {.send = send_to_manager, .kick = kick_agent, .io = &W};
	struct tunnel_h2_config cfg = {.stream_window = WINDOW};

	(void)state;
	tunnel_h2_config_defaults(&cfg);
	memset(&W, 0, sizeof(W));
	memset(&A, 0, sizeof(A));
	memset(&P, 0, sizeof(P));
	buf_init(&W.to_agent, 1 << 30);
	buf_init(&W.to_manager, 1 << 30);
	buf_init(&A.body, 64 << 20);
	W.manager = tunnel_h2_new(1, &cfg, &mio, &manager_cbs, NULL);
	W.agent = tunnel_h2_new(0, NULL, &aio, &agent_cbs, NULL);
	assert_non_null(W.manager);
	assert_non_null(W.agent);
	tunnel_h2_flush(W.manager);
	tunnel_h2_flush(W.agent);
	pump();
	memset(&E, 0, sizeof(E));
	snprintf(E.cluster, sizeof(E.cluster), "c1");
	E.protocol = 2;
	E.t = W.manager;
	E.ops = &upstream_h2_ops;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pump();
	tunnel_h2_free(W.manager);
	tunnel_h2_free(W.agent);
	buf_free(&W.to_agent);
	buf_free(&W.to_manager);
	buf_free(&A.body);
	return 0;
}

/* A request as proxy.c hands it over (headers already filtered). */
static struct upstream *start(const char *method, const char *path, int64_t clen)
{
	static const struct http_header h[] = {{LIT("x-a"), LIT("1")}};
	struct upstream_req rq = {0};
	struct upstream_refusal ref = {0};
	struct upstream_error err = {0};
	struct upstream *u;

	rq.method = slice_cstr(method);
	rq.path = slice_cstr(path);
	rq.tail = slice_make(path + 1, strlen(path) - 1);
	rq.h = h;
	rq.n = 1;
	rq.content_length = clen;
	rq.has_body = clen > 0;
	assert_int_equal(E.ops->admit(&E, &rq, &ref), 0);
	u = E.ops->start(&E, &rq, &p_cbs, NULL, &err);
	assert_non_null(u);
	return u;
}

/* The head the agent sees, the body both ways, the response's head without pseudo-headers. */
static void test_round_trip(void **state)
{
	struct upstream *u;

	(void)state;
	P.consume = 1;
	u = start("POST", "/echo", 5);
	assert_int_equal(u->ops->write(u, "hello", 5), 1);
	assert_int_equal(u->ops->end(u), 0);
	pump();
	assert_string_equal(A.method, "POST");
	assert_string_equal(A.path, "/echo");
	assert_string_equal(A.xa, "1");
	assert_string_equal(A.clen, "5");
	assert_int_equal(A.body.len, 5);
	assert_int_equal(P.heads, 1);
	assert_int_equal(P.status, 200);
	assert_int_equal(P.clen, 5);
	assert_string_equal(P.agent_hdr, "yes");
	assert_false(P.pseudo_seen);
	assert_int_equal(P.got, 5);
	assert_int_equal(P.ends, 1);
	pump();
	assert_int_equal(E.ops->active(&E), 0);
	assert_int_equal(P.errors, 0); /* closed in on_end: no callback after it */
	assert_true(A.closed);
	assert_int_equal(A.closed_code, 0);
}

/* Response bytes come only as far as the proxy credits them (consume). */
static void test_response_credit(void **state)
{
	struct upstream *u;
	size_t stalled, credited = 0, i;

	(void)state;
	u = start("GET", "/big", -1);
	assert_int_equal(u->ops->end(u), 0);
	pump();
	assert_int_equal(P.heads, 1);
	assert_int_equal(P.clen, BIG);
	stalled = P.got;
	assert_true(stalled > 0);
	assert_true(stalled <= WINDOW); /* the stream window ran out: the agent waits */
	pump();
	assert_int_equal(P.got, stalled);
	/* Credit what arrived, turn by turn: the rest follows. */
	for (i = 0; i < 10000 && P.ends == 0; i++) {
		u->ops->consume(u, P.got - credited);
		credited = P.got;
		pump();
	}
	assert_int_equal(P.got, BIG);
	assert_int_equal(P.ends, 1);
	assert_int_equal(P.errors, 0);
}

static enum upstream_reason failure_of(const char *path)
{
	struct upstream *u;

	memset(&P, 0, sizeof(P));
	u = start("GET", path, -1);
	assert_int_equal(u->ops->end(u), 0);
	pump();
	assert_int_equal(P.errors, 1);
	assert_int_equal(P.heads, 0);
	return P.reason;
}

/* The agent's refusals and resets, before and after the head, become reasons (statuses). */
static void test_failures(void **state)
{
	struct upstream *u;

	(void)state;
	assert_int_equal(failure_of("/refuse"), UPSTREAM_BUSY);
	assert_int_equal(upstream_status(UPSTREAM_BUSY), 503);
	assert_int_equal(failure_of("/cancel"), UPSTREAM_CLOSED);
	assert_int_equal(upstream_status(UPSTREAM_CLOSED), 502);

	/* After the head: the response is incomplete (the proxy cuts the user's). */
	memset(&P, 0, sizeof(P));
	P.consume = 1;
	u = start("GET", "/cut", -1);
	assert_int_equal(u->ops->end(u), 0);
	pump();
	assert_int_equal(P.heads, 1);
	assert_int_equal(P.got, 3);
	assert_non_null(A.s);
	tunnel_h2_stream_reset(A.s, NGHTTP2_INTERNAL_ERROR);
	pump();
	assert_int_equal(P.errors, 1);
	assert_int_equal(P.reason, UPSTREAM_INCOMPLETE);
	assert_int_equal(P.ends, 0);
}

/* reset cancels the stream at the agent, and no callback reaches the proxy after it. */
static void test_reset(void **state)
{
	struct upstream *u;

	(void)state;
	u = start("PUT", "/hold", 100);
	assert_int_equal(u->ops->write(u, "part", 4), 1);
	pump();
	assert_string_equal(A.path, "/hold");
	assert_false(A.closed);
	u->ops->reset(u);
	pump();
	assert_true(A.closed);
	assert_int_equal(A.closed_code, NGHTTP2_CANCEL);
	assert_int_equal(P.errors, 0);
	assert_int_equal(P.heads, 0);
}

/* admit: no session (501), and WebSockets only when the agent offers extended CONNECT. */
static void test_admit(void **state)
{
	struct upstream_req rq = {0};
	struct upstream_refusal ref = {0};
	struct tunnel_entry none = {0};

	(void)state;
	rq.method = LIT("GET");
	rq.path = LIT("/1.0");
	none.ops = &upstream_h2_ops;
	assert_int_equal(upstream_h2_ops.admit(&none, &rq, &ref), -1);
	assert_int_equal(ref.status, 501);
	rq.websocket = rq.upgrade = 1;
	memset(&ref, 0, sizeof(ref));
	if (tunnel_h2_connect_protocol_enabled(E.t)) {
		assert_int_equal(upstream_h2_ops.admit(&E, &rq, &ref), 0);
	} else {
		assert_int_equal(upstream_h2_ops.admit(&E, &rq, &ref), -1);
		assert_int_equal(ref.status, 501);
	}
	assert_string_equal(upstream_h2_ops.name, "v2");
}

/* ---- upstream_v1 over a loopback WebSocket ---- */

static struct {
	uv_loop_t loop;
	uv_tcp_t listener;
	int port;
	struct ws *server_end; /* the manager's end, tv->ws */
	char *frame;	       /* the last frame the cluster's end got */
	size_t frame_len;
	struct tunnel_v1 tv;
	struct tunnel_entry e;
} V;

static void cluster_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	(void)w;
	(void)opcode;
	free(V.frame);
	V.frame = malloc(len + 1);
	memcpy(V.frame, data, len);
	V.frame[len] = '\0';
	V.frame_len = len;
}

static void quiet_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	(void)w;
	(void)opcode;
	(void)data;
	(void)len;
}

static void quiet_on_close(struct ws *w, int code)
{
	(void)code;
	if (w == V.server_end)
		V.server_end = NULL;
}

static const struct ws_callbacks cluster_cbs = {.on_message = cluster_on_message,
						.on_close = quiet_on_close};
static const struct ws_callbacks manager_end_cbs = {.on_message = quiet_on_message,
						    .on_close = quiet_on_close};

static void cluster_on_open(struct conn *c)
{
	assert_non_null(ws_new(c, 1, 0, &cluster_cbs, NULL));
}

static const struct conn_callbacks cluster_conn_cbs = {.on_open = cluster_on_open};

static void v_on_connection(uv_stream_t *l, int status)
{
	struct conn *c = conn_new(&V.loop, NULL, NULL, NULL);

	assert_int_equal(status, 0);
	assert_int_equal(conn_accept(c, l), 0);
	V.server_end = ws_new(c, 0, TUNNEL_V1_MAX_FRAME, &manager_end_cbs, NULL);
}

static void v_run(void)
{
	int i;

	for (i = 0; i < 20; i++) {
		uv_run(&V.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

static int v1_setup(void **state)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof(ss), i;
	struct conn *c;

	(void)state;
	memset(&V, 0, sizeof(V));
	memset(&P, 0, sizeof(P));
	assert_int_equal(uv_loop_init(&V.loop), 0);
	uv_tcp_init(&V.loop, &V.listener);
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&V.listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&V.listener, 4, v_on_connection), 0);
	uv_tcp_getsockname(&V.listener, (struct sockaddr *)&ss, &len);
	V.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	c = conn_new(&V.loop, NULL, &cluster_conn_cbs, NULL);
	assert_int_equal(conn_connect_tcp(c, "127.0.0.1", V.port), 0);
	for (i = 0; i < 2000 && V.server_end == NULL; i++) {
		uv_run(&V.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_non_null(V.server_end);
	snprintf(V.tv.cluster, sizeof(V.tv.cluster), "mc1");
	TAILQ_INIT(&V.tv.buffering.q);
	TAILQ_INIT(&V.tv.inflight.q);
	V.tv.ws = V.server_end;
	V.tv.e = &V.e;
	snprintf(V.e.cluster, sizeof(V.e.cluster), "mc1");
	V.e.protocol = 1;
	V.e.impl = &V.tv;
	V.e.ops = &upstream_v1_ops;
	return 0;
}

static void v_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int v1_teardown(void **state)
{
	(void)state;
	upstream_v1__fail_all(&V.tv, "test over");
	if (V.server_end)
		ws_close(V.server_end, WS_CLOSE_GOING_AWAY, "test over");
	v_run();
	uv_walk(&V.loop, v_close_walk, NULL);
	uv_run(&V.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&V.loop), 0);
	free(V.frame);
	return 0;
}

static struct upstream_req v1_req(const char *method, const char *tail, int64_t clen)
{
	static const struct http_header h[] = {{LIT("X-A"), LIT("1")}};
	static char path[128];
	struct upstream_req rq = {0};

	snprintf(path, sizeof(path), "/%s", tail);
	rq.method = slice_cstr(method);
	rq.path = slice_cstr(path);
	rq.tail = slice_cstr(tail);
	rq.h = h;
	rq.n = 1;
	rq.content_length = clen;
	rq.has_body = clen > 0;
	return rq;
}

static int v1_refusal(struct upstream_req rq, struct upstream_refusal *ref)
{
	memset(ref, 0, sizeof(*ref));
	return upstream_v1_ops.admit(&V.e, &rq, ref) == 0 ? 0 : ref->status;
}

/* What v1 cannot carry is refused before anything is built. */
static void test_v1_admit(void **state)
{
	struct upstream_refusal ref;
	struct upstream_req rq = v1_req("GET", "1.0/instances", -1);

	(void)state;
	assert_int_equal(v1_refusal(rq, &ref), 0);
	rq.upgrade = rq.websocket = 1;
	assert_int_equal(v1_refusal(rq, &ref), 501);
	assert_int_equal(v1_refusal(v1_req("OPTIONS", "1.0", -1), &ref), 405);
	assert_non_null(ref.allow.base);
	assert_int_equal(v1_refusal(v1_req("GET", "2.0/x", -1), &ref), 501);
	assert_int_equal(v1_refusal(v1_req("GET", "1.0/a/../b", -1), &ref), 400);
	assert_int_equal(v1_refusal(v1_req("GET", "1.0/a/%2e%2e/b", -1), &ref), 400);
	assert_int_equal(v1_refusal(v1_req("PUT", "1.0/x", TUNNEL_V1_MAX_BODY + 1), &ref), 413);
	V.tv.ws = NULL;
	assert_int_equal(v1_refusal(v1_req("GET", "1.0", -1), &ref), 503);
	V.tv.ws = V.server_end;
}

static struct upstream *v1_start(const char *method, const char *tail, int64_t clen)
{
	struct upstream_req rq = v1_req(method, tail, clen);
	struct upstream_error err = {0};
	struct upstream *u = upstream_v1_ops.start(&V.e, &rq, &p_cbs, NULL, &err);

	assert_non_null(u);
	return u;
}

/* One frame out with the head and the body; the answer with its uuid comes back. */
static void test_v1_round_trip(void **state)
{
	struct upstream *u;
	json_t *frame, *answer;
	char uuid[64];
	uint8_t body[16];
	size_t blen = 0;

	(void)state;
	u = v1_start("POST", "1.0/instances", 5);
	assert_int_equal(upstream_v1_ops.active(&V.e), 1);
	assert_int_equal(u->ops->write(u, "hello", 5), 1);
	assert_int_equal(u->ops->end(u), 0);
	v_run();
	assert_non_null(V.frame);
	frame = json_loads(V.frame, 0, NULL);
	assert_non_null(frame);
	assert_string_equal(json_string_value(json_object_get(frame, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(frame, "path")), "/1.0/instances");
	assert_non_null(json_object_get(json_object_get(frame, "headers"), "X-A"));
	assert_int_equal(base64_decode(json_string_value(json_object_get(frame, "body")),
				       json_string_length(json_object_get(frame, "body")), body,
				       &blen),
			 0);
	assert_int_equal(blen, 5);
	assert_memory_equal(body, "hello", 5);
	snprintf(uuid, sizeof(uuid), "%s", json_string_value(json_object_get(frame, "uuid")));
	json_decref(frame);

	/* An answer for a uuid no one waits for is dropped; the request still waits. */
	answer = json_pack("{s:s,s:i,s:{},s:s}", "uuid", "00000000-0000-4000-8000-000000000000",
			   "status", 200, "headers", "body", "e30=");
	upstream_v1__on_frame(&V.tv, answer);
	json_decref(answer);
	assert_int_equal(P.heads, 0);
	assert_int_equal(V.tv.bad_frames, 1);

	answer = json_pack("{s:s,s:i,s:{s:[s]},s:s}", "uuid", uuid, "status", 201, "headers",
			   "Content-Type", "application/json", "body", "e30=");
	upstream_v1__on_frame(&V.tv, answer);
	json_decref(answer);
	assert_int_equal(P.heads, 1);
	assert_int_equal(P.status, 201);
	assert_int_equal(P.got, 2); /* "{}" */
	assert_int_equal(P.ends, 1);
	assert_int_equal(P.errors, 0);
	assert_int_equal(upstream_v1_ops.active(&V.e), 0);
}

/* A body past the v1 cap is refused as it arrives (413). */
static void test_v1_body_cap(void **state)
{
	struct upstream *u;
	char *big = calloc(1, TUNNEL_V1_MAX_BODY);

	(void)state;
	u = v1_start("PUT", "1.0/x", -1); /* chunked: the length is not known up front */
	assert_int_equal(u->ops->write(u, big, TUNNEL_V1_MAX_BODY), 1);
	assert_true(u->ops->write(u, "x", 1) < 0);
	assert_int_equal(u->err.reason, UPSTREAM_TOO_LARGE);
	assert_int_equal(upstream_status(u->err.reason), 413);
	u->ops->reset(u);
	free(big);
	assert_int_equal(upstream_v1_ops.active(&V.e), 0);
}

/* The tunnel goes: every pending request, buffering or waiting for its answer, fails (502). */
static void test_v1_fail_all(void **state)
{
	struct upstream *a, *b;

	(void)state;
	a = v1_start("GET", "1.0", -1);
	b = v1_start("POST", "1.0/x", 3);
	assert_int_equal(a->ops->end(a), 0); /* inflight */
	assert_int_equal(b->ops->write(b, "abc", 3), 1); /* still buffering */
	assert_int_equal(upstream_v1_ops.active(&V.e), 2);
	upstream_v1__fail_all(&V.tv, "the tunnel closed");
	assert_int_equal(P.errors, 2);
	assert_int_equal(P.reason, UPSTREAM_CLOSED);
	assert_int_equal(upstream_v1_ops.active(&V.e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_response_credit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_admit, v1_setup, v1_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_round_trip, v1_setup, v1_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_body_cap, v1_setup, v1_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_fail_all, v1_setup, v1_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
