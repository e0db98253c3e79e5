/*
 * test_proxy.c - proxy.c against a fake upstream (upstream.h): whatever
 * reaches the cluster, the proxy filters headers both ways, writes one audit
 * row, maps an upstream's failure to a status in one place, times out a
 * silent upstream and cuts a stalled body, and cancels the upstream when the
 * user goes away. The fake is scripted per test and runs on the server's
 * loop thread; audit_record is wrapped (-Wl,--wrap) to count the rows.
 *
 * The listener runs the management auth step (auth.c) in front of the
 * proxy, with the token cache filled by the test (no store): "secret" is an
 * operator, "viewer-secret" a viewer. Backpressure is tried both ways: an
 * upstream that cannot take more pauses the reading of the user's body
 * until its drain, and a user who does not read holds back the credit the
 * upstream needs to send more.
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
#include "common/secret.h"
#include "server/audit.h"
#include "server/principal.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "server/upstream.h"

enum fake_mode {
	FK_OK,
	FK_SILENT,
	FK_CLOSED,
	FK_BUSY,
	FK_CUT_AFTER_HEAD,
	FK_HOLD,
	FK_START_FAIL,
	FK_BIG, /* a BIG_TOTAL body, sent only as far as the credit allows */
};

#define BIG_TOTAL (16u << 20)
#define BIG_WINDOW (256u << 10) /* what the fake sends ahead of the credit */
#define BIG_CHUNK (16u << 10)

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
	char audit_actor[AUDIT_ACTOR_MAX];
	int starts;
	int paused;		/* write returned 0 and on_drain has not come yet */
	int writes_while_paused;
	size_t sent, consumed; /* FK_BIG: response bytes sent, credited back */
	int writes;
} S;

static uv_loop_t *L; /* the server's loop */

struct fake {
	struct upstream up;
	uv_timer_t timer;
	int gone;
	int head_sent;
};

