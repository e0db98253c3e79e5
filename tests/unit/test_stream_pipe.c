/*
 * test_stream_pipe.c - the socket <-> tunnel stream pass-through with a
 * real loopback socket on one side and two tunnel sessions wired back to
 * back in memory on the other (the manager's stream, piped; the agent's
 * stream, scripted here).
 *
 * The sequence of issue 17 (proxy-stream-never-ends.bin, found by
 * fuzz_proxy): the user's EOF half-closes a piped WebSocket and the
 * cluster never ends its side and stays quiet. The pipe is cut after its
 * fin timeout; before, it stayed open for good. A pipe with both sides open
 * is never cut, and a half-closed one lives on while bytes still move.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "common/buf.h"
#include "net/stream_pipe.h"
#include "net/tunnel_h2.h"

#define FIN_MS 100

struct fixture {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_idle_t pump;
	uv_timer_t drip;      /* the agent's periodic byte, while dripping */
	struct buf to_agent;  /* bytes from the manager's session */
	struct buf to_mgr;    /* bytes from the agent's session */
	struct tunnel *mgr;   /* HTTP/2 client: the manager */
	struct tunnel *agent; /* HTTP/2 server: the agent */
	struct tunnel_stream *as; /* the agent's stream, NULL once closed */
	uint32_t as_code;	  /* its close code */
	int as_closed, as_ended;
	struct conn *c;		/* the server's side of the user's socket */
	struct stream_pipe *pipe;
	int pipe_done;
	int user;		/* the user's socket (blocking fd, polled) */
};

static int to_agent(void *io, const uint8_t *d, size_t n)
{
	return buf_append(&((struct fixture *)io)->to_agent, d, n) < 0 ? -1 : 1;
}

static int to_mgr(void *io, const uint8_t *d, size_t n)
{
	return buf_append(&((struct fixture *)io)->to_mgr, d, n) < 0 ? -1 : 1;
}

/* Moves the wire's bytes on every loop turn. */
static void on_pump(uv_idle_t *h)
{
	struct fixture *f = h->data;

	while (f->to_agent.len || f->to_mgr.len) {
		struct buf b;

		if (f->to_agent.len) {
			b = f->to_agent;
			buf_init(&f->to_agent, 1 << 24);
			assert_int_equal(tunnel_feed(f->agent, (uint8_t *)b.data, b.len), 0);
			buf_free(&b);
		}
		if (f->to_mgr.len) {
			b = f->to_mgr;
			buf_init(&f->to_mgr, 1 << 24);
			assert_int_equal(tunnel_feed(f->mgr, (uint8_t *)b.data, b.len), 0);
			buf_free(&b);
		}
	}
}

/* ---- the agent's stream ---- */

static void as_on_data(struct tunnel_stream *s, const uint8_t *d, size_t n)
{
	(void)d;
	tunnel_stream_consume(s, n);
}

static void as_on_end(struct tunnel_stream *s)
{
	((struct fixture *)tunnel_stream_data(s))->as_ended = 1;
}

static void as_on_close(struct tunnel_stream *s, uint32_t code)
{
	struct fixture *f = tunnel_stream_data(s);

	f->as = NULL;
	f->as_closed = 1;
	f->as_code = code;
}

static const struct tunnel_stream_callbacks as_cbs = {
	.on_data = as_on_data, .on_end = as_on_end, .on_close = as_on_close};

/* Answers 200 and one message, then never ends: a quiet cluster. */
static void agent_on_request(struct tunnel *t, struct tunnel_stream *s,
			     const struct tunnel_headers *h)
{
	struct fixture *f = tunnel_data(t);
	static const struct http_header rh[] = {{LIT(":status"), LIT("200")}};

	(void)h;
	f->as = s;
	tunnel_stream_set_callbacks(s, &as_cbs, f);
	assert_int_equal(tunnel_respond(s, rh, 1, 1), 0);
	assert_true(tunnel_stream_write(s, "hello", 5) >= 0);
}

static const struct tunnel_callbacks agent_cbs = {.on_request = agent_on_request};
static const struct tunnel_callbacks mgr_cbs = {0};

/* ---- the manager's stream: piped once answered ---- */

static void pipe_done(void *arg, uint64_t to_stream, uint64_t to_conn)
{
	(void)to_stream;
	(void)to_conn;
	((struct fixture *)arg)->pipe_done = 1;
}

static void ms_on_response(struct tunnel_stream *s, const struct tunnel_headers *h)
{
	struct fixture *f = tunnel_stream_data(s);

	(void)h;
	f->pipe = stream_pipe_start(f->c, s, NULL, 0, pipe_done, f);
	assert_non_null(f->pipe);
	stream_pipe_set_fin_timeout(f->pipe, FIN_MS);
}

static const struct tunnel_stream_callbacks ms_cbs = {.on_response = ms_on_response};

static const struct conn_callbacks user_conn_cbs = {0};

static void on_connection(uv_stream_t *l, int status)
{
	struct fixture *f = l->data;

	assert_int_equal(status, 0);
	f->c = conn_new(&f->loop, NULL, &user_conn_cbs, NULL);
	assert_non_null(f->c);
	assert_int_equal(conn_accept(f->c, l), 0);
}

static uint64_t now_ms(struct fixture *f)
{
	uv_update_time(&f->loop);
	return uv_now(&f->loop);
}

