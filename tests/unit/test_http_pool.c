/*
 * test_http_pool.c - keep-alive reuse of outbound connections (http_pool in
 * http_client.c) and client-side TLS session resumption (tls.c), against
 * the real HTTP server over loopback: which connections are reused and which
 * never are, the retry of a reused connection that died, and that a resumed
 * or reused connection still carries its own client certificate's identity.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cert.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/tls.h"

/* Answers with the caller's certificate fingerprint. */
static void h_who(struct http_request *req)
{
	json_t *m = json_object();

	json_object_set_new(m, "fp", req->peer_fp ? json_string(req->peer_fp) : json_null());
	http_respond_json(req, 200, m);
}

static void h_close(struct http_request *req)
{
	static const struct http_header h[] = {{LIT("Connection"), LIT("close")}};

	http_respond(req, 200, h, 1, "bye", 3);
}

static void h_big(struct http_request *req)
{
	static char body[256 * 1024];

	memset(body, 'x', sizeof(body));
	http_respond(req, 200, NULL, 0, body, sizeof(body));
}

static void h_chunked(struct http_request *req)
{
	int i;

	http_response_start(req, 200, NULL, 0, -1);
	for (i = 0; i < 10; i++)
		http_response_write(req, "0123456789", 10);
	http_response_end(req);
}

static void h_echo(struct http_request *req)
{
	http_respond(req, 200, NULL, 0, req->body.data, req->body.len);
}

static const struct http_route routes[] = {
	{"GET", "/who", h_who, 0, 0},
	{"DELETE", "/who", h_who, 0, 0},
	{"HEAD", "/who", h_who, 0, 0},
	{"POST", "/who", h_who, 0, 0},
	{"GET", "/close", h_close, 0, 0},
	{"GET", "/big", h_big, 0, 0},
	{"GET", "/chunked", h_chunked, 0, 0},
	{"POST", "/echo", h_echo, 0, 0},
};

struct fixture {
	uv_loop_t loop;
	struct http_server *srv;
	uv_thread_t thread;
	uv_async_t stop;
	int port;
	SSL_CTX *server_ctx;
	char dir[64];
	char cert[128], key[128];
	char fp[65];
};

