/*
 * test_ws.c - WebSocket over real loopback sockets: the server runs on its own
 * loop thread (ws_server_accept in HTTP_ROUTE_UPGRADE routes), the client on
 * the test thread (ws_connect). Handshake over plain and TLS, echo of many
 * sizes, the message cap (1009), bad upgrade requests (400), peer junk,
 * backpressure both ways with 64 MiB, and the closing handshake. The frame
 * codec: masking and UTF-8 against byte-wise references, and frames fed one
 * byte at a time (16- and 64-bit lengths, fragments with a ping between
 * them, the mask's phase across reads), the rules of RFC 6455 section 5
 * from raw sockets in both roles.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cmocka.h>

#include "common/cert.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "net/ws.h"

#define PROTO "lxcm-tunnel.v2"
#define SMALL_MAX 1000
#define BULK_TOTAL ((size_t)64 * 1024 * 1024)
#define BULK_MSG ((size_t)64 * 1024)
#define PENDING_BOUND (WS_HIGH_WATER + 2 * BULK_MSG)
#define WATCHDOG_MS 300000
#define MAX_LIVE 64
/* snprintf into an array, failing the test on truncation. */
#define FMT(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))
#define BURST_N 3000

/* ---- server side (runs on the server thread) ---- */

static struct {
	atomic_int closes;
	atomic_int last_code;
	atomic_int opened;
} S;

static uv_loop_t *server_loop;
static struct ws *live[MAX_LIVE];

static void live_add(struct ws *w)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++) {
		if (live[i] == NULL) {
			live[i] = w;
			return;
		}
	}
}

static void live_del(struct ws *w)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] == w)
			live[i] = NULL;
}

static void srv_closed(struct ws *w, int code)
{
	live_del(w);
	atomic_store(&S.last_code, code);
	atomic_fetch_add(&S.closes, 1);
}

/* Echo: a message "close-me" makes the server start the closing handshake. */
static void echo_on_message(struct ws *w, int op, const char *d, size_t n)
{
	if (op == WS_TEXT && n == 8 && memcmp(d, "close-me", 8) == 0) {
		ws_close(w, WS_CLOSE_NORMAL, "bye");
		return;
	}
	if (ws_send(w, op, d, n) == 0)
		ws_read_stop(w);
}

static void echo_on_drain(struct ws *w)
{
	ws_read_start(w);
}

static const struct ws_callbacks echo_cbs = {echo_on_message, echo_on_drain, srv_closed};

static void accept_echo(struct http_request *req, const char *proto, size_t max)
{
	struct ws *w = ws_server_accept(req, proto, max, &echo_cbs, NULL);

	if (w) {
		live_add(w);
		atomic_fetch_add(&S.opened, 1);
	}
}

static void h_ws(struct http_request *req)
{
	accept_echo(req, NULL, 0);
}

static void h_ws_proto(struct http_request *req)
{
	accept_echo(req, PROTO, 0);
}

static void h_ws_small(struct http_request *req)
{
	accept_echo(req, NULL, SMALL_MAX);
}

/* Sink: counts bulk messages, stopping reading for 1 ms every 8 of them. */
struct sink {
	uv_timer_t timer;
	struct ws *w;
	size_t bytes, msgs;
	int paused, violations;
};

static void sink_resume(uv_timer_t *t)
{
	struct sink *s = t->data;

	s->paused = 0;
	ws_read_start(s->w);
}

static void sink_on_message(struct ws *w, int op, const char *d, size_t n)
{
	struct sink *s = ws_data(w);
	char msg[64];
	int len;

	if (s->paused)
		s->violations++;
	if (op != WS_BINARY || n != BULK_MSG || (unsigned char)d[0] != (s->msgs & 0xff) ||
	    (unsigned char)d[n - 1] != (s->msgs & 0xff))
		s->violations++;
	s->bytes += n;
	s->msgs++;
	if (s->bytes == BULK_TOTAL) {
		len = snprintf(msg, sizeof(msg), "got %zu %d", s->bytes, s->violations);
		if (len > 0 && (size_t)len < sizeof(msg))
			ws_send(w, WS_TEXT, msg, (size_t)len);
		return;
	}
	if (s->msgs % 8 == 0) {
		s->paused = 1;
		ws_read_stop(w);
		uv_timer_start(&s->timer, sink_resume, 1, 0);
	}
}

static void free_handle_data(uv_handle_t *h)
{
	free(h->data);
}

static void sink_on_close(struct ws *w, int code)
{
	struct sink *s = ws_data(w);

	srv_closed(w, code);
	uv_close((uv_handle_t *)&s->timer, free_handle_data);
}

static const struct ws_callbacks sink_cbs = {sink_on_message, NULL, sink_on_close};

static void h_sink(struct http_request *req)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct ws *w = ws_server_accept(req, NULL, 0, &sink_cbs, s);

	if (w == NULL) {
		free(s);
		return;
	}
	s->w = w;
	uv_timer_init(server_loop, &s->timer);
	s->timer.data = s;
	live_add(w);
	atomic_fetch_add(&S.opened, 1);
}

/* Push: sends 64 MiB with backpressure, then "max=<largest ws_pending>". */
struct push {
	struct ws *w;
	size_t sent, msgs, max_pending;
	int final_sent;
	char *chunk;
};

static void push_pump(struct push *p)
{
	char msg[64];
	int rc, len;

	while (p->sent < BULK_TOTAL) {
		memset(p->chunk, (int)(p->msgs & 0xff), BULK_MSG);
		rc = ws_send(p->w, WS_BINARY, p->chunk, BULK_MSG);
		if (rc < 0)
			return;
		p->sent += BULK_MSG;
		p->msgs++;
		if (ws_pending(p->w) > p->max_pending)
			p->max_pending = ws_pending(p->w);
		if (rc == 0)
			return;
	}
	if (!p->final_sent) {
		p->final_sent = 1;
		len = snprintf(msg, sizeof(msg), "max=%zu", p->max_pending);
		if (len > 0 && (size_t)len < sizeof(msg))
			ws_send(p->w, WS_TEXT, msg, (size_t)len);
	}
}

static void push_on_drain(struct ws *w)
{
	push_pump(ws_data(w));
}

static void push_on_close(struct ws *w, int code)
{
	struct push *p = ws_data(w);

	srv_closed(w, code);
	free(p->chunk);
	free(p);
}

static const struct ws_callbacks push_cbs = {NULL, push_on_drain, push_on_close};

static void h_push(struct http_request *req)
{
	struct push *p = calloc(1, sizeof(*p));
	struct ws *w;

	p->chunk = malloc(BULK_MSG);
	w = ws_server_accept(req, NULL, 0, &push_cbs, p);
	if (w == NULL) {
		free(p->chunk);
		free(p);
		return;
	}
	p->w = w;
	live_add(w);
	atomic_fetch_add(&S.opened, 1);
	push_pump(p);
}

/* Burst: BURST_N small messages in one go (the peer reads them in big chunks). */
static void h_burst(struct http_request *req)
{
	struct ws *w = ws_server_accept(req, NULL, 0, &echo_cbs, NULL);
	char msg[32];
	int i, len;

	if (w == NULL)
		return;
	live_add(w);
	atomic_fetch_add(&S.opened, 1);
	for (i = 0; i < BURST_N; i++) {
		len = snprintf(msg, sizeof(msg), "%d", i);
		if (len > 0 && (size_t)len < sizeof(msg))
			ws_send(w, WS_TEXT, msg, (size_t)len);
	}
}