/* Runs the loop for ms, or until *until becomes true (when until is set). */
static void run_for(struct fixture *f, uint64_t ms, const int *until)
{
	uint64_t end = now_ms(f) + ms;

	while (now_ms(f) < end && !(until && *until))
		uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* The user's bytes so far, without blocking: n read, 0 at EOF, -1 none yet. */
static ssize_t user_read(struct fixture *f, char *out, size_t cap)
{
	ssize_t n = recv(f->user, out, cap, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	return n < 0 ? 0 : n; /* a reset is an end too */
}

static struct fixture *start(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in a;
	int alen = sizeof(a);
	struct tunnel_io mio = {.send = to_agent, .io = f};
	struct tunnel_io aio = {.send = to_mgr, .io = f};
	static const struct http_header req[] = {
		{LIT(":method"), LIT("POST")},
		{LIT(":scheme"), LIT("https")},
		{LIT(":path"), LIT("/1.0/events")},
		{LIT(":authority"), LIT("lxd")},
	};
	char hello[8];
	uint64_t deadline;
	ssize_t n;

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	buf_init(&f->to_agent, 1 << 24);
	buf_init(&f->to_mgr, 1 << 24);
	uv_tcp_init(&f->loop, &f->listener);
	f->listener.data = f;
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 4, on_connection), 0);
	assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&a, &alen), 0);
	f->user = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(f->user, (struct sockaddr *)&a, sizeof(a)), 0);
	while (f->c == NULL)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_idle_init(&f->loop, &f->pump);
	f->pump.data = f;
	uv_idle_start(&f->pump, on_pump);
	uv_timer_init(&f->loop, &f->drip);
	f->drip.data = f;
	f->mgr = tunnel_new(1, NULL, &mio, &mgr_cbs, f);
	f->agent = tunnel_new(0, NULL, &aio, &agent_cbs, f);
	assert_non_null(f->mgr);
	assert_non_null(f->agent);
	assert_non_null(tunnel_request(f->mgr, req, 4, 1, &ms_cbs, f));
	/* The cluster's first message reaches the user through the pipe. */
	for (deadline = now_ms(f) + 5000; (n = user_read(f, hello, sizeof(hello))) < 0 &&
					  now_ms(f) < deadline;)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(n, 5);
	assert_memory_equal(hello, "hello", 5);
	assert_non_null(f->pipe);
	return f;
}

static void stop(struct fixture *f)
{
	close(f->user);
	run_for(f, 5000, &f->pipe_done);
	assert_true(f->pipe_done);
	tunnel_free(f->mgr);
	tunnel_free(f->agent);
	uv_close((uv_handle_t *)&f->listener, NULL);
	uv_close((uv_handle_t *)&f->pump, NULL);
	uv_close((uv_handle_t *)&f->drip, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	buf_free(&f->to_agent);
	buf_free(&f->to_mgr);
	free(f);
}

/* Both sides open and quiet for several fin timeouts: nothing happens. */
static void test_open_pipe_not_cut(void **state)
{
	struct fixture *f = start();
	char b[8];

	(void)state;
	run_for(f, 4 * FIN_MS, NULL);
	assert_false(f->pipe_done);
	assert_false(f->as_closed);
	assert_int_equal(user_read(f, b, sizeof(b)), -1);
	stop(f);
}

/*
 * The user's EOF, then a cluster that neither ends nor speaks: both sides
 * are cut after the fin timeout (the stream reset, the socket closed).
 */
static void test_half_closed_quiet_is_cut(void **state)
{
	struct fixture *f = start();
	char b[8];

	(void)state;
	assert_int_equal(shutdown(f->user, SHUT_WR), 0);
	run_for(f, 5000, &f->pipe_done);
	assert_true(f->pipe_done);
	assert_true(f->as_ended); /* the half-close reached the cluster first */
	run_for(f, 500, &f->as_closed);
	assert_true(f->as_closed);
	assert_int_not_equal(f->as_code, 0); /* reset, not a clean end */
	assert_int_equal(user_read(f, b, sizeof(b)), 0);
	stop(f);
}

static void on_drip(uv_timer_t *t)
{
	struct fixture *f = t->data;

	if (f->as)
		tunnel_stream_write(f->as, "x", 1);
}

/*
 * Half-closed but the cluster still sends a byte every half fin timeout:
 * the pipe lives on (each byte restarts the wait) until the bytes stop.
 */
static void test_half_closed_active_lives(void **state)
{
	struct fixture *f = start();
	char b[64];
	ssize_t n;
	size_t got = 0;

	(void)state;
	assert_int_equal(shutdown(f->user, SHUT_WR), 0);
	uv_timer_start(&f->drip, on_drip, FIN_MS / 2, FIN_MS / 2);
	run_for(f, 6 * FIN_MS, NULL);
	assert_false(f->pipe_done);
	assert_false(f->as_closed);
	while ((n = user_read(f, b, sizeof(b))) > 0)
		got += (size_t)n;
	assert_true(got >= 3);
	uv_timer_stop(&f->drip);
	run_for(f, 5000, &f->pipe_done);
	assert_true(f->pipe_done);
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_pipe_not_cut),
		cmocka_unit_test(test_half_closed_quiet_is_cut),
		cmocka_unit_test(test_half_closed_active_lives),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