static void on_stop(uv_async_t *a)
{
	struct fixture *f = a->data;

	http_server_stop(f->srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg)
{
	struct fixture *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static struct fixture *start(int tls, uint64_t idle_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_server_config cfg = {0};
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-test-pool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	uv_loop_init(&f->loop);
	cfg.host = "127.0.0.1";
	cfg.routes = routes;
	cfg.nroutes = sizeof(routes) / sizeof(routes[0]);
	cfg.name = "test";
	cfg.limits.idle_timeout_ms = idle_ms;
	if (tls) {
		snprintf(f->cert, sizeof(f->cert), "%s/s.crt", f->dir);
		snprintf(f->key, sizeof(f->key), "%s/s.key", f->dir);
		assert_int_equal(cert_ensure_files(f->cert, f->key, "localhost"), 0);
		assert_int_equal(cert_load_fingerprint_file(f->cert, f->fp), 0);
		f->server_ctx = tls_server_ctx_new(f->cert, f->key, 1, err, sizeof(err));
		assert_non_null(f->server_ctx);
		cfg.tls = f->server_ctx;
	}
	assert_int_equal(http_server_start(&f->loop, &cfg, &f->srv), 0);
	f->port = http_server_port(f->srv);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	uv_thread_create(&f->thread, server_thread, f);
	return f;
}

static void stop(struct fixture *f)
{
	char cmd[128];

	uv_async_send(&f->stop);
	uv_thread_join(&f->thread);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	SSL_CTX_free(f->server_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* A client context with a fresh self-signed certificate; its fingerprint in fp. */
static SSL_CTX *client_ctx(struct fixture *f, const char *name, char fp[65])
{
	struct tls_client_opts to = {0};
	char crt[160], key[160], err[256];
	SSL_CTX *ctx;

	snprintf(crt, sizeof(crt), "%s/%s.crt", f->dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", f->dir, name);
	assert_int_equal(cert_ensure_files(crt, key, name), 0);
	assert_int_equal(cert_load_fingerprint_file(crt, fp), 0);
	to.cert_file = crt;
	to.key_file = key;
	ctx = tls_client_ctx_new(&to, err, sizeof(err));
	assert_non_null(ctx);
	return ctx;
}

/* ---- TLS resumption ---- */

/* GET /who with ctx; asserts 200 and returns whether the body names fp. */
static int who_is(struct fixture *f, SSL_CTX *ctx, const char *fp)
{
	struct http_client_opts o = {0};
	struct http_fetch_result res;
	int named;

	o.host = "127.0.0.1";
	o.port = f->port;
	o.tls = ctx;
	o.pin = f->fp;
	assert_int_equal(http_fetch_sync(&o, "GET", "/who", NULL, 0, NULL, 0, 4096, &res), 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.peer_fp, f->fp);
	named = strstr(res.body, fp) != NULL;
	http_fetch_result_clear(&res);
	return named;
}

/*
 * Two clusters, each with its own certificate and resumption on: their
 * later connections resume, and the server still sees each one's own
 * certificate, never the other's.
 */
static void test_resumption_keeps_identity(void **state)
{
	struct fixture *f = start(1, 0);
	char fa[65], fb[65];
	SSL_CTX *a = client_ctx(f, "a", fa), *b = client_ctx(f, "b", fb);
	size_t stored;
	unsigned long hits;
	int i;

	(void)state;
	assert_string_not_equal(fa, fb);
	assert_int_equal(tls_client_enable_resumption(a), 0);
	assert_int_equal(tls_client_enable_resumption(b), 0);
	for (i = 0; i < 3; i++) {
		assert_true(who_is(f, a, fa));
		assert_true(who_is(f, b, fb));
	}
	assert_int_equal(tls_client_resumed(a), 2);
	assert_int_equal(tls_client_resumed(b), 2);
	/* Each resumption used its ticket once and got the next: one session per client. */
	tls_server_session_stats(f->server_ctx, &stored, &hits);
	assert_int_equal(hits, 4);
	assert_int_equal(stored, 2);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	stop(f);
}

/*
 * Without resumption on, nothing is resumed; a client without a certificate
 * is never stored nor resumed; a wrong pin still fails on a resumable
 * context.
 */
static void test_resumption_off_and_pin(void **state)
{
	struct fixture *f = start(1, 0);
	char fa[65];
	SSL_CTX *a = client_ctx(f, "a", fa), *anon;
	struct http_client_opts o = {0};
	struct http_fetch_result res;
	struct tls_client_opts to = {0};
	char err[256];
	size_t stored, before;
	unsigned long hits;

	(void)state;
	assert_true(who_is(f, a, fa));
	assert_true(who_is(f, a, fa));
	assert_int_equal(tls_client_resumed(a), 0);
	assert_int_equal(tls_client_enable_resumption(a), 0);
	assert_true(who_is(f, a, fa));
	assert_true(who_is(f, a, fa));
	assert_int_equal(tls_client_resumed(a), 1);
	/* A client without a certificate leaves nothing in the server's store. */
	tls_server_session_stats(f->server_ctx, &before, &hits);
	anon = tls_client_ctx_new(&to, err, sizeof(err));
	assert_non_null(anon);
	assert_int_equal(tls_client_enable_resumption(anon), 0);
	assert_false(who_is(f, anon, fa));
	assert_false(who_is(f, anon, fa));
	assert_int_equal(tls_client_resumed(anon), 0);
	tls_server_session_stats(f->server_ctx, &stored, &hits);
	assert_int_equal(stored, before);
	SSL_CTX_free(anon);
	o.host = "127.0.0.1";
	o.port = f->port;
	o.tls = a;
	o.pin = "00000000000000000000000000000000000000000000000000000000000000ff";
	assert_int_equal(http_fetch_sync(&o, "GET", "/who", NULL, 0, NULL, 0, 4096, &res),
			 CONN_EPIN);
	http_fetch_result_clear(&res);
	SSL_CTX_free(a);
	stop(f);
}


/* ---- keep-alive pool ---- */

struct got {
	int done;
	int err;
	int status;
	char body[512];
};

static void on_got(struct http_fetch_result *res, void *arg)
{
	struct got *g = arg;

	g->done = 1;
	g->err = res->err;
	g->status = res->status;
	snprintf(g->body, sizeof(g->body), "%s", res->body ? res->body : "");
}

/* One request on loop with opts o (and its pool); runs the loop until it is answered. */
static struct got req(uv_loop_t *loop, const struct http_client_opts *o, const char *method,
		      const char *target, const struct http_header *h, size_t nh, const char *body,
		      size_t max)
{
	struct got g = {0};

	assert_int_equal(http_fetch(loop, o, method, target, h, nh, body, body ? strlen(body) : 0,
				    max, on_got, &g),
			 0);
	while (!g.done)
		uv_run(loop, UV_RUN_ONCE);
	return g;
}

static struct http_pool_stats stats(struct http_pool *p)
{
	struct http_pool_stats st;

	http_pool_stats(p, &st);
	return st;
}

/* Closes the pool and checks that the loop runs dry. */
static void close_pool(uv_loop_t *loop, struct http_pool *p)
{
	http_pool_close(p);
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(loop), 0);
}

static void plain_opts(struct fixture *f, struct http_client_opts *o, struct http_pool *p)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = f->port;
	o->pool = p;
}

/* Sequential requests share one connection; the pool keeps one idle. */
static void test_pool_reuse(void **state)
{
	struct fixture *f = start(0, 0);
	struct http_client_opts o;
	uv_loop_t loop;
	struct http_pool *p;
	struct got g;
	int i;

	(void)state;
	uv_loop_init(&loop);
	p = http_pool_new(&loop, 4, 0);
	assert_non_null(p);
	plain_opts(f, &o, p);
	for (i = 0; i < 5; i++) {
		g = req(&loop, &o, "GET", "/who", NULL, 0, NULL, 4096);
		assert_int_equal(g.err, 0);
		assert_int_equal(g.status, 200);
	}
	g = req(&loop, &o, "POST", "/echo", NULL, 0, "{\"x\":1}", 4096);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.body, "{\"x\":1}");
	/* A chunked response ends at its last chunk: reusable too. */
	g = req(&loop, &o, "GET", "/chunked", NULL, 0, NULL, 4096);
	assert_int_equal(g.err, 0);
	assert_int_equal(strlen(g.body), 100);
	g = req(&loop, &o, "HEAD", "/who", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 200);
	g = req(&loop, &o, "GET", "/who", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).reused, 8);
	assert_int_equal(stats(p).idle, 1);
	assert_int_equal(stats(p).retried, 0);
	close_pool(&loop, p);
	stop(f);
}

/* Connections that must not be reused are closed, not pooled. */
static void test_pool_no_reuse(void **state)
{
	struct fixture *f = start(0, 0);
	static const struct http_header conn_close[] = {{LIT("Connection"), LIT("close")}};
	struct http_client_opts o;
	uv_loop_t loop;
	struct http_pool *p;
	struct got g;

	(void)state;
	uv_loop_init(&loop);
	p = http_pool_new(&loop, 4, 0);
	plain_opts(f, &o, p);
	/* The server says Connection: close. */
	g = req(&loop, &o, "GET", "/close", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).idle, 0);
	/* The response was not read to its end (the caller gave up at 100 bytes). */
	g = req(&loop, &o, "GET", "/big", NULL, 0, NULL, 100);
	assert_int_equal(g.err, -E2BIG);
	assert_int_equal(stats(p).idle, 0);
	/* The caller handles Connection itself. */
	g = req(&loop, &o, "GET", "/who", conn_close, 1, NULL, 4096);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).idle, 0);
	/* This server closes after an unknown route's 404 (Connection: close). */
	g = req(&loop, &o, "GET", "/nothing-here", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 404);
	assert_int_equal(stats(p).idle, 0);
	/* A big body read to its end: reusable. */
	g = req(&loop, &o, "GET", "/big", NULL, 0, NULL, 1 << 20);
	assert_int_equal(g.err, 0);
	assert_int_equal(stats(p).idle, 1);
	g = req(&loop, &o, "GET", "/big", NULL, 0, NULL, 1 << 20);
	assert_int_equal(g.err, 0);
	assert_int_equal(stats(p).reused, 1);
	assert_int_equal(stats(p).idle, 1);
	close_pool(&loop, p);
	stop(f);
}

