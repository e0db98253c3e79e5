/*
 * test_upstream.c - upstream_h2.c, the v2 tunnel's upstream (upstream.h),
 * driven as proxy.c drives it, over two tunnel_h2 sessions wired back to
 * back in memory (as test_tunnel_h2.c does) with a scripted agent on the
 * far side: the head it builds, the body both ways, the credit of the
 * response (nothing more arrives until the proxy consumes), the mapping of
 * the agent's refusals and resets to reasons, reset and close, and admit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "common/buf.h"
#include "net/tunnel_h2.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_response_credit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
