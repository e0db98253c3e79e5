/*
 * fleetgen.c - many lxcm agents in one process, for bench/fleet.
 *
 * Each simulated cluster has its own certificate (cluster identity is the
 * certificate's fingerprint), enrolled through the real join endpoint, and
 * its own tunnel built from the agent's pieces: ws_connect with the
 * lxcm-tunnel.v2 subprotocol (or, with --transport direct, TLS with ALPN
 * lxcm-tunnel.v2: the direct transport) and a tunnel_h2 session in the
 * agent (HTTP/2 server) role. Requests that come down a tunnel are answered here with a
 * small JSON body, so no upstream is involved. Tunnels reconnect like
 * src/agent/tunnel_client.c: full-jitter exponential backoff (base 0.5 s,
 * cap 30 s), at once (jitter 0..250 ms) after a GOAWAY, the backoff starting
 * over after a tunnel stayed up for 60 s.
 *
 * Driven by bench/fleet through one command per line on stdin; every answer
 * is one JSON line on stdout:
 *   enroll            tokens (management API) + certificates + joins
 *   connect           opens every tunnel (at most --concurrency dialling)
 *   wait T            waits until every tunnel is up (or T seconds)
 *   mark              starts a clock (before the driver restarts the server)
 *   status [C]        one heartbeat POST per cluster, C (else --concurrency) at a time,
 *                     each as the agent sends it (src/agent/heartbeat.c): a new
 *                     connection with the cluster's TLS context, which resumes
 *                     the session of its tunnel or of its last post
 *   quit
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <uv.h>

#include "common/cert.h"
#include "common/log.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "net/tunnel_h2.h"
#include "net/tunnel_transport.h"
#include "net/ws.h"

#define FG_BACKOFF_BASE_MS 500
#define FG_BACKOFF_CAP_MS 30000
#define FG_HEALTHY_MS 60000
#define FG_PROTOCOL "lxcm-tunnel.v2"
#define FG_NAME_MAX 32

struct fg_cluster {
	int idx;
	char name[FG_NAME_MAX];
	char *cert_pem, *key_pem;
	char *token;
	SSL_CTX *ctx;
	struct tunnel_transport tr; /* tr.h while up */
	struct conn *dial;	    /* a direct dial under way */
	struct tunnel_h2 *t;
	uv_timer_t timer;
	unsigned attempt;
	uint64_t connected_at;
	int connecting, goaway, up, enrolled, wanted;
};

static struct {
	uv_loop_t *loop;
	int mgmt_port, conn_port;
	const char *admin_token;
	const char *fp;
	int n;
	int concurrency;
	int direct; /* --transport direct: HTTP/2 over TLS, else the WebSocket */
	int status_concurrency; /* heartbeats in flight (the status command) */
	unsigned long resumed0;	/* TLS resumptions before this status round */
	struct fg_cluster *cl;
	SSL_CTX *anon; /* no client certificate: management API and joins */
	/* the current command */
	int next, inflight, done, failed;
	uint64_t t0, mark_ms;
	double *lat; /* status: latencies in ms */
	size_t nlat;
	int nup;
	uint64_t reconnects, connect_failures;
	int waiting;
	uv_timer_t wait_timer;
	uv_pipe_t in;
	char line[256];
	size_t line_len;
	const char *status_body;
	size_t status_len;
} G;

static void fg_connect(struct fg_cluster *c);
static void fg_pump_connect(void);

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

static double since_s(uint64_t t0)
{
	return (double)(now_ms() - t0) / 1000.0;
}

static void emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

static void fg_opts(struct http_client_opts *o, int port, SSL_CTX *ctx)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = port;
	o->tls = ctx;
	o->pin = G.fp;
	o->connect_timeout_ms = 30000;
	o->response_timeout_ms = 60000;
	o->idle_timeout_ms = 60000;
}

static uint64_t jitter(uint64_t max)
{
	uint64_t r = 0;

	if (max == 0)
		return 0;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return r % (max + 1);
}

/* ---------------------------------------------------------------- enroll */

static void enroll_next(void);

static void enroll_finish_one(struct fg_cluster *c, int ok)
{
	G.inflight--;
	G.done++;
	if (!ok)
		G.failed++;
	c->enrolled = ok;
	if (G.done == G.n) {
		emit(json_pack("{s:s,s:i,s:i,s:f}", "event", "enrolled", "n", G.n, "failed", G.failed,
			       "seconds", since_s(G.t0)));
		return;
	}
	enroll_next();
}