/*
 * Accepts on a later loop turn, as the connector does after looking the
 * client up: the HTTP server has stopped reading and kept what followed the
 * request head.
 */
static void later_accept(uv_timer_t *t)
{
	accept_echo(t->data, NULL, 0);
	uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void h_ws_later(struct http_request *req)
{
	uv_timer_t *t = malloc(sizeof(*t));

	uv_timer_init(server_loop, t);
	t->data = req;
	uv_timer_start(t, later_accept, 20, 0);
}

static void h_plain(struct http_request *req)
{
	http_respond(req, 200, NULL, 0, "plain", 5);
}

static const struct http_route routes[] = {
	{"GET", "/ws", h_ws, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/ws-proto", h_ws_proto, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/ws-small", h_ws_small, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/sink", h_sink, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/push", h_push, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/burst", h_burst, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/ws-later", h_ws_later, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/plain", h_plain, 0, 0},
};

/*
 * The server runs either on the test thread's loop, together with the
 * client (threaded = 0), or on a loop thread of its own for the tests that
 * talk to it with blocking raw sockets (threaded = 1). Never both sides of
 * conn on two threads: conn.c reads into process-wide static buffers.
 */
struct fixture {
	uv_loop_t loop;
	struct http_server *srv;
	int threaded;
	uv_thread_t thread;
	uv_async_t stop;
	uv_async_t probe;
	uv_timer_t tick; /* bounds every UV_RUN_ONCE on a shared loop */
	atomic_size_t nconns;
	int port;
	SSL_CTX *server_ctx;
	char dir[64];
	char cert[128], key[128];
	char fp[65];
};

static void stop_server(struct fixture *f)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i])
			ws_abort(live[i]);
	http_server_stop(f->srv);
	uv_close((uv_handle_t *)&f->tick, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct fixture *f = a->data;

	stop_server(f);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&f->probe, NULL);
}