/*
 * The server closed a pooled connection and the pool has not noticed yet:
 * an idempotent request without a body goes again on a fresh connection;
 * a POST gets the error.
 */
static void test_pool_retry(void **state)
{
	struct fixture *f = start(0, 150);
	struct http_client_opts o;
	uv_loop_t loop;
	struct http_pool *p;
	struct got g;

	(void)state;
	uv_loop_init(&loop);
	p = http_pool_new(&loop, 4, 60000);
	plain_opts(f, &o, p);
	g = req(&loop, &o, "GET", "/who", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).idle, 1);
	usleep(400 * 1000); /* the server's idle timeout closes it; our loop does not run */
	g = req(&loop, &o, "GET", "/who", NULL, 0, NULL, 4096);
	assert_int_equal(g.err, 0);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).reused, 1);
	assert_int_equal(stats(p).retried, 1);
	usleep(400 * 1000);
	g = req(&loop, &o, "POST", "/who", NULL, 0, "{}", 4096);
	assert_true(g.err < 0);
	assert_int_equal(stats(p).retried, 1);
	/* When the loop runs meanwhile, the pool sees the close and drops the connection. */
	g = req(&loop, &o, "GET", "/who", NULL, 0, NULL, 4096);
	assert_int_equal(g.status, 200);
	assert_int_equal(stats(p).idle, 1);
	for (int i = 0; i < 40 && stats(p).idle; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10 * 1000);
	}
	assert_int_equal(stats(p).idle, 0);
	close_pool(&loop, p);
	stop(f);
}