static void on_join(struct http_fetch_result *res, void *arg)
{
	struct fg_cluster *c = arg;
	struct tls_client_opts to = {0};
	char err[256];

	if (res->err || res->status != 200) {
		fprintf(stderr, "join %s: err %d status %d %s\n", c->name, res->err, res->status,
			res->body ? res->body : "");
		enroll_finish_one(c, 0);
		return;
	}
	to.cert_pem = c->cert_pem;
	to.key_pem = c->key_pem;
	c->ctx = tls_client_ctx_new(&to, err, sizeof(err));
	if (c->ctx == NULL)
		fprintf(stderr, "tls ctx %s: %s\n", c->name, err);
	/* As the agent does (agent_init): tunnel and heartbeats resume sessions. */
	if (c->ctx && tls_client_enable_resumption(c->ctx) != 0)
		fprintf(stderr, "tls resumption %s: out of memory\n", c->name);
	free(c->token);
	c->token = NULL;
	enroll_finish_one(c, c->ctx != NULL);
}

static void on_token(struct http_fetch_result *res, void *arg)
{
	struct fg_cluster *c = arg;
	struct http_client_opts o;
	struct http_header h[1] = {{LIT("Content-Type"), LIT("application/json")}};
	json_t *j = NULL, *tok;
	char *body;

	if (res->err == 0 && res->status == 200)
		j = json_loads(res->body, 0, NULL);
	tok = json_object_get(json_object_get(j, "metadata"), "token");
	if (!json_is_string(tok)) {
		fprintf(stderr, "token %s: err %d status %d %s\n", c->name, res->err, res->status,
			res->body ? res->body : "");
		json_decref(j);
		enroll_finish_one(c, 0);
		return;
	}
	c->token = strdup(json_string_value(tok));
	json_decref(j);
	if (c->cert_pem == NULL && cert_generate(c->name, 30, &c->cert_pem, &c->key_pem) != 0) {
		enroll_finish_one(c, 0);
		return;
	}
	j = json_pack("{s:s,s:s,s:s}", "cluster_name", c->name, "cluster_certificate", c->cert_pem,
		      "token", c->token);
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	fg_opts(&o, G.conn_port, G.anon);
	if (body == NULL || http_fetch(G.loop, &o, "POST", "/1.0/remote-cluster", h, 1, body,
				       strlen(body), 1 << 16, on_join, c) < 0)
		enroll_finish_one(c, 0);
	free(body);
}

static void enroll_next(void)
{
	while (G.inflight < G.concurrency && G.next < G.n) {
		struct fg_cluster *c = &G.cl[G.next++];
		struct http_client_opts o;
		char auth[512], body[128];
		struct http_header h[2];

		snprintf(auth, sizeof(auth), "Bearer %s", G.admin_token);
		snprintf(body, sizeof(body), "{\"cluster_name\":\"%s\"}", c->name);
		h[0] = (struct http_header){LIT("Authorization"), slice_cstr(auth)};
		h[1] = (struct http_header){LIT("Content-Type"), LIT("application/json")};
		fg_opts(&o, G.mgmt_port, G.anon);
		G.inflight++;
		if (http_fetch(G.loop, &o, "POST", "/1.0/remote-cluster-join-token", h, 2, body,
			       strlen(body), 1 << 16, on_token, c) < 0) {
			G.inflight--;
			G.done++;
			G.failed++;
		}
	}
}

static void cmd_enroll(void)
{
	G.next = G.inflight = G.done = G.failed = 0;
	G.t0 = now_ms();
	enroll_next();
}

/* ---------------------------------------------------------------- tunnels */

static int fg_send(void *io, const uint8_t *data, size_t len)
{
	struct fg_cluster *c = io;

	return tunnel_transport_send(&c->tr, data, len);
}

static void fg_s_on_data(struct tunnel_h2_stream *s, const uint8_t *data, size_t len)
{
	(void)data;
	tunnel_h2_stream_consume(s, len);
}

static const struct tunnel_h2_stream_callbacks fg_stream_cbs = {
	.on_data = fg_s_on_data,
};