static void on_probe(uv_async_t *a)
{
	struct fixture *f = a->data;

	atomic_store(&f->nconns, http_server_connection_count(f->srv));
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void server_thread(void *arg)
{
	struct fixture *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static struct fixture *start(int tls, int threaded)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_server_config cfg = {0};
	char err[256];

	FMT(f->dir, "/tmp/lxcm-test-ws-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	uv_loop_init(&f->loop);
	server_loop = &f->loop;
	memset(live, 0, sizeof(live));
	atomic_store(&S.closes, 0);
	atomic_store(&S.last_code, 0);
	atomic_store(&S.opened, 0);
	cfg.host = "127.0.0.1";
	cfg.routes = routes;
	cfg.nroutes = sizeof(routes) / sizeof(routes[0]);
	cfg.name = "test";
	if (tls) {
		FMT(f->cert, "%s/s.crt", f->dir);
		FMT(f->key, "%s/s.key", f->dir);
		assert_int_equal(cert_ensure_files(f->cert, f->key, "localhost"), 0);
		assert_int_equal(cert_load_fingerprint_file(f->cert, f->fp), 0);
		f->server_ctx = tls_server_ctx_new(f->cert, f->key, 1, err, sizeof(err));
		assert_non_null(f->server_ctx);
		cfg.tls = f->server_ctx;
	}
	assert_int_equal(http_server_start(&f->loop, &cfg, &f->srv), 0);
	f->port = http_server_port(f->srv);
	uv_timer_init(&f->loop, &f->tick);
	uv_timer_start(&f->tick, on_tick, 50, 50);
	f->threaded = threaded;
	if (threaded) {
		uv_async_init(&f->loop, &f->stop, on_stop);
		f->stop.data = f;
		uv_async_init(&f->loop, &f->probe, on_probe);
		f->probe.data = f;
		atomic_store(&f->nconns, 1);
		uv_thread_create(&f->thread, server_thread, f);
	}
	return f;
}

/* Runs the shared loop until cond holds or WATCHDOG_MS passed. */
#define SPIN_UNTIL(loop, cond)                                                                     \
	do {                                                                                       \
		uint64_t dl_ = uv_now(loop) + WATCHDOG_MS;                                         \
		while (!(cond) && uv_now(loop) < dl_)                                              \
			uv_run((loop), UV_RUN_ONCE);                                               \
		assert_true(cond);                                                                 \
	} while (0)

/*
 * Stopping the HTTP server while it still closes a connection frees the
 * server under that connection (http_server.c), so let HTTP connections
 * (refused upgrades, plain responses) finish first.
 */
static void wait_http_idle(struct fixture *f)
{
	int i;

	if (!f->threaded) {
		SPIN_UNTIL(&f->loop, http_server_connection_count(f->srv) == 0);
		return;
	}
	for (i = 0; i < 500; i++) {
		uv_async_send(&f->probe);
		usleep(10000);
		if (atomic_load(&f->nconns) == 0)
			return;
	}
}

static void stop(struct fixture *f)
{
	char cmd[128];

	wait_http_idle(f);
	if (f->threaded) {
		uv_async_send(&f->stop);
		uv_thread_join(&f->thread);
	} else {
		stop_server(f);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	SSL_CTX_free(f->server_ctx);
	FMT(cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* Waits for the server to have closed n WebSockets. */
static void wait_server_closes(struct fixture *f, int n)
{
	int i;

	if (!f->threaded) {
		SPIN_UNTIL(&f->loop, atomic_load(&S.closes) >= n);
	} else {
		for (i = 0; i < 3000 && atomic_load(&S.closes) < n; i++)
			usleep(10000);
	}
	assert_int_equal(atomic_load(&S.closes), n);
}

/* ---- client side (runs on the test thread) ---- */

struct client {
	uv_loop_t *loop;
	uv_loop_t own;
	struct fixture *f; /* the server on the same loop, or NULL */
	uv_timer_t watchdog;
	int timed_out, handles;
	struct ws *w;
	int done, status;
	int closed, close_code;
	/* the last message */
	int nmsg, opcode;
	char *msg;
	size_t msg_len;
	/* bulk */
	int mode; /* 0 keep messages, 1 bulk sender, 2 bulk receiver, 3 burst receiver */
	size_t sent, nsent, max_pending, rmsgs;
	int paused, violations;
	char *chunk;
	uv_timer_t resume;
	char final[64];
	int got_final;
};

static void cl_done(struct ws *w, int status, void *arg)
{
	struct client *cl = arg;

	cl->done = 1;
	cl->status = status;
	cl->w = w;
}

static void cl_bulk_send(struct client *cl)
{
	int rc;

	while (cl->sent < BULK_TOTAL) {
		memset(cl->chunk, (int)(cl->nsent & 0xff), BULK_MSG);
		rc = ws_send(cl->w, WS_BINARY, cl->chunk, BULK_MSG);
		if (rc < 0)
			return;
		cl->sent += BULK_MSG;
		cl->nsent++;
		if (ws_pending(cl->w) > cl->max_pending)
			cl->max_pending = ws_pending(cl->w);
		if (rc == 0)
			return;
	}
}

static void cl_resume(uv_timer_t *t)
{
	struct client *cl = t->data;

	cl->paused = 0;
	ws_read_start(cl->w);
}

static void cl_keep_final(struct client *cl, const char *d, size_t n)
{
	if (n >= sizeof(cl->final))
		n = sizeof(cl->final) - 1;
	memcpy(cl->final, d, n);
	cl->final[n] = '\0';
	cl->got_final = 1;
}

static void cl_on_message(struct ws *w, int op, const char *d, size_t n)
{
	struct client *cl = ws_data(w);

	if (cl->mode == 3) {
		char num[32];
		size_t k = n < sizeof(num) - 1 ? n : sizeof(num) - 1;

		memcpy(num, d, k);
		num[k] = '\0';
		if (cl->paused || strtol(num, NULL, 10) != (long)cl->rmsgs)
			cl->violations++;
		cl->rmsgs++;
		if (cl->rmsgs == BURST_N)
			cl->got_final = 1;
		else if (cl->rmsgs % 10 == 1) {
			cl->paused = 1;
			ws_read_stop(w);
			uv_timer_start(&cl->resume, cl_resume, 2, 0);
		}
		return;
	}
	if (cl->mode != 0 && op == WS_TEXT) {
		cl_keep_final(cl, d, n);
		return;
	}
	if (cl->mode == 2) {
		if (cl->paused)
			cl->violations++;
		if (n != BULK_MSG || (unsigned char)d[0] != (cl->rmsgs & 0xff) ||
		    (unsigned char)d[n - 1] != (cl->rmsgs & 0xff))
			cl->violations++;
		cl->rmsgs++;
		if (cl->rmsgs % 8 == 0) {
			cl->paused = 1;
			ws_read_stop(w);
			uv_timer_start(&cl->resume, cl_resume, 1, 0);
		}
		return;
	}
	free(cl->msg);
	cl->msg = malloc(n ? n : 1);
	memcpy(cl->msg, d, n);
	cl->msg_len = n;
	cl->opcode = op;
	cl->nmsg++;
}

static void cl_on_drain(struct ws *w)
{
	struct client *cl = ws_data(w);

	if (cl->mode == 1)
		cl_bulk_send(cl);
}

static void cl_on_close(struct ws *w, int code)
{
	struct client *cl = ws_data(w);

	cl->closed = 1;
	cl->close_code = code;
	cl->w = NULL;
}

static const struct ws_callbacks cl_cbs = {cl_on_message, cl_on_drain, cl_on_close};

static void cl_on_watchdog(uv_timer_t *t)
{
	struct client *cl = t->data;

	cl->timed_out = 1;
}

/* The client runs on f's loop, or on a loop of its own when f is NULL. */
static void cl_init(struct client *cl, struct fixture *f)
{
	memset(cl, 0, sizeof(*cl));
	cl->f = f;
	if (f) {
		cl->loop = &f->loop;
	} else {
		uv_loop_init(&cl->own);
		cl->loop = &cl->own;
	}
	uv_timer_init(cl->loop, &cl->watchdog);
	cl->watchdog.data = cl;
	uv_timer_start(&cl->watchdog, cl_on_watchdog, WATCHDOG_MS, 0);
	uv_timer_init(cl->loop, &cl->resume);
	cl->resume.data = cl;
}

static void cl_on_handle_closed(uv_handle_t *h)
{
	struct client *cl = h->data;

	cl->handles--;
}

static void cl_fini(struct client *cl)
{
	cl->handles = 2;
	uv_close((uv_handle_t *)&cl->watchdog, cl_on_handle_closed);
	uv_close((uv_handle_t *)&cl->resume, cl_on_handle_closed);
	if (cl->f) {
		while (cl->handles > 0)
			uv_run(cl->loop, UV_RUN_ONCE);
	} else {
		uv_run(cl->loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(cl->loop), 0);
	}
	free(cl->msg);
	free(cl->chunk);
}

static void run_until(struct client *cl, const int *flag)
{
	while (!*flag && !cl->timed_out)
		uv_run(cl->loop, UV_RUN_ONCE);
	assert_false(cl->timed_out);
}

static void cl_connect(struct client *cl, struct http_client_opts *o, const char *target,
		       const char *proto)
{
	assert_int_equal(ws_connect(cl->loop, o, target, proto, NULL, 0, 0, &cl_cbs, cl, cl_done,
				    cl),
			 0);
	run_until(cl, &cl->done);
}

/* Closes from the client side and checks 1000 on both sides. */
static void cl_close_normal(struct client *cl, int server_closes)
{
	ws_close(cl->w, WS_CLOSE_NORMAL, "done");
	run_until(cl, &cl->closed);
	assert_int_equal(cl->close_code, WS_CLOSE_NORMAL);
	wait_server_closes(cl->f, server_closes);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_NORMAL);
}

static void echo_sizes(struct client *cl)
{
	static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, 1024 * 1024 - 1};
	char *buf = malloc(1024 * 1024);
	size_t i, j;
	int op, rc;

	for (op = WS_TEXT; op <= WS_BINARY; op++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			int before = cl->nmsg;

			for (j = 0; j < sizes[i]; j++)
				buf[j] = op == WS_TEXT ? (char)('a' + (i + j) % 26)
						       : (char)((i * 7 + j * 13) & 0xff);
			rc = ws_send(cl->w, op, buf, sizes[i]);
			assert_true(rc >= 0);
			while (cl->nmsg == before && !cl->timed_out && !cl->closed)
				uv_run(cl->loop, UV_RUN_ONCE);
			assert_int_equal(cl->nmsg, before + 1);
			assert_int_equal(cl->opcode, op);
			assert_int_equal(cl->msg_len, sizes[i]);
			assert_memory_equal(cl->msg, buf, sizes[i] ? sizes[i] : 0);
		}
	}
	free(buf);
}

/* ---- tests ---- */

static void test_accept_key(void **state)
{
	char out[29], key[25], out2[29];

	(void)state;
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_client_key(key), 0);
	assert_int_equal(strlen(key), 24);
	assert_string_equal(key + 22, "==");
	assert_int_equal(ws_accept_key(key, 24, out2), 0);
	assert_int_equal(strlen(out2), 28);
}

static void set_header(struct http_request *r, size_t i, const char *name, const char *value)
{
	r->headers[i].name = slice_cstr(name);
	r->headers[i].value = slice_cstr(value);
	if (r->nheaders <= i)
		r->nheaders = i + 1;
}

static void test_check_upgrade(void **state)
{
	struct http_request *r = calloc(1, sizeof(*r));
	const char *why = NULL;

	(void)state;
	r->method = LIT("GET");
	set_header(r, 0, "Host", "x");
	set_header(r, 1, "upgrade", "WebSocket");
	set_header(r, 2, "Connection", "keep-alive, Upgrade");
	set_header(r, 3, "Sec-WebSocket-Version", " 13 ");
	set_header(r, 4, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
	set_header(r, 5, "Sec-WebSocket-Protocol", "chat, " PROTO);
	assert_int_equal(ws_check_upgrade_request(r, &why), 0);
	assert_true(ws_request_offers_protocol(r, PROTO));
	assert_true(ws_request_offers_protocol(r, "chat"));
	assert_false(ws_request_offers_protocol(r, "lxcm-tunnel"));

	r->method = LIT("POST");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	assert_non_null(why);
	r->method = LIT("GET");
	set_header(r, 1, "Upgrade", "h2c");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	set_header(r, 1, "Upgrade", "foo, websocket");
	assert_int_equal(ws_check_upgrade_request(r, &why), 0);
	set_header(r, 2, "Connection", "keep-alive");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	set_header(r, 2, "Connection", "upgrade");
	set_header(r, 3, "Sec-WebSocket-Version", "8");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	set_header(r, 3, "Sec-WebSocket-Version", "13");
	set_header(r, 4, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	set_header(r, 4, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j*Q==");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	set_header(r, 4, "X-Other", "1");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	/* Two keys are one too many. */
	set_header(r, 4, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
	set_header(r, 6, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(ws_check_upgrade_request(r, &why), -EINVAL);
	free(r);
}

static void test_echo_plain(void **state)
{
	struct fixture *f = start(0, 0);
	struct http_client_opts o = {0};
	struct client cl;

	(void)state;
	cl_init(&cl, f);
	o.host = "127.0.0.1";
	o.port = f->port;
	cl_connect(&cl, &o, "/ws", NULL);
	assert_int_equal(cl.status, 101);
	assert_non_null(cl.w);
	echo_sizes(&cl);
	cl_close_normal(&cl, 1);
	cl_fini(&cl);
	stop(f);
}

static void test_echo_tls(void **state)
{
	struct fixture *f = start(1, 0);
	struct http_client_opts o = {0};
	struct tls_client_opts to = {0};
	struct client cl;
	char err[256];
	SSL_CTX *ctx;

	(void)state;
	ctx = tls_client_ctx_new(&to, err, sizeof(err));
	assert_non_null(ctx);
	o.host = "127.0.0.1";
	o.port = f->port;
	o.tls = ctx;
	o.pin = f->fp;
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws-proto", PROTO);
	assert_int_equal(cl.status, 101);
	assert_true(conn_is_tls(ws_conn(cl.w)));
	echo_sizes(&cl);
	cl_close_normal(&cl, 1);
	cl_fini(&cl);

	/* The server insists on its subprotocol: a client without it gets 400. */
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws-proto", NULL);
	assert_int_equal(cl.status, 400);
	assert_null(cl.w);
	cl_fini(&cl);

	/* A client asking for a subprotocol the server does not speak refuses the 101. */
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws", PROTO);
	assert_int_equal(cl.status, -EPROTO);
	assert_null(cl.w);
	cl_fini(&cl);
	wait_server_closes(f, 2);

	/* A wrong pin fails before any HTTP. */
	o.pin = "00000000000000000000000000000000000000000000000000000000000000ff";
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws", NULL);
	assert_int_equal(cl.status, CONN_EPIN);
	cl_fini(&cl);
	SSL_CTX_free(ctx);
	stop(f);
}

static void test_server_close(void **state)
{
	struct fixture *f = start(0, 0);
	struct http_client_opts o = {0};
	struct client cl;

	(void)state;
	o.host = "127.0.0.1";
	o.port = f->port;
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws", NULL);
	assert_int_equal(ws_send(cl.w, WS_TEXT, "close-me", 8), 1);
	run_until(&cl, &cl.closed);
	assert_int_equal(cl.close_code, WS_CLOSE_NORMAL);
	wait_server_closes(f, 1);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_NORMAL);
	cl_fini(&cl);

	/* ws_abort: on_close(-ECONNABORTED) here, 1006 on the server. */
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws", NULL);
	ws_abort(cl.w);
	assert_int_equal(cl.closed, 0); /* never synchronously */
	run_until(&cl, &cl.closed);
	assert_int_equal(cl.close_code, -ECONNABORTED);
	wait_server_closes(f, 2);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_ABNORMAL);
	cl_fini(&cl);

	/* Refusals and failures reach done with a status or an error. */
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/nope", NULL);
	assert_int_equal(cl.status, 404);
	cl_fini(&cl);
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/plain", NULL);
	assert_int_equal(cl.status, 200);
	cl_fini(&cl);
	stop(f);

	o.port = 1;
	cl_init(&cl, NULL);
	cl_connect(&cl, &o, "/ws", NULL);
	assert_true(cl.status < 0);
	cl_fini(&cl);
}

static void test_too_big(void **state)
{
	struct fixture *f = start(0, 0);
	struct http_client_opts o = {0};
	struct client cl;
	char *buf = calloc(1, 4096);

	(void)state;
	o.host = "127.0.0.1";
	o.port = f->port;
	cl_init(&cl, f);
	cl_connect(&cl, &o, "/ws-small", NULL);
	assert_int_equal(ws_send(cl.w, WS_BINARY, buf, SMALL_MAX), 1);
	while (cl.nmsg == 0 && !cl.timed_out)
		uv_run(cl.loop, UV_RUN_ONCE);
	assert_int_equal(cl.msg_len, SMALL_MAX);
	assert_int_equal(ws_send(cl.w, WS_BINARY, buf, SMALL_MAX + 1), 1);
	run_until(&cl, &cl.closed);
	assert_int_equal(cl.close_code, WS_CLOSE_TOO_BIG);
	wait_server_closes(f, 1);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_TOO_BIG);
	assert_int_equal(cl.nmsg, 1);
	cl_fini(&cl);

	/* The client's own cap works the same way. */
	cl_init(&cl, f);
	assert_int_equal(ws_connect(cl.loop, &o, "/ws", NULL, NULL, 0, SMALL_MAX, &cl_cbs, &cl,
				    cl_done, &cl),
			 0);
	run_until(&cl, &cl.done);
	assert_non_null(cl.w);
	assert_int_equal(ws_send(cl.w, WS_BINARY, buf, 4096), 1);
	run_until(&cl, &cl.closed);
	assert_int_equal(cl.close_code, WS_CLOSE_TOO_BIG);
	assert_int_equal(cl.nmsg, 0);
	wait_server_closes(f, 2);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_TOO_BIG);
	cl_fini(&cl);
	free(buf);
	stop(f);
}

/* ---- raw sockets ---- */

static int raw_connect(int port)
{
	struct sockaddr_in a;
	struct timeval tv = {10, 0};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	uv_ip4_addr("127.0.0.1", port, &a);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return s;
}

static void raw_write(int s, const void *p, size_t n)
{
	assert_int_equal(write(s, p, n), (ssize_t)n);
}

/* Reads a response head byte by byte so that nothing after it is consumed. */
static int raw_read_head(int s, char *out, size_t outlen)
{
	size_t got = 0;

	while (got + 1 < outlen && read(s, out + got, 1) == 1) {
		got++;
		if (got >= 4 && memcmp(out + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	out[got] = '\0';
	return got > 12 ? (int)strtol(out + 9, NULL, 10) : -1;
}

static size_t raw_read_n(int s, unsigned char *out, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n && (r = read(s, out + got, n - got)) > 0)
		got += (size_t)r;
	return got;
}

static int raw_request(int port, const char *req, char *out, size_t outlen)
{
	int s = raw_connect(port), st;

	raw_write(s, req, strlen(req));
	st = raw_read_head(s, out, outlen);
	close(s);
	return st;
}

#define UPGRADE_HEAD                                                                               \
	"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

static void test_bad_upgrade(void **state)
{
	struct fixture *f = start(0, 1);
	char out[4096];

	(void)state;
	assert_int_equal(raw_request(f->port, UPGRADE_HEAD "Sec-WebSocket-Version: 13\r\n\r\n", out,
				     sizeof(out)),
			 400);
	assert_int_equal(raw_request(f->port,
				     UPGRADE_HEAD "Sec-WebSocket-Version: 8\r\n"
						  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
				     out, sizeof(out)),
			 400);
	assert_int_equal(raw_request(f->port,
				     "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Version: 13\r\n"
				     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
				     out, sizeof(out)),
			 400);
	assert_int_equal(atomic_load(&S.opened), 0);
	stop(f);
}

/* A valid handshake with RFC 6455's example key; returns the socket. */
static int raw_upgrade(int port)
{
	char out[4096];
	int s = raw_connect(port);
	const char *req = UPGRADE_HEAD "Sec-WebSocket-Version: 13\r\n"
				       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

	raw_write(s, req, strlen(req));
	assert_int_equal(raw_read_head(s, out, sizeof(out)), 101);
	assert_non_null(strstr(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	return s;
}

/* Sends junk after a valid handshake and expects a close frame with code, then EOF. */
static void junk_case(struct fixture *f, const unsigned char *junk, size_t n, int code, int nclosed)
{
	unsigned char b[8];
	int s = raw_upgrade(f->port);

	raw_write(s, junk, n);
	assert_int_equal(raw_read_n(s, b, 2), 2);
	assert_int_equal(b[0], 0x88);
	assert_int_equal(b[1], 2);
	assert_int_equal(raw_read_n(s, b, 2), 2);
	assert_int_equal((b[0] << 8) | b[1], code);
	close(s);
	wait_server_closes(f, nclosed);
	assert_int_equal(atomic_load(&S.last_code), code);
}

static void test_peer_junk(void **state)
{
	struct fixture *f = start(0, 1);
	/* An unmasked frame from a client. */
	static const unsigned char unmasked[] = {0x81, 0x02, 'h', 'i'};
	/* A reserved opcode (3), masked. */
	static const unsigned char opcode3[] = {0x83, 0x80, 1, 2, 3, 4};
	/* A ping with a 16-bit length: control frames are at most 125 bytes. */
	static const unsigned char bigping[] = {0x89, 0xfe, 0x00, 0x80, 1, 2, 3, 4};
	/* Invalid UTF-8 in a text frame (0xff), mask 0. */
	static const unsigned char badutf8[] = {0x81, 0x81, 0, 0, 0, 0, 0xff};
	/* RSV bits set. */
	static const unsigned char rsv[] = {0xf1, 0x80, 0, 0, 0, 0};
	/* A ping "abc" (mask 0) gets a pong. */
	static const unsigned char ping[] = {0x89, 0x83, 0, 0, 0, 0, 'a', 'b', 'c'};
	unsigned char b[8];
	int s;

	(void)state;
	junk_case(f, unmasked, sizeof(unmasked), WS_CLOSE_PROTOCOL_ERROR, 1);
	junk_case(f, opcode3, sizeof(opcode3), WS_CLOSE_PROTOCOL_ERROR, 2);
	junk_case(f, bigping, sizeof(bigping), WS_CLOSE_PROTOCOL_ERROR, 3);
	junk_case(f, badutf8, sizeof(badutf8), WS_CLOSE_INVALID_DATA, 4);
	junk_case(f, rsv, sizeof(rsv), WS_CLOSE_PROTOCOL_ERROR, 5);

	s = raw_upgrade(f->port);
	raw_write(s, ping, sizeof(ping));
	assert_int_equal(raw_read_n(s, b, 5), 5);
	assert_memory_equal(b, "\x8a\x03" "abc", 5);
	/* Going away without a close frame: 1006 on the server. */
	close(s);
	wait_server_closes(f, 6);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_ABNORMAL);
	stop(f);
}


/* ---- the frame codec ---- */

static void test_mask(void **state)
{
	static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
	uint8_t src[300], ref[300], out[310], *dst;
	size_t n, off, cut, i;
	unsigned phase, p2;

	(void)state;
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 7);
	for (phase = 0; phase < 4; phase++) {
		for (n = 0; n <= 100; n++) {
			for (i = 0; i < n; i++)
				ref[i] = src[i] ^ key[(phase + i) & 3];
			/* Unaligned destinations, and in place. */
			for (off = 0; off < 8; off++) {
				dst = out + off;
				assert_int_equal(ws__mask(dst, src, n, key, phase), (phase + n) & 3);
				assert_memory_equal(dst, ref, n);
			}
			memcpy(out + 3, src, n);
			ws__mask(out + 3, out + 3, n, key, phase);
			assert_memory_equal(out + 3, ref, n);
			/* Split anywhere, the phase carried over: the same bytes. */
			for (cut = 0; cut <= n; cut++) {
				p2 = ws__mask(out, src, cut, key, phase);
				ws__mask(out + cut, src + cut, n - cut, key, p2);
				assert_memory_equal(out, ref, n);
			}
		}
	}
}

/* Valid iff whole, fed in one piece and split at every point. */
static int utf8_ok(const char *s, size_t n)
{
	struct ws__utf8 u = {0}, v;
	int whole = ws__utf8(&u, (const uint8_t *)s, n) == 0 && u.need == 0, split;
	size_t cut;

	for (cut = 0; cut <= n; cut++) {
		memset(&v, 0, sizeof(v));
		split = ws__utf8(&v, (const uint8_t *)s, cut) == 0 &&
			    ws__utf8(&v, (const uint8_t *)s + cut, n - cut) == 0 && v.need == 0;
		assert_int_equal(split, whole);
	}
	return whole;
}

#define U8(lit) utf8_ok(lit, sizeof(lit) - 1)

static void test_utf8(void **state)
{
	(void)state;
	assert_true(U8(""));
	assert_true(U8("plain ascii, longer than eight bytes"));
	assert_true(U8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf"));
	assert_false(U8("\xff"));
	assert_false(U8("\x80"));
	assert_false(U8("\xc0\xaf"));	  /* overlong */
	assert_false(U8("\xc1\xbf"));	  /* overlong */
	assert_false(U8("\xe0\x9f\xbf"));  /* overlong */
	assert_false(U8("\xed\xa0\x80"));  /* surrogate */
	assert_false(U8("\xf0\x8f\xbf\xbf")); /* overlong */
	assert_false(U8("\xf4\x90\x80\x80")); /* above U+10FFFF */
	assert_false(U8("\xf5\x80\x80\x80"));
	assert_false(U8("abc\xe2\x82"));   /* cut short */
	assert_false(U8("\xe2\x82" "abcdefgh"));
}

/* Builds a frame: b0, the payload with the shortest length, masked with key if key. */
static size_t make_frame(unsigned char *out, unsigned b0, const void *payload, size_t n,
			 const unsigned char *key)
{
	size_t h = 2, i;

	out[0] = (unsigned char)b0;
	if (n < 126) {
		out[1] = (unsigned char)n;
	} else if (n <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(n >> 8);
		out[3] = (unsigned char)n;
		h = 4;
	} else {
		out[1] = 127;
		for (i = 0; i < 8; i++)
			out[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	if (key) {
		out[1] |= 0x80;
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (i = 0; i < n; i++)
		out[h + i] = ((const unsigned char *)payload)[i] ^ (key ? key[i & 3] : 0);
	return h + n;
}

/* Writes p in pieces of 1, 2, 3, ... bytes (TCP_NODELAY, a pause between them). */
static void raw_write_dribble(int s, const unsigned char *p, size_t n, size_t max_piece)
{
	size_t piece = 1, k;
	int one = 1;

	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (n) {
		k = piece < n ? piece : n;
		raw_write(s, p, k);
		p += k;
		n -= k;
		if (piece < max_piece)
			piece++;
		else
			piece = 1;
		usleep(200);
	}
}

/* Reads one frame: opcode, masked or not, payload into out (at most cap). */
static size_t raw_read_frame(int s, unsigned char *op, int *masked, unsigned char *out, size_t cap)
{
	unsigned char h[14];
	uint64_t n;
	size_t i;

	assert_int_equal(raw_read_n(s, h, 2), 2);
	*op = h[0];
	*masked = (h[1] & 0x80) != 0;
	n = h[1] & 0x7f;
	if (n == 126) {
		assert_int_equal(raw_read_n(s, h + 2, 2), 2);
		n = (uint64_t)h[2] << 8 | h[3];
	} else if (n == 127) {
		assert_int_equal(raw_read_n(s, h + 2, 8), 8);
		for (n = 0, i = 0; i < 8; i++)
			n = n << 8 | h[2 + i];
	}
	assert_true(n <= cap);
	if (*masked)
		assert_int_equal(raw_read_n(s, h + 10, 4), 4);
	assert_int_equal(raw_read_n(s, out, (size_t)n), (size_t)n);
	for (i = 0; *masked && i < n; i++)
		out[i] ^= h[10 + (i & 3)];
	return (size_t)n;
}

/*
 * The server parses frames that come a byte or a few at a time: headers
 * split anywhere, the mask's phase across reads, 16- and 64-bit lengths, and
 * a fragmented message with a ping between its fragments.
 */
static void test_codec_dribble(void **state)
{
	struct fixture *f = start(0, 1);
	static const unsigned char key[4] = {0xa1, 0xb2, 0xc3, 0xd4}, key2[4] = {0x5a, 0, 0xff, 7};
	size_t big = 70000, n, i, got;
	unsigned char *payload = malloc(big), *wire = malloc(big + 64), *back = malloc(big);
	unsigned char op;
	int s, masked;

	(void)state;
	for (i = 0; i < big; i++)
		payload[i] = (unsigned char)('a' + i % 23);
	s = raw_upgrade(f->port);
	/* 16-bit length, text. */
	n = make_frame(wire, 0x81, payload, 300, key);
	raw_write_dribble(s, wire, n, 7);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x81);
	assert_false(masked);
	assert_int_equal(got, 300);
	assert_memory_equal(back, payload, 300);
	/* 64-bit length, binary: the header a byte at a time, the rest in big writes. */
	n = make_frame(wire, 0x82, payload, big, key);
	raw_write_dribble(s, wire, 14, 1);
	raw_write_dribble(s, wire + 14, 19, 5);
	raw_write(s, wire + 33, n - 33);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x82);
	assert_int_equal(got, big);
	assert_memory_equal(back, payload, big);
	/* Three fragments, a ping between the first two; all a byte at a time. */
	n = make_frame(wire, 0x01, payload, 5, key);
	n += make_frame(wire + n, 0x89, "pi", 2, key);
	n += make_frame(wire + n, 0x00, payload + 5, 130, key2);
	n += make_frame(wire + n, 0x80, payload + 135, 1, key);
	raw_write_dribble(s, wire, n, 3);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x8a);
	assert_int_equal(got, 2);
	assert_memory_equal(back, "pi", 2);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x81);
	assert_int_equal(got, 136);
	assert_memory_equal(back, payload, 136);
	/* Empty fragments and an empty message. */
	n = make_frame(wire, 0x02, "", 0, key);
	n += make_frame(wire + n, 0x80, "", 0, key);
	n += make_frame(wire + n, 0x81, "", 0, key);
	raw_write_dribble(s, wire, n, 2);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x82);
	assert_int_equal(got, 0);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x81);
	assert_int_equal(got, 0);
	/* A close frame with a reason is echoed; then the server closes. */
	n = make_frame(wire, 0x88, "\x0f\xa0" "bye", 5, key);
	raw_write_dribble(s, wire, n, 1);
	got = raw_read_frame(s, &op, &masked, back, big);
	assert_int_equal(op, 0x88);
	assert_int_equal(got, 5);
	assert_memory_equal(back, "\x0f\xa0" "bye", 5);
	assert_int_equal(read(s, back, 1), 0);
	close(s);
	wait_server_closes(f, 1);
	assert_int_equal(atomic_load(&S.last_code), 4000);
	free(payload);
	free(wire);
	free(back);
	stop(f);
}

/* Frames that break RFC 6455 section 5: each gets a close frame with its code. */
static void test_codec_rules(void **state)
{
	struct fixture *f = start(0, 1);
	static const unsigned char key[4] = {9, 8, 7, 6};
	unsigned char w[64], b[16], op;
	size_t n;
	int k = 0, s, masked;

	(void)state;
	/* A continuation without a message. */
	n = make_frame(w, 0x80, "x", 1, key);
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* A new message inside a fragmented one. */
	n = make_frame(w, 0x01, "a", 1, key);
	n += make_frame(w + n, 0x81, "b", 1, key);
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* A fragmented ping. */
	n = make_frame(w, 0x09, "p", 1, key);
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* Reserved control opcode 0xb. */
	n = make_frame(w, 0x8b, "", 0, key);
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* A 16-bit length below 126 and a 64-bit one below 65536: not minimal. */
	junk_case(f, (const unsigned char *)"\x82\xfe\x00\x05\x01\x02\x03\x04", 8,
		  WS_CLOSE_PROTOCOL_ERROR, ++k);
	junk_case(f, (const unsigned char *)"\x82\xff\0\0\0\0\0\0\xff\xff\x01\x02\x03\x04", 14,
		  WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* A 64-bit length with the top bit set. */
	junk_case(f, (const unsigned char *)"\x82\xff\x80\0\0\0\0\0\0\0\x01\x02\x03\x04", 14,
		  WS_CLOSE_PROTOCOL_ERROR, ++k);
	/* 2 MiB announced (the cap is 1 MiB): 1009 before any payload. */
	junk_case(f, (const unsigned char *)"\x82\xff\0\0\0\0\0\x20\0\0\x01\x02\x03\x04", 14,
		  WS_CLOSE_TOO_BIG, ++k);
	/* Close frames: a 1-byte body, a code that must not be sent, a bad reason. */
	n = make_frame(w, 0x88, "\x03", 1, key);
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	n = make_frame(w, 0x88, "\x03\xed", 2, key); /* 1005 */
	junk_case(f, w, n, WS_CLOSE_PROTOCOL_ERROR, ++k);
	n = make_frame(w, 0x88, "\x03\xe8\xff", 3, key);
	junk_case(f, w, n, WS_CLOSE_INVALID_DATA, ++k);
	/* A text message split inside a character is fine; ending inside one is not. */
	n = make_frame(w, 0x81, "\xe2\x82", 2, key);
	junk_case(f, w, n, WS_CLOSE_INVALID_DATA, ++k);
	n = make_frame(w, 0x01, "\xe2\x82", 2, key);
	n += make_frame(w + n, 0x80, "\xac", 1, key);
	n += make_frame(w + n, 0x01, "\xe2", 1, key);
	n += make_frame(w + n, 0x80, "\x82", 1, key);
	s = raw_upgrade(f->port);
	raw_write(s, w, n);
	assert_int_equal(raw_read_frame(s, &op, &masked, b, sizeof(b)), 3);
	assert_int_equal(op, 0x81);
	assert_memory_equal(b, "\xe2\x82\xac", 3);
	assert_int_equal(raw_read_frame(s, &op, &masked, b, sizeof(b)), 2);
	assert_int_equal(op, 0x88);
	assert_memory_equal(b, "\x03\xef", 2);
	close(s);
	wait_server_closes(f, ++k);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_INVALID_DATA);
	stop(f);
}

/* Fragments whose sum passes the cap: 1009 at the fragment that does it. */
static void test_codec_fragments_too_big(void **state)
{
	struct fixture *f = start(0, 1);
	static const unsigned char key[4] = {1, 2, 3, 4};
	unsigned char *w = malloc(SMALL_MAX + 64), b[8];
	char out[4096];
	size_t n;
	int s = raw_connect(f->port);
	const char *req = "GET /ws-small HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
			  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
			  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

	(void)state;
	raw_write(s, req, strlen(req));
	assert_int_equal(raw_read_head(s, out, sizeof(out)), 101);
	memset(out, 'x', SMALL_MAX);
	n = make_frame(w, 0x02, out, SMALL_MAX - 10, key);
	n += make_frame(w + n, 0x80, out, 11, key);
	raw_write(s, w, n);
	assert_int_equal(raw_read_n(s, b, 4), 4);
	assert_memory_equal(b, "\x88\x02\x03\xf1", 4);
	close(s);
	wait_server_closes(f, 1);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_TOO_BIG);
	free(w);
	stop(f);
}

/*
 * A frame sent right behind the upgrade request reaches a WebSocket that is
 * accepted later, and the conn reads again afterwards.
 */
static void test_server_deferred_accept(void **state)
{
	struct fixture *f = start(0, 1);
	char out[4096];
	unsigned char b[8];
	int s = raw_connect(f->port);
	static const char req[] = "GET /ws-later HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
				  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
				  "\x82\x82\0\0\0\0hi";

	(void)state;
	raw_write(s, req, sizeof(req) - 1);
	assert_int_equal(raw_read_head(s, out, sizeof(out)), 101);
	assert_int_equal(raw_read_n(s, b, 4), 4);
	assert_memory_equal(b, "\x82\x02hi", 4);
	raw_write(s, "\x81\x82\0\0\0\0ok", 8);
	assert_int_equal(raw_read_n(s, b, 4), 4);
	assert_memory_equal(b, "\x81\x02ok", 4);
	raw_write(s, "\x88\x82\0\0\0\0\x03\xe8", 8);
	assert_int_equal(raw_read_n(s, b, 4), 4);
	assert_memory_equal(b, "\x88\x02\x03\xe8", 4);
	assert_int_equal(read(s, b, 1), 0); /* the server closes after the handshake */
	close(s);
	wait_server_closes(f, 1);
	assert_int_equal(atomic_load(&S.last_code), WS_CLOSE_NORMAL);
	stop(f);
}

/* ---- a raw server: the 101 and a first frame arrive in one write ---- */

struct raw_srv {
	int lfd, port;
	int close_code;
	/* Frames behind the 101 (default: one text frame "hi"), written a few bytes at a time. */
	const unsigned char *frames;
	size_t frames_len;
	/* The client fails us: close the socket after its close frame, without ours. */
	int expect_fail;
	/* The client's frames before its close frame (its pongs), kept here. */
	unsigned char got[256];
	size_t got_len;
};

static void raw_srv_thread(void *arg)
{
	struct raw_srv *r = arg;
	char head[4096], resp[512], acc[29];
	unsigned char b[256], op;
	const char *k;
	size_t len;
	int s = accept(r->lfd, NULL, NULL), n, masked;

	assert_true(s >= 0);
	(void)raw_read_head(s, head, sizeof(head));
	k = strstr(head, "Sec-WebSocket-Key: ");
	assert_non_null(k);
	assert_int_equal(ws_accept_key(k + 19, 24, acc), 0);
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n%s",
		     acc, r->frames ? "" : "\x81\x02hi");
	assert_true(n > 0 && (size_t)n < sizeof(resp));
	raw_write(s, resp, (size_t)n);
	if (r->frames)
		raw_write_dribble(s, r->frames, r->frames_len, 5);
	/* The client's frames, masked, up to its close frame. */
	for (;;) {
		len = raw_read_frame(s, &op, &masked, b, sizeof(b));
		assert_true(masked);
		if (op == 0x88)
			break;
		assert_true(r->got_len + 1 + len <= sizeof(r->got));
		r->got[r->got_len++] = op;
		memcpy(r->got + r->got_len, b, len);
		r->got_len += len;
	}
	assert_true(len >= 2);
	r->close_code = (b[0] << 8) | b[1];
	if (!r->expect_fail) {
		raw_write(s, "\x88\x02\x03\xe8", 4);
		assert_int_equal(read(s, b, 1), 0); /* the client closes after the handshake */
	}
	close(s);
}