/* At most max_idle stay; the rest close. Idle ones go after idle_ms. */
static void test_pool_bounds(void **state)
{
	struct fixture *f = start(0, 0);
	struct http_client_opts o;
	uv_loop_t loop;
	struct http_pool *p;
	struct got g[12];
	int i, left;

	(void)state;
	uv_loop_init(&loop);
	p = http_pool_new(&loop, 3, 200);
	plain_opts(f, &o, p);
	memset(g, 0, sizeof(g));
	for (i = 0; i < 12; i++)
		assert_int_equal(http_fetch(&loop, &o, "GET", "/who", NULL, 0, NULL, 0, 4096, on_got,
					    &g[i]),
				 0);
	do {
		uv_run(&loop, UV_RUN_ONCE);
		for (i = 0, left = 0; i < 12; i++)
			left += !g[i].done;
	} while (left);
	for (i = 0; i < 12; i++)
		assert_int_equal(g[i].status, 200);
	assert_int_equal(stats(p).idle, 3);
	/* The idle timeout empties the pool, and then nothing keeps the loop alive but the pool's handle. */
	for (i = 0; i < 100 && stats(p).idle; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10 * 1000);
	}
	assert_int_equal(stats(p).idle, 0);
	close_pool(&loop, p);
	stop(f);
}

/*
 * Two clusters' TLS contexts through one pool: a connection made with one
 * client certificate never carries the other's request, so the server
 * keeps seeing each one's own fingerprint.
 */
static void test_pool_tls_identity(void **state)
{
	struct fixture *f = start(1, 0);
	char fa[65], fb[65];
	SSL_CTX *a = client_ctx(f, "a", fa), *b = client_ctx(f, "b", fb);
	struct http_client_opts oa, ob;
	uv_loop_t loop;
	struct http_pool *p;
	struct got g;
	int i;

	(void)state;
	uv_loop_init(&loop);
	p = http_pool_new(&loop, 4, 0);
	plain_opts(f, &oa, p);
	oa.tls = a;
	oa.pin = f->fp;
	ob = oa;
	ob.tls = b;
	for (i = 0; i < 3; i++) {
		g = req(&loop, &oa, "GET", "/who", NULL, 0, NULL, 4096);
		assert_int_equal(g.status, 200);
		assert_non_null(strstr(g.body, fa));
		g = req(&loop, &ob, "GET", "/who", NULL, 0, NULL, 4096);
		assert_int_equal(g.status, 200);
		assert_non_null(strstr(g.body, fb));
	}
	assert_int_equal(stats(p).reused, 4);
	assert_int_equal(stats(p).idle, 2);
	close_pool(&loop, p);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resumption_keeps_identity),
		cmocka_unit_test(test_resumption_off_and_pin),
		cmocka_unit_test(test_pool_reuse),
		cmocka_unit_test(test_pool_no_reuse),
		cmocka_unit_test(test_pool_retry),
		cmocka_unit_test(test_pool_bounds),
		cmocka_unit_test(test_pool_tls_identity),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