/* Every request gets 200 and a small JSON body, like a tiny LXD answer. */
static void fg_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	static const char body[] = "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
				   "\"metadata\":{\"fleet\":true}}";
	char clen[16];
	struct http_header out[3];

	(void)t;
	(void)h;
	snprintf(clen, sizeof(clen), "%zu", sizeof(body) - 1);
	out[0] = (struct http_header){LIT(":status"), LIT("200")};
	out[1] = (struct http_header){LIT("content-type"), LIT("application/json")};
	out[2] = (struct http_header){LIT("content-length"), slice_cstr(clen)};
	tunnel_h2_stream_set_callbacks(s, &fg_stream_cbs, NULL);
	if (tunnel_h2_respond(s, out, 3, 1) == 0) {
		tunnel_h2_stream_write(s, body, sizeof(body) - 1);
		tunnel_h2_stream_end(s);
	}
}

static void fg_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	struct fg_cluster *c = tunnel_h2_data(t);

	(void)code;
	c->goaway = 1;
}

static const struct tunnel_h2_callbacks fg_tunnel_cbs = {
	.on_request = fg_on_request,
	.on_goaway = fg_on_goaway,
};

static void fg_on_tick(uv_timer_t *timer)
{
	fg_connect(timer->data);
}

/* The agent's tc_schedule. */
static void fg_schedule(struct fg_cluster *c)
{
	uint64_t ceiling = FG_BACKOFF_BASE_MS, delay;
	unsigned i;

	for (i = 0; i < c->attempt && ceiling < FG_BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > FG_BACKOFF_CAP_MS)
		ceiling = FG_BACKOFF_CAP_MS;
	delay = c->goaway ? jitter(250) : jitter(ceiling);
	c->goaway = 0;
	c->attempt++;
	uv_timer_start(&c->timer, fg_on_tick, delay, 0);
}

static void check_all_up(void)
{
	if (G.waiting && G.nup == G.n) {
		G.waiting = 0;
		uv_timer_stop(&G.wait_timer);
		emit(json_pack("{s:s,s:i,s:f,s:f,s:I,s:I}", "event", "all_up", "up", G.nup, "seconds",
			       since_s(G.t0), "since_mark", G.mark_ms ? since_s(G.mark_ms) : -1.0,
			       "reconnects", (json_int_t)G.reconnects, "connect_failures",
			       (json_int_t)G.connect_failures));
	}
}

static void fg_tr_on_bytes(void *owner, const uint8_t *data, size_t len)
{
	struct fg_cluster *c = owner;

	if (c->t == NULL)
		return;
	tunnel_h2_touch(c->t, uv_now(G.loop));
	if (tunnel_h2_feed(c->t, data, len) < 0)
		tunnel_transport_close(&c->tr, WS_CLOSE_PROTOCOL_ERROR, "HTTP/2 protocol error");
}

static void fg_tr_on_junk(void *owner, const char *why)
{
	(void)owner;
	(void)why;
}

static void fg_tr_on_drain(void *owner)
{
	struct fg_cluster *c = owner;

	if (c->t)
		tunnel_h2_flush(c->t);
}

static void fg_tr_on_close(void *owner, int code)
{
	struct fg_cluster *c = owner;
	uint64_t up_for = uv_now(G.loop) - c->connected_at;

	(void)code;
	if (c->t) {
		tunnel_h2_free(c->t);
		c->t = NULL;
	}
	if (c->up) {
		c->up = 0;
		G.nup--;
	}
	if (up_for >= FG_HEALTHY_MS)
		c->attempt = 0;
	G.reconnects++;
	fg_schedule(c);
}

static const struct tunnel_transport_callbacks fg_tr_cbs = {
	.on_bytes = fg_tr_on_bytes,
	.on_junk = fg_tr_on_junk,
	.on_drain = fg_tr_on_drain,
	.on_close = fg_tr_on_close,
};

/* The transport in c->tr is up (or status says why not): the agent's session on it. */
static void fg_up(struct fg_cluster *c, int status)
{
	struct tunnel_h2_io io = {.send = fg_send, .io = c}; /* no kick: every call flushes */

	c->connecting = 0;
	G.inflight--;
	if (status < 0) {
		G.connect_failures++;
		if (G.connect_failures <= 5)
			fprintf(stderr, "connect %s: %d\n", c->name, status);
		fg_schedule(c);
		fg_pump_connect();
		return;
	}
	c->t = tunnel_h2_new(0, NULL, &io, &fg_tunnel_cbs, c);
	if (c->t == NULL) {
		tunnel_transport_abort(&c->tr);
		fg_pump_connect();
		return;
	}
	c->connected_at = uv_now(G.loop);
	tunnel_h2_touch(c->t, c->connected_at);
	tunnel_h2_flush(c->t);
	c->up = 1;
	G.nup++;
	check_all_up();
	fg_pump_connect();
}