static void raw_srv_start(struct raw_srv *r, uv_thread_t *t)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lfd, 1), 0);
	getsockname(r->lfd, (struct sockaddr *)&a, &alen);
	r->port = ntohs(a.sin_port);
	uv_thread_create(t, raw_srv_thread, r);
}

static void test_client_extra_bytes(void **state)
{
	struct raw_srv r = {0};
	struct http_client_opts o = {0};
	struct client cl;
	uv_thread_t t;

	(void)state;
	raw_srv_start(&r, &t);
	o.host = "127.0.0.1";
	o.port = r.port;
	cl_init(&cl, NULL);
	cl_connect(&cl, &o, "/", NULL);
	assert_int_equal(cl.status, 101);
	assert_int_equal(cl.nmsg, 0); /* never from inside ws_connect's done */
	while (cl.nmsg == 0 && !cl.timed_out)
		uv_run(cl.loop, UV_RUN_ONCE);
	assert_int_equal(cl.msg_len, 2);
	assert_memory_equal(cl.msg, "hi", 2);
	ws_close(cl.w, WS_CLOSE_NORMAL, NULL);
	run_until(&cl, &cl.closed);
	assert_int_equal(cl.close_code, WS_CLOSE_NORMAL);
	cl_fini(&cl);
	uv_thread_join(&t);
	close(r.lfd);
	assert_int_equal(r.close_code, WS_CLOSE_NORMAL);
}