void __wrap_audit_record(struct server *srv, const struct audit_entry *e);
void __wrap_audit_record(struct server *srv, const struct audit_entry *e)
{
	(void)srv;
	S.audit_rows++;
	S.audit_status = e->status;
	memcpy(S.audit_actor, e->actor, sizeof(S.audit_actor));
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

/*
 * FK_BIG: the head once, then body chunks while less than BIG_WINDOW is
 * uncredited (as a tunnel's flow-control window would allow), then the end.
 */
static void fake_pump(struct fake *f)
{
	static const uint8_t chunk[BIG_CHUNK];
	size_t n;

	if (!f->head_sent) {
		f->head_sent = 1;
		f->up.cbs->on_head(&f->up, 200, NULL, 0, BIG_TOTAL);
	}
	while (!f->gone && S.sent < BIG_TOTAL && S.sent - S.consumed < BIG_WINDOW) {
		n = BIG_TOTAL - S.sent < BIG_CHUNK ? BIG_TOTAL - S.sent : BIG_CHUNK;
		S.sent += n;
		f->up.cbs->on_data(&f->up, chunk, n);
	}
	if (!f->gone && S.sent == BIG_TOTAL)
		f->up.cbs->on_end(&f->up); /* the proxy closes us */
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
		S.paused = 0;
		S.drains++;
		f->up.cbs->on_drain(&f->up);
		return;
	}
	if (S.mode == FK_BIG) {
		fake_pump(f);
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
	S.starts++;
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
	S.writes++;
	if (S.paused)
		S.writes_while_paused++;
	if (S.pause_first_write == 1) {
		S.pause_first_write = 2;
		S.paused = 1;
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

/* The credit: FK_BIG sends more on a later turn. */
static void fake_consume(struct upstream *up, size_t n)
{
	struct fake *f = (struct fake *)up;

	S.consumed += n;
	if (S.mode == FK_BIG && !f->gone)
		uv_timer_start(&f->timer, fake_act, 0, 0);
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
	 HTTP_ROUTE_STREAM_BODY | HTTP_ROUTE_UPGRADE | ROUTE_TUNNEL, 0},
};


static struct {
	uv_loop_t loop;
	struct server srv;
	struct http_server *http;
	struct tunnel_entry *e;
	uv_thread_t thread;
	uv_async_t stop;
	int port;
	char operator_id[PRINCIPAL_ID_MAX], viewer_id[PRINCIPAL_ID_MAX];
} F;

static uint64_t idle_ms = 300; /* the body idle timeout of the next setup */

/* The tokens the auth step knows, put in its cache as a store lookup would. */
static void known_token(const char *secret, const char *name, const char *role, char *id,
			size_t idlen)
{
	struct store_api_token_info t = {.id = 1};
	struct principal p;
	char hash[65];

	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.role, sizeof(t.role), "%s", role);
	secret_sha256_hex(secret, strlen(secret), hash);
	principal_from_api_token(&p, &t, hash, 0);
	principal_cache_put(F.srv.principals, hash, uv_now(&F.loop), &p,
			    principal_cache_generation(F.srv.principals));
	snprintf(id, idlen, "%s", p.id);
}

static void on_stop(uv_async_t *a)
{
	http_server_stop(F.http);
	tunnels_unregister(F.e);
	tunnels_free(F.srv.tunnels);
	principal_cache_free(F.srv.principals);
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
	F.srv.cfg.proxy_idle_timeout_ms = idle_ms;
	F.srv.tunnels = tunnels_new(&F.srv);
	F.srv.principals = principal_cache_new(60000);
	known_token("secret", "ops", "operator", F.operator_id, sizeof(F.operator_id));
	known_token("viewer-secret", "look", "viewer", F.viewer_id, sizeof(F.viewer_id));
	F.e = tunnels_entry_new(F.srv.tunnels, "c1", 3);
	F.e->ops = &fake_ops;
	tunnels_register(F.srv.tunnels, F.e);
	cfg.host = "127.0.0.1";
	cfg.routes = routes;
	cfg.nroutes = 1;
	cfg.name = "test";
	cfg.data = &F.srv;
	cfg.pre_route = auth_management_pre_route;
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
	wait_for(&S.audit_rows, 1); /* written when the proxy goes, after the reset */
	assert_int_equal(S.audit_rows, 1);

	memset(&S, 0, sizeof(S));
	S.mode = FK_HOLD; /* the user leaves mid-body: the upstream is cancelled */
	exchange(GET_CLOSE, out, sizeof(out), 1);
	wait_for(&S.resets, 1);
	wait_for(&S.audit_rows, 1);
}

/* The row names the principal the auth step set, never the header. */
static void test_row_names_principal(void **state)
{
	char out[4096];

	(void)state;
	S.mode = FK_OK;
	exchange(GET_CLOSE, out, sizeof(out), 0);
	assert_int_equal(status_of(out), 200);
	wait_for(&S.closes, 1);
	assert_int_equal(S.audit_rows, 1);
	assert_string_equal(S.audit_actor, F.operator_id);
	assert_non_null(strstr(F.operator_id, "token:"));
	assert_null(strstr(S.audit_actor, "secret"));

	/* No token: 401 before the proxy, nothing reaches the cluster. */
	memset(&S, 0, sizeof(S));
	exchange("GET /1.0/remote-cluster/c1/tunnel/1.0 HTTP/1.1\r\nHost: h\r\n"
		 "Connection: close\r\n\r\n",
		 out, sizeof(out), 0);
	assert_int_equal(status_of(out), 401);
	assert_int_equal(S.starts, 0);
}

#define VIEWER_REQ(method)                                                                        \
	method " /1.0/remote-cluster/c1/tunnel/1.0/instances HTTP/1.1\r\nHost: h\r\n"             \
	       "Authorization: Bearer viewer-secret\r\nConnection: close\r\n"                      \
	       "Content-Length: 2\r\n\r\n{}"

/* A viewer reads through the tunnel but may not change anything: 403, audited with its id. */
static void test_viewer_refused_post(void **state)
{
	char out[4096];

	(void)state;
	S.mode = FK_OK;
	exchange(VIEWER_REQ("POST"), out, sizeof(out), 0);
	assert_int_equal(status_of(out), 403);
	assert_non_null(strstr(out, "viewer role"));
	assert_int_equal(S.starts, 0); /* the cluster never saw it */
	wait_for(&S.audit_rows, 1);
	assert_int_equal(S.audit_rows, 1);
	assert_int_equal(S.audit_status, 403);
	assert_string_equal(S.audit_actor, F.viewer_id);

	memset(&S, 0, sizeof(S));
	S.mode = FK_OK;
	exchange("GET /1.0/remote-cluster/c1/tunnel/1.0/instances HTTP/1.1\r\nHost: h\r\n"
		 "Authorization: Bearer viewer-secret\r\nConnection: close\r\n\r\n",
		 out, sizeof(out), 0);
	assert_int_equal(status_of(out), 200);
	assert_int_equal(S.starts, 1);
	wait_for(&S.audit_rows, 1);
	assert_string_equal(S.audit_actor, F.viewer_id);
}

#define UPLOAD_LEN (4u << 20)

/*
 * Towards the cluster: the upstream's first write says "full"; until its
 * drain the proxy reads no more of the user's body (no write comes), then
 * the rest flows and the exchange ends as usual.
 */
static void test_request_body_backpressure(void **state)
{
	char head[256], out[4096];
	struct sockaddr_in a;
	struct timeval tv = {5, 0};
	size_t got = 0, off = 0;
	char *body = calloc(1, UPLOAD_LEN);
	ssize_t n;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	S.mode = FK_OK;
	S.pause_first_write = 1;
	snprintf(head, sizeof(head),
		 "PUT /1.0/remote-cluster/c1/tunnel/1.0/instances/x/files?path=/f HTTP/1.1\r\n"
		 "Host: h\r\nAuthorization: Bearer secret\r\nConnection: close\r\n"
		 "Content-Length: %u\r\n\r\n",
		 UPLOAD_LEN);
	uv_ip4_addr("127.0.0.1", F.port, &a);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(write(s, head, strlen(head)), (ssize_t)strlen(head));
	/* Blocks while the proxy does not read: the drain comes on the fake's timer. */
	while (off < UPLOAD_LEN && (n = write(s, body + off, UPLOAD_LEN - off)) > 0)
		off += (size_t)n;
	assert_int_equal(off, UPLOAD_LEN);
	while (got + 1 < sizeof(out) && (n = read(s, out + got, sizeof(out) - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(s);
	free(body);
	assert_int_equal(status_of(out), 200);
	assert_int_equal(S.drains, 1);
	assert_true(S.writes > 1);		  /* the body came in pieces ... */
	assert_int_equal(S.writes_while_paused, 0); /* ... none of them while paused */
	assert_int_equal(S.body, UPLOAD_LEN);
	assert_int_equal(S.ended, 1);
	wait_for(&S.audit_rows, 1);
}

/*
 * Towards the user: one who does not read holds the credit back, so the
 * upstream stops sending far short of the whole body; reading it all
 * credits every byte.
 */
static void test_response_backpressure(void **state)
{
	char buf[65536];
	struct sockaddr_in a;
	struct timeval tv = {10, 0};
	int rcvbuf = 4096, s = socket(AF_INET, SOCK_STREAM, 0);
	size_t total = 0, stalled;
	char *end;
	ssize_t n;

	(void)state;
	S.mode = FK_BIG;
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uv_ip4_addr("127.0.0.1", F.port, &a);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(buf, sizeof(buf),
		 "GET /1.0/remote-cluster/c1/tunnel/1.0/images/x/export HTTP/1.1\r\nHost: h\r\n"
		 "Authorization: Bearer secret\r\nConnection: close\r\n\r\n");
	assert_int_equal(write(s, buf, strlen(buf)), (ssize_t)strlen(buf));
	usleep(300000); /* the user reads nothing yet */
	stalled = S.sent;
	usleep(200000);
	assert_int_equal(S.sent, stalled); /* no credit, nothing more */
	assert_true(stalled < BIG_TOTAL / 2);
	assert_true(S.consumed < stalled + 1);
	/* Now read it all. */
	n = read(s, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(status_of(buf), 200);
	end = strstr(buf, "\r\n\r\n");
	assert_non_null(end);
	total = (size_t)n - (size_t)(end + 4 - buf);
	while (total < BIG_TOTAL && (n = read(s, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	close(s);
	assert_int_equal(total, BIG_TOTAL);
	assert_int_equal(S.sent, BIG_TOTAL);
	wait_for(&S.closes, 1);
	/* Credited as the user read (what was still unread at the end is moot: closed). */
	assert_true(S.consumed >= BIG_TOTAL - BIG_WINDOW);
	assert_int_equal(S.resets, 0);
	assert_int_equal(S.audit_rows, 1);
}

static int setup_patient(void **state)
{
	idle_ms = 5000;
	setup(state);
	idle_ms = 300;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_filters_and_one_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_after_head_cuts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_body_and_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_row_names_principal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_viewer_refused_post, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_body_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_response_backpressure, setup_patient, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* as the server does: a user who left is an EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