static void fg_on_connected(struct ws *w, int status, void *arg)
{
	struct fg_cluster *c = arg;

	if (w == NULL) {
		fg_up(c, status > 0 ? -status : status);
		return;
	}
	tunnel_transport_ws(&c->tr, w, &fg_tr_cbs, c);
	fg_up(c, 0);
}

/* The direct transport: TLS with ALPN lxcm-tunnel.v2, as the agent dials it. */
static void fg_dial_on_open(struct conn *k)
{
	struct fg_cluster *c = conn_data(k);
	unsigned len = 0;
	const char *p = conn_alpn(k, &len);

	if (p == NULL || len != sizeof(FG_PROTOCOL) - 1 || memcmp(p, FG_PROTOCOL, len) != 0) {
		conn_close(k); /* fg_dial_on_close reports it */
		return;
	}
	c->dial = NULL;
	tunnel_transport_direct(&c->tr, k, &fg_tr_cbs, c);
	fg_up(c, 0);
}

static void fg_dial_on_end(struct conn *k, int err)
{
	(void)err;
	conn_close(k);
}

static void fg_dial_on_close(struct conn *k)
{
	struct fg_cluster *c = conn_data(k);

	c->dial = NULL;
	fg_up(c, -EPROTO);
}

static const struct conn_callbacks fg_dial_cbs = {
	.on_open = fg_dial_on_open,
	.on_end = fg_dial_on_end,
	.on_close = fg_dial_on_close,
};

static void fg_connect(struct fg_cluster *c)
{
	static const unsigned char alpn[] = "\x0e" FG_PROTOCOL;
	struct http_client_opts o;

	if (c->connecting || tunnel_transport_up(&c->tr) || !c->enrolled)
		return;
	fg_opts(&o, G.conn_port, c->ctx);
	c->connecting = 1;
	G.inflight++;
	if (G.direct) {
		c->dial = conn_new(G.loop, c->ctx, &fg_dial_cbs, c);
		if (c->dial == NULL) {
			fg_up(c, -ENOMEM);
			return;
		}
		conn_set_alpn(c->dial, alpn, sizeof(alpn) - 1);
		conn_set_pin(c->dial, G.fp);
		if (conn_connect_tcp(c->dial, o.host, o.port) < 0)
			conn_close(c->dial); /* fg_dial_on_close reports it */
		return;
	}
	if (ws_connect(G.loop, &o, "/1.0/remote-cluster/ws", FG_PROTOCOL, NULL, 0, 1 << 20,
		       tunnel_transport_ws_callbacks(), NULL, fg_on_connected, c) < 0) {
		c->connecting = 0;
		G.inflight--;
		G.connect_failures++;
		fg_schedule(c);
	}
}

/* The first connect of every cluster, --concurrency dialling at a time. */
static void fg_pump_connect(void)
{
	while (G.next < G.n && G.inflight < G.concurrency) {
		struct fg_cluster *c = &G.cl[G.next++];

		fg_connect(c);
	}
}

static void on_wait_timeout(uv_timer_t *t)
{
	(void)t;
	if (!G.waiting)
		return;
	G.waiting = 0;
	emit(json_pack("{s:s,s:i,s:f,s:f,s:I,s:I}", "event", "timeout", "up", G.nup, "seconds",
		       since_s(G.t0), "since_mark", G.mark_ms ? since_s(G.mark_ms) : -1.0, "reconnects",
		       (json_int_t)G.reconnects, "connect_failures", (json_int_t)G.connect_failures));
}

static void cmd_wait(double secs, int reset_clock)
{
	if (reset_clock)
		G.t0 = now_ms();
	G.waiting = 1;
	uv_timer_start(&G.wait_timer, on_wait_timeout, (uint64_t)(secs * 1000), 0);
	check_all_up();
}

static void cmd_connect(double secs)
{
	G.next = G.inflight = 0;
	G.reconnects = G.connect_failures = 0;
	G.mark_ms = 0;
	cmd_wait(secs, 1);
	fg_pump_connect();
}

/* ---------------------------------------------------------------- status */