/* Client role: frames from a raw server; returns the client's close code. */
static int client_gets(struct raw_srv *r, int *nmsg, struct client *cl)
{
	struct http_client_opts o = {0};
	uv_thread_t t;
	int code;

	raw_srv_start(r, &t);
	o.host = "127.0.0.1";
	o.port = r->port;
	cl_init(cl, NULL);
	cl_connect(cl, &o, "/", NULL);
	assert_int_equal(cl->status, 101);
	if (!r->expect_fail) {
		while (cl->nmsg < *nmsg && !cl->timed_out && !cl->closed)
			uv_run(cl->loop, UV_RUN_ONCE);
		assert_int_equal(cl->nmsg, *nmsg);
		ws_close(cl->w, WS_CLOSE_NORMAL, NULL);
	}
	run_until(cl, &cl->closed);
	code = cl->close_code;
	*nmsg = cl->nmsg;
	uv_thread_join(&t);
	close(r->lfd);
	return code;
}

/*
 * The client role: unmasked server frames dribbled in (a 64-bit length, a
 * ping inside a fragmented message: the pong goes out masked), and a masked
 * server frame fails the connection with 1002.
 */
static void test_client_codec(void **state)
{
	struct raw_srv r;
	struct client cl;
	size_t big = 70000, n, i;
	unsigned char *payload = malloc(big), *wire = malloc(big + 64);
	int nmsg;

	(void)state;
	for (i = 0; i < big; i++)
		payload[i] = (unsigned char)(i * 7);
	n = make_frame(wire, 0x82, payload, big, NULL);
	n += make_frame(wire + n, 0x01, "ab", 2, NULL);
	n += make_frame(wire + n, 0x89, "png", 3, NULL);
	n += make_frame(wire + n, 0x80, "cd", 2, NULL);
	memset(&r, 0, sizeof(r));
	r.frames = wire;
	r.frames_len = n;
	nmsg = 2;
	assert_int_equal(client_gets(&r, &nmsg, &cl), WS_CLOSE_NORMAL);
	assert_int_equal(r.close_code, WS_CLOSE_NORMAL);
	assert_int_equal(cl.msg_len, 4);
	assert_memory_equal(cl.msg, "abcd", 4);
	assert_int_equal(r.got_len, 4);
	assert_memory_equal(r.got, "\x8apng", 4);
	cl_fini(&cl);

	/* A masked frame from the server. */
	n = make_frame(wire, 0x81, "hi", 2, (const unsigned char *)"\1\2\3\4");
	memset(&r, 0, sizeof(r));
	r.frames = wire;
	r.frames_len = n;
	r.expect_fail = 1;
	nmsg = 0;
	assert_int_equal(client_gets(&r, &nmsg, &cl), WS_CLOSE_PROTOCOL_ERROR);
	assert_int_equal(r.close_code, WS_CLOSE_PROTOCOL_ERROR);
	assert_int_equal(nmsg, 0);
	cl_fini(&cl);

	/* Past the client's cap (1 MiB by default): 1009 from the header alone. */
	memset(&r, 0, sizeof(r));
	r.frames = (const unsigned char *)"\x82\x7f\0\0\0\0\0\x10\0\x01";
	r.frames_len = 10;
	r.expect_fail = 1;
	nmsg = 0;
	assert_int_equal(client_gets(&r, &nmsg, &cl), WS_CLOSE_TOO_BIG);
	assert_int_equal(r.close_code, WS_CLOSE_TOO_BIG);
	cl_fini(&cl);
	free(payload);
	free(wire);
}

