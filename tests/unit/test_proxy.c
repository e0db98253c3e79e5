/*
 * test_proxy.c - proxy.c against a fake upstream (upstream.h): whatever
 * reaches the cluster, the proxy filters headers both ways, writes one audit
 * row, maps an upstream's failure to a status in one place, times out a
 * silent upstream and cuts a stalled body, and cancels the upstream when the
 * user goes away. The fake is scripted per test and runs on the server's
 * loop thread; audit_record is wrapped (-Wl,--wrap) to count the rows.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "net/http.h"
#include "server/audit.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "server/upstream.h"

enum fake_mode { FK_OK, FK_SILENT, FK_CLOSED, FK_BUSY, FK_CUT_AFTER_HEAD, FK_HOLD, FK_START_FAIL };

/* The script and what the fake saw; written on the loop thread, read after the exchange. */
static struct {
	enum fake_mode mode;
	int refuse_status;
	int pause_first_write; /* the first write returns 0, on_drain follows */
	char head[4096];       /* "name: value\n" of what start got */
	char path[256];
	size_t body;
	int ended, resets, closes, drains;
	int audit_rows, audit_status;
} S;

static uv_loop_t *L; /* the server's loop */

struct fake {
	struct upstream up;
	uv_timer_t timer;
	int gone;
};

void __wrap_audit_record(struct server *srv, const struct audit_entry *e);
void __wrap_audit_record(struct server *srv, const struct audit_entry *e)
{
	(void)srv;
	S.audit_rows++;
	S.audit_status = e->status;
}

static void fake_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fake_free(struct fake *f)
{
	f->gone = 1;
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, fake_timer_closed);
}

/* The cluster's answer, on a later loop turn (never from inside an op). */
static void fake_act(uv_timer_t *t)
{
	struct fake *f = t->data;
	static const struct http_header h[] = {
	    {LIT("connection"), LIT("x-hop")}, {LIT("x-hop"), LIT("1")},
	    {LIT("keep-alive"), LIT("5")},     {LIT("x-ok"), LIT("yes")},
	    {LIT("forwarded"), LIT("for=x")},
	};

	if (f->gone)
		return;
	if (S.pause_first_write == 2) {
		S.pause_first_write = 0;
		S.drains++;
		f->up.cbs->on_drain(&f->up);
		return;
	}
	switch (S.mode) {
	case FK_OK:
		f->up.cbs->on_head(&f->up, 200, h, 5, 5);
		f->up.cbs->on_data(&f->up, (const uint8_t *)"hello", 5);
		f->up.cbs->on_end(&f->up); /* the proxy calls close */
		break;
	case FK_CLOSED:
	case FK_BUSY:
		upstream_error_set(&f->up.err, S.mode == FK_BUSY ? UPSTREAM_BUSY : UPSTREAM_CLOSED,
				   "fake says no");
		f->up.cbs->on_error(&f->up);
		fake_free(f);
		break;
	case FK_CUT_AFTER_HEAD:
		f->up.cbs->on_head(&f->up, 200, h, 0, 10);
		f->up.cbs->on_data(&f->up, (const uint8_t *)"hel", 3);
		upstream_error_set(&f->up.err, UPSTREAM_INCOMPLETE, "cut");
		f->up.cbs->on_error(&f->up);
		fake_free(f);
		break;
	case FK_HOLD:
		f->up.cbs->on_head(&f->up, 200, h, 0, -1);
		f->up.cbs->on_data(&f->up, (const uint8_t *)"x", 1);
		break;
	default:
		break;
	}
}

static size_t fake_active(const struct tunnel_entry *e)
{
	(void)e;
	return 0;
}

static int fake_admit(struct tunnel_entry *e, const struct upstream_req *rq,
		      struct upstream_refusal *ref)
{
	(void)e;
	(void)rq;
	if (!S.refuse_status)
		return 0;
	ref->status = S.refuse_status;
	snprintf(ref->msg, sizeof(ref->msg), "not here");
	if (S.refuse_status == 405)
		ref->allow = LIT("GET");
	return -1;
}

static struct upstream *fake_start(struct tunnel_entry *e, const struct upstream_req *rq,
				   const struct upstream_callbacks *cbs, void *arg,
				   struct upstream_error *err)
{
	struct fake *f;
	size_t i, o = 0;