static void status_next(void);
static unsigned long total_resumed(void);

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (G.nlat == 0)
		return -1;
	i = (size_t)(p / 100.0 * (double)(G.nlat - 1) + 0.5);
	return G.lat[i];
}

struct status_req {
	struct fg_cluster *c;
	uint64_t t0;
};

static void on_status(struct http_fetch_result *res, void *arg)
{
	struct status_req *r = arg;

	G.inflight--;
	G.done++;
	if (res->err || res->status != 200) {
		if (G.failed++ < 5)
			fprintf(stderr, "status %s: err %d status %d %s\n", r->c->name, res->err,
				res->status, res->body ? res->body : "");
	} else {
		G.lat[G.nlat++] = (double)(uv_hrtime() / 1000 - r->t0) / 1000.0;
	}
	free(r);
	if (G.done == G.n) {
		double secs = since_s(G.t0);

		qsort(G.lat, G.nlat, sizeof(double), cmp_double);
		emit(json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:I}", "event", "status",
			       "posts", G.n, "failed", G.failed, "seconds", secs, "posts_per_s",
			       (double)G.nlat / secs, "p50_ms", pct(50), "p99_ms", pct(99), "max_ms",
			       pct(100), "concurrency", G.status_concurrency, "tls_resumed",
			       (json_int_t)(total_resumed() - G.resumed0)));
		return;
	}
	status_next();
}

/* TLS handshakes of every cluster's context that resumed a session. */
static unsigned long total_resumed(void)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < G.n; i++)
		if (G.cl[i].ctx)
			n += tls_client_resumed(G.cl[i].ctx);
	return n;
}

static void status_next(void)
{
	static const struct http_header h[2] = {{LIT("Content-Type"), LIT("application/json")},
						{LIT("User-Agent"), LIT("lxcm-agent/fleetgen")}};

	while (G.inflight < G.status_concurrency && G.next < G.n) {
		struct fg_cluster *c = &G.cl[G.next++];
		struct status_req *r = calloc(1, sizeof(*r));
		struct http_client_opts o;

		r->c = c;
		r->t0 = uv_hrtime() / 1000;
		fg_opts(&o, G.conn_port, c->ctx);
		G.inflight++;
		if (!c->enrolled || http_fetch(G.loop, &o, "POST", "/1.0/remote-cluster/status", h, 2,
					       G.status_body, G.status_len, 1 << 16, on_status, r) < 0) {
			struct http_fetch_result fake = {.err = -EINVAL};

			on_status(&fake, r);
			return;
		}
	}
}

/* A heartbeat shaped like the agent's: counters, loads, a few instances and members. */
static void make_status_body(void)
{
	json_t *inst = json_array(), *mem = json_array(), *pools = json_array(), *o;
	int i;

	for (i = 0; i < 8; i++)
		json_array_append_new(inst, json_pack("{s:s,s:i}", "status",
						      i % 3 ? "Running" : "Stopped", "count", i + 1));
	for (i = 0; i < 3; i++)
		json_array_append_new(mem, json_pack("{s:s,s:i}", "status", "Online", "count", 1));
	json_array_append_new(pools, json_pack("{s:s,s:s,s:I,s:I}", "name", "default", "member",
					       "node1", "total", (json_int_t)500107862016,
					       "usage", (json_int_t)123456789012));
	o = json_pack("{s:i,s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:o,s:[],s:s}", "cpu_total_count", 64,
		      "memory_total_amount", (json_int_t)270582939648, "memory_usage",
		      (json_int_t)98765432100, "cpu_load_1", "1.25", "cpu_load_5", "0.98",
		      "cpu_load_15", "0.75", "instance_statuses", inst, "member_statuses", mem,
		      "storage_pool_usages", pools, "ceph_statuses", "ui_url",
		      "https://lxd.example:8443");
	G.status_body = json_dumps(o, JSON_COMPACT);
	G.status_len = strlen(G.status_body);
	json_decref(o);
}

/* One round of heartbeats; concurrency > 0 replaces --concurrency for it. */
static void cmd_status(int concurrency)
{
	G.status_concurrency = concurrency > 0 ? concurrency : G.concurrency;
	G.resumed0 = total_resumed();
	G.next = G.inflight = G.done = G.failed = 0;
	G.nlat = 0;
	G.t0 = now_ms();
	status_next();
}