/* ---- backpressure ---- */

/* Client options for fixture f; *ctx is the TLS context to free, or NULL. */
static void opts_for(struct fixture *f, int tls, struct http_client_opts *o, SSL_CTX **ctx)
{
	struct tls_client_opts to = {0};
	char err[256];

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = f->port;
	*ctx = NULL;
	if (tls) {
		*ctx = tls_client_ctx_new(&to, err, sizeof(err));
		assert_non_null(*ctx);
		o->tls = *ctx;
		o->pin = f->fp;
	}
}

/* 64 MiB client -> server; the server stops reading for 1 ms every 8 messages. */
static void backpressure_to_server(int tls)
{
	struct fixture *f = start(tls, 0);
	struct http_client_opts o;
	struct client cl;
	char expect[64];
	SSL_CTX *ctx;

	opts_for(f, tls, &o, &ctx);
	cl_init(&cl, f);
	cl.mode = 1;
	cl.chunk = malloc(BULK_MSG);
	cl_connect(&cl, &o, "/sink", NULL);
	assert_non_null(cl.w);
	cl_bulk_send(&cl);
	run_until(&cl, &cl.got_final);
	FMT(expect, "got %zu 0", BULK_TOTAL);
	assert_string_equal(cl.final, expect);
	assert_int_equal(cl.sent, BULK_TOTAL);
	assert_true(cl.max_pending <= PENDING_BOUND);
	assert_true(cl.max_pending > WS_HIGH_WATER / 2); /* the receiver did push back */
	cl_close_normal(&cl, 1);
	cl_fini(&cl);
	SSL_CTX_free(ctx);
	stop(f);
}