	snprintf(S.path, sizeof(S.path), "%.*s", (int)rq->path.len, rq->path.base);
	for (i = 0; i < rq->n; i++)
		o += (size_t)snprintf(S.head + o, sizeof(S.head) - o, "%.*s: %.*s\n",
				      (int)rq->h[i].name.len, rq->h[i].name.base,
				      (int)rq->h[i].value.len, rq->h[i].value.base);
	if (S.mode == FK_START_FAIL) {
		upstream_error_set(err, UPSTREAM_HEAD_TOO_LARGE, "too big");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	f->up.ops = e->ops;
	f->up.cbs = cbs;
	f->up.arg = arg;
	uv_timer_init(L, &f->timer);
	f->timer.data = f;
	return &f->up;
}

static int fake_write(struct upstream *up, const void *data, size_t len)
{
	struct fake *f = (struct fake *)up;

	(void)data;
	S.body += len;
	if (S.pause_first_write == 1) {
		S.pause_first_write = 2;
		uv_timer_start(&f->timer, fake_act, 20, 0);
		return 0;
	}
	return 1;
}

static int fake_end(struct upstream *up)
{
	struct fake *f = (struct fake *)up;

	S.ended = 1;
	if (S.mode != FK_SILENT)
		uv_timer_start(&f->timer, fake_act, S.pause_first_write ? 60 : 0, 0);
	return 0;
}

static void fake_consume(struct upstream *up, size_t n)
{
	(void)up;
	(void)n;
}

static void fake_reset(struct upstream *up)
{
	S.resets++;
	fake_free((struct fake *)up);
}

static void fake_close(struct upstream *up)
{
	S.closes++;
	fake_free((struct fake *)up);
}

static const struct upstream_ops fake_ops = {
	.name = "fake",
	.active = fake_active,
	.admit = fake_admit,
	.start = fake_start,
	.write = fake_write,
	.end = fake_end,
	.consume = fake_consume,
	.reset = fake_reset,
	.close = fake_close,
};

/* ---- the server ---- */

static const struct http_route routes[] = {
	{NULL, "/1.0/remote-cluster/{name}/tunnel/{*}", proxy_handle,
	 HTTP_ROUTE_STREAM_BODY | HTTP_ROUTE_UPGRADE, 0},
};

static struct {
	uv_loop_t loop;
	struct server srv;
	struct http_server *http;
	struct tunnel_entry *e;
	uv_thread_t thread;
	uv_async_t stop;
	int port;
} F;

static void on_stop(uv_async_t *a)
{
	http_server_stop(F.http);
	tunnels_unregister(F.e);
	tunnels_free(F.srv.tunnels);
	uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg)
{
	(void)arg;
	uv_run(&F.loop, UV_RUN_DEFAULT);
}

static int setup(void **state)
{
	struct http_server_config cfg = {0};

	(void)state;
	memset(&S, 0, sizeof(S));
	memset(&F, 0, sizeof(F));
	uv_loop_init(&F.loop);
	L = &F.loop;
	F.srv.loop = &F.loop;
	F.srv.cfg.proxy_header_timeout_ms = 300;
	F.srv.cfg.proxy_idle_timeout_ms = 300;
	F.srv.tunnels = tunnels_new(&F.srv);
	F.e = tunnels_entry_new(F.srv.tunnels, "c1", 3);
	F.e->ops = &fake_ops;
	tunnels_register(F.srv.tunnels, F.e);
	cfg.host = "127.0.0.1";
	cfg.routes = routes;
	cfg.nroutes = 1;
	cfg.name = "test";
	cfg.data = &F.srv;
	assert_int_equal(http_server_start(&F.loop, &cfg, &F.http), 0);
	F.port = http_server_port(F.http);
	uv_async_init(&F.loop, &F.stop, on_stop);
	uv_thread_create(&F.thread, server_thread, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	uv_async_send(&F.stop);
	uv_thread_join(&F.thread);
	uv_run(&F.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&F.loop), 0);
	return 0;
}

/* Sends req, reads until the server closes or 3 s pass. */
static size_t exchange(const char *req, char *out, size_t outlen, int close_early)
{
	struct sockaddr_in a;
	struct timeval tv = {3, 0};
	size_t got = 0;
	ssize_t n;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	uv_ip4_addr("127.0.0.1", F.port, &a);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(write(s, req, strlen(req)), (ssize_t)strlen(req));
	while (got + 1 < outlen && (n = read(s, out + got, outlen - got - 1)) > 0) {
		got += (size_t)n;
		if (close_early)
			break;
	}
	out[got] = '\0';
	close(s);
	return got;
}

static int status_of(const char *resp)
{
	return (int)strtol(resp + 9, NULL, 10);
}

/* Waits (up to 2 s) until the loop thread set *v to at least want. */
static void wait_for(volatile int *v, int want)
{
	int i;

	for (i = 0; i < 200 && *v < want; i++)
		usleep(10000);
	assert_true(*v >= want);
}

#define GET_CLOSE "GET /1.0/remote-cluster/c1/tunnel/1.0/instances?x=1 HTTP/1.1\r\n" \
		  "Host: h\r\nAuthorization: Bearer secret\r\nConnection: close, x-mine\r\n" \
		  "X-Mine: 1\r\nX-Forwarded-For: 6.6.6.6\r\nCookie: lxcm_session=1; theirs=2\r\n" \
		  "X-Keep: k\r\n\r\n"

static void test_filters_and_one_row(void **state)
{
	char out[4096];

	(void)state;
	S.mode = FK_OK;
	exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), 200);
	assert_non_null(strstr(out, "\r\n\r\nhello"));
	assert_non_null(strstr(out, "x-ok: yes"));
	/* Towards the user: hop-by-hop, named by Connection, forwarding: gone. */
	assert_null(strstr(out, "x-hop"));
	assert_null(strstr(out, "keep-alive"));
	assert_null(strstr(out, "forwarded"));
	/* Towards the cluster: the same rules, and our own forwarding headers. */
	assert_string_equal(S.path, "/1.0/instances?x=1");
	assert_null(strstr(S.head, "Authorization"));
	assert_null(strstr(S.head, "X-Mine"));
	assert_null(strstr(S.head, "6.6.6.6"));
	assert_non_null(strstr(S.head, "X-Keep: k"));
	assert_non_null(strstr(S.head, "x-forwarded-for: 127.0.0.1"));
	assert_non_null(strstr(S.head, "cookie: theirs=2"));
	assert_null(strstr(S.head, "lxcm_session"));
	wait_for(&S.closes, 1);
	assert_int_equal(S.audit_rows, 1);
	assert_int_equal(S.audit_status, 200);
	assert_int_equal(S.resets, 0);
}