/* ---------------------------------------------------------------- commands */

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	static char buf[4096];

	(void)h;
	(void)n;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void run_command(char *cmd)
{
	double secs = 120;
	char *arg = strchr(cmd, ' ');

	if (arg) {
		*arg++ = '\0';
		secs = strtod(arg, NULL);
	}
	if (strcmp(cmd, "enroll") == 0) {
		cmd_enroll();
	} else if (strcmp(cmd, "connect") == 0) {
		cmd_connect(secs);
	} else if (strcmp(cmd, "wait") == 0) {
		cmd_wait(secs, 0);
	} else if (strcmp(cmd, "mark") == 0) {
		G.mark_ms = now_ms();
		G.t0 = G.mark_ms;
		G.reconnects = G.connect_failures = 0;
		emit(json_pack("{s:s,s:i}", "event", "marked", "up", G.nup));
	} else if (strcmp(cmd, "status") == 0) {
		cmd_status(arg ? (int)secs : 0);
	} else if (strcmp(cmd, "count") == 0) {
		emit(json_pack("{s:s,s:i}", "event", "count", "up", G.nup));
	} else if (strcmp(cmd, "quit") == 0) {
		fflush(stdout);
		_exit(0);
	} else {
		emit(json_pack("{s:s,s:s}", "event", "error", "unknown", cmd));
	}
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	ssize_t i;

	if (n < 0) {
		uv_walk(G.loop, on_walk_close, NULL);
		_exit(0);
	}
	for (i = 0; i < n; i++) {
		char ch = b->base[i];

		if (ch == '\n') {
			G.line[G.line_len] = '\0';
			G.line_len = 0;
			run_command(G.line);
		} else if (G.line_len + 1 < sizeof(G.line)) {
			G.line[G.line_len++] = ch;
		}
	}
	(void)s;
}

static void usage(void)
{
	fputs("usage: fleetgen --mgmt-port P --conn-port Q --admin-token T --fingerprint HEX "
	      "--n N [--concurrency C] [--prefix NAME] [--transport direct|websocket]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mgmt-port", required_argument, NULL, 'm'},
		{"conn-port", required_argument, NULL, 'c'},
		{"admin-token", required_argument, NULL, 't'},
		{"fingerprint", required_argument, NULL, 'f'},
		{"n", required_argument, NULL, 'n'},
		{"concurrency", required_argument, NULL, 'C'},
		{"prefix", required_argument, NULL, 'p'},
		{"transport", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	struct tls_client_opts to = {0};
	const char *prefix = "fleet";
	char err[256];
	int ch, i;

	G.concurrency = 64;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': G.mgmt_port = (int)strtol(optarg, NULL, 10); break;
		case 'c': G.conn_port = (int)strtol(optarg, NULL, 10); break;
		case 't': G.admin_token = optarg; break;
		case 'f': G.fp = optarg; break;
		case 'n': G.n = (int)strtol(optarg, NULL, 10); break;
		case 'C': G.concurrency = (int)strtol(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		case 'T': G.direct = strcmp(optarg, "direct") == 0; break;
		default: usage();
		}
	}
	if (!G.mgmt_port || !G.conn_port || !G.admin_token || !G.fp || G.n <= 0 ||
	    G.concurrency <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	log_set_prefix("fleetgen");
	log_set_level(LOG_LEVEL_ERROR);
	G.loop = uv_default_loop();
	G.anon = tls_client_ctx_new(&to, err, sizeof(err));
	G.cl = calloc((size_t)G.n, sizeof(*G.cl));
	G.lat = calloc((size_t)G.n, sizeof(double));
	if (G.anon == NULL || G.cl == NULL || G.lat == NULL) {
		fprintf(stderr, "fleetgen: setup failed: %s\n", err);
		return 1;
	}
	for (i = 0; i < G.n; i++) {
		struct fg_cluster *c = &G.cl[i];

		c->idx = i;
		snprintf(c->name, sizeof(c->name), "%s%d", prefix, i);
		uv_timer_init(G.loop, &c->timer);
		c->timer.data = c;
	}
	make_status_body();
	uv_timer_init(G.loop, &G.wait_timer);
	uv_pipe_init(G.loop, &G.in, 0);
	uv_pipe_open(&G.in, 0);
	uv_read_start((uv_stream_t *)&G.in, on_alloc, on_stdin);
	emit(json_pack("{s:s,s:i}", "event", "ready", "n", G.n));
	uv_run(G.loop, UV_RUN_DEFAULT);
	return 0;
}