/* 64 MiB server -> client; the client stops reading for 1 ms every 8 messages. */
static void backpressure_from_server(int tls)
{
	struct fixture *f = start(tls, 0);
	struct http_client_opts o;
	struct client cl;
	unsigned long long maxp;
	SSL_CTX *ctx;

	opts_for(f, tls, &o, &ctx);
	cl_init(&cl, f);
	cl.mode = 2;
	cl_connect(&cl, &o, "/push", NULL);
	assert_non_null(cl.w);
	run_until(&cl, &cl.got_final);
	assert_int_equal(cl.rmsgs, BULK_TOTAL / BULK_MSG);
	assert_int_equal(cl.violations, 0);
	assert_true(strncmp(cl.final, "max=", 4) == 0);
	maxp = strtoull(cl.final + 4, NULL, 10);
	assert_true(maxp <= PENDING_BOUND);
	assert_true(maxp > WS_HIGH_WATER / 2);
	cl_close_normal(&cl, 1);
	cl_fini(&cl);
	SSL_CTX_free(ctx);
	stop(f);
}

static void test_backpressure_to_server(void **state)
{
	(void)state;
	backpressure_to_server(0);
}

static void test_backpressure_from_server(void **state)
{
	(void)state;
	backpressure_from_server(0);
}

static void test_backpressure_tls(void **state)
{
	(void)state;
	backpressure_to_server(1);
	backpressure_from_server(1);
}