static void expect_status(enum fake_mode mode, int status)
{
	char out[4096];

	memset(&S, 0, sizeof(S));
	S.mode = mode;
	exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), status);
	assert_int_equal(S.audit_rows, 1);
	assert_int_equal(S.audit_status, status);
}

static void test_status_mapping(void **state)
{
	(void)state;
	expect_status(FK_CLOSED, 502);
	expect_status(FK_BUSY, 503);
	expect_status(FK_START_FAIL, 431);
	expect_status(FK_SILENT, 504); /* the header timeout */
	assert_int_equal(S.resets, 1);
	assert_int_equal(upstream_status(UPSTREAM_TIMEOUT), 504);
	assert_int_equal(upstream_status(UPSTREAM_TOO_LARGE), 413);
	assert_int_equal(upstream_status(UPSTREAM_BAD_REQUEST), 400);
	assert_int_equal(upstream_status(UPSTREAM_INTERNAL), 500);
	assert_int_equal(upstream_status(UPSTREAM_INVALID), 502);
}

static void test_refusal(void **state)
{
	char out[4096];

	(void)state;
	S.refuse_status = 405;
	exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), 405);
	assert_non_null(strstr(out, "Allow: GET"));
	assert_non_null(strstr(out, "not here"));
	assert_int_equal(S.audit_rows, 0); /* refused before any exchange, as v1 did */
}

static void test_reset_after_head_cuts(void **state)
{
	char out[4096];
	size_t n;

	(void)state;
	S.mode = FK_CUT_AFTER_HEAD;
	n = exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), 200);
	assert_true(n > 0);
	assert_non_null(strstr(out, "Content-Length: 10"));
	assert_non_null(strstr(out, "\r\n\r\nhel"));
	assert_null(strstr(out, "hello"));
	wait_for(&S.audit_rows, 1); /* written when the proxy goes, after the cut */
	assert_int_equal(S.audit_rows, 1);
}

static void test_stalled_body_and_client_gone(void **state)
{
	char out[4096];

	(void)state;
	S.mode = FK_HOLD; /* a head and one byte, then nothing: the idle timeout cuts it */
	exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), 200);
	wait_for(&S.resets, 1);
	assert_int_equal(S.audit_rows, 1);

	memset(&S, 0, sizeof(S));
	S.mode = FK_HOLD; /* the user leaves mid-body: the upstream is cancelled */
	exchange(GET_CLOSE, out, sizeof(out), 1);
	wait_for(&S.resets, 1);
	wait_for(&S.audit_rows, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_filters_and_one_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_after_head_cuts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_body_and_client_gone, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* as the server does: a user who left is an EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