/*
 * Many small messages arrive in few reads: after ws_read_stop the ones wslay
 * already buffered are held, and all come in order, none while stopped.
 */
static void test_burst_pause(void **state)
{
	struct fixture *f = start(1, 0);
	struct http_client_opts o;
	struct client cl;
	SSL_CTX *ctx;

	(void)state;
	opts_for(f, 1, &o, &ctx);
	cl_init(&cl, f);
	cl.mode = 3;
	cl_connect(&cl, &o, "/burst", NULL);
	assert_non_null(cl.w);
	run_until(&cl, &cl.got_final);
	assert_int_equal(cl.rmsgs, BURST_N);
	assert_int_equal(cl.violations, 0);
	cl_close_normal(&cl, 1);
	cl_fini(&cl);
	SSL_CTX_free(ctx);
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_check_upgrade),
		cmocka_unit_test(test_echo_plain),
		cmocka_unit_test(test_echo_tls),
		cmocka_unit_test(test_server_close),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_bad_upgrade),
		cmocka_unit_test(test_peer_junk),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_codec_dribble),
		cmocka_unit_test(test_codec_rules),
		cmocka_unit_test(test_codec_fragments_too_big),
		cmocka_unit_test(test_client_extra_bytes),
		cmocka_unit_test(test_client_codec),
		cmocka_unit_test(test_server_deferred_accept),
		cmocka_unit_test(test_backpressure_to_server),
		cmocka_unit_test(test_backpressure_from_server),
		cmocka_unit_test(test_backpressure_tls),
		cmocka_unit_test(test_burst_pause),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
