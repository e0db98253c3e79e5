/*
 * fuzz_http.c - HTTP/1.1 requests through the real server
 * (src/net/http_server.c with llhttp, conn.c, router.c) over a loopback
 * TCP connection inside the fuzzer process.
 *
 * The server runs plaintext on a small route table that covers every kind
 * of handler the product has: buffered bodies (with a small per-route cap),
 * route captures, a streaming body echoed back chunked with pause/resume
 * and backpressure, an answer that comes later from a timer (so pipelined
 * requests wait), a JSON body parsed with json_parse_object, a pre_route
 * refusal, and a WebSocket upgrade (ws_server_accept) whose frames follow in
 * the same input. The caps and timeouts are set small so that 413, 431 and
 * the timers are reachable.
 *
 * The input is the raw byte stream of one client connection, written in
 * two parts: up to the end of the first request head (the first blank
 * line), then the rest, with the server's loop run in between, as a real
 * client sends a head and then its body. A request answered at its head
 * (413, 431, the pre_route refusal) so has the rest arrive while the
 * connection lingers (http_server.c, hc_linger). The client half-closes
 * after it and reads until the server closes. What the server
 * sent back must parse as HTTP/1.1 responses (llhttp), up to a 101. Between
 * inputs every connection, timer and request must be gone (fznet_settle).
 *
 * The server's timeouts are long (30 s) and the client gives it 2 s after
 * its EOF to answer everything and close; a connection still open then has
 * stalled (a request never read or never answered), and the input is kept
 * as a crash. FUZZ_STRICT=0 makes the timeouts short (150 ms) and stalls
 * end at them (for hunting other bugs faster).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "common/json_util.h"
#include "common/log.h"
#include "fuzz.h"
#include "fznet.h"
#include "net/http.h"
#include "net/ws.h"

static struct http_server *fz_server;
static int fz_port;
static int fz_strict;
static struct net_cidr trusted[2]; /* the server's --trusted-proxy */

/* ---- handlers ---- */

static void h_root(struct http_request *req)
{
	http_respond_json(req, 200, json_pack("{s:s}", "hello", "fuzz"));
}

static void h_echo(struct http_request *req)
{
	static const struct http_header h[] = {{LIT("Content-Type"), LIT("text/plain")}};

	if (slice_eq(req->method, LIT("DELETE"))) {
		http_respond(req, 204, NULL, 0, NULL, 0);
		return;
	}
	http_respond(req, 200, h, 1, req->body.data, req->body.len);
}

static void h_item(struct http_request *req)
{
	char id[16], sub[512];
	struct slice x = http_request_header(req, LIT("X-Fuzz"));
	int rc = http_request_param(req, 0, id, sizeof(id));

	if (rc == -E2BIG) {
		http_respond_error(req, 414, "id too long");
		return;
	}
	if (http_request_param(req, 1, sub, sizeof(sub)) != 0)
		sub[0] = '\0';
	/* peer_addr went through the X-Forwarded-For walk (--trusted-proxy). */
	if (req->peer_addr == NULL || strlen(req->peer_addr) >= NET_ADDR_TEXT_MAX)
		abort();
	http_respond_json(req, 200,
			  json_pack("{s:s,s:s,s:s%,s:i,s:s}", "id", rc == 0 ? id : "", "sub", sub,
				    "x", x.base ? x.base : "", x.len, "n", (int)req->nheaders,
				    "client", req->peer_addr));
}

static void h_json(struct http_request *req)
{
	char err[64];
	json_t *obj = NULL;

	if (json_parse_object(req->body.data, req->body.len, &obj, err, sizeof(err)) != 0) {
		http_respond_error(req, 400, "%s", err);
		return;
	}
	http_respond_json(req, 200, obj);
}

/* A request answered (or a paused body resumed) from a timer, later. */
struct fz_later {
	uv_timer_t timer;
	struct http_request *req;
	int resume; /* 1: resume the paused body; 0: answer the request */
};

static void fz_later_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fz_later_fire(uv_timer_t *t)
{
	struct fz_later *l = t->data;

	if (l->resume) {
		l->req->data = NULL;
		http_request_resume(l->req);
	} else {
		http_respond(l->req, 200, NULL, 0, "later", 5);
	}
	uv_close((uv_handle_t *)t, fz_later_closed);
}

static struct fz_later *fz_later_start(struct http_request *req, int resume)
{
	struct fz_later *l = calloc(1, sizeof(*l));

	if (l == NULL)
		abort();
	l->req = req;
	l->resume = resume;
	uv_timer_init(fznet_loop(), &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, fz_later_fire, 1, 0);
	return l;
}

static void h_later(struct http_request *req)
{
	fz_later_start(req, 0);
}

/* Streaming: the body is echoed back as it arrives, in a chunked response. */
static void s_on_drain(struct http_request *req)
{
	http_request_resume(req);
}

static void s_on_body(struct http_request *req, const char *data, size_t len)
{
	int rc = http_response_write(req, data, len);

	if (rc == 0) {
		http_request_pause(req); /* s_on_drain resumes */
	} else if (rc > 0 && slice_starts_with(req->path, LIT("/stream/pause")) &&
		   req->data == NULL) {
		/* Pause once per chunk and resume from a timer. */
		http_request_pause(req);
		req->data = fz_later_start(req, 1);
	}
}

static void s_on_end(struct http_request *req)
{
	if (req->data) {
		/* A resume is still due: the timer must not touch req any more. */
		struct fz_later *l = req->data;

		uv_timer_stop(&l->timer);
		uv_close((uv_handle_t *)&l->timer, fz_later_closed);
	}
	http_response_end(req);
}

static void s_on_abort(struct http_request *req)
{
	s_on_end(req);
}

static void h_stream(struct http_request *req)
{
	req->on_body = s_on_body;
	req->on_body_end = s_on_end;
	req->on_abort = s_on_abort;
	req->on_drain = s_on_drain;
	/* on_body_end follows even for an empty body. */
	if (http_response_start(req, 200, NULL, 0, -1) < 0)
		http_response_abort(req);
}

/* WebSocket echo. */
static void w_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	if (len >= 5 && memcmp(data, "close", 5) == 0)
		ws_close(w, WS_CLOSE_NORMAL, "bye");
	else
		ws_send(w, opcode, data, len);
}

static void w_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
}

static const struct ws_callbacks fz_ws_cbs = {
	.on_message = w_on_message,
	.on_close = w_on_close,
};

static void h_ws(struct http_request *req)
{
	(void)ws_server_accept(req, NULL, 4096, &fz_ws_cbs, NULL);
}

static const struct http_route fz_routes[] = {
	{"GET", "/", h_root, 0, 0},
	{NULL, "/echo", h_echo, 0, 4096},
	{"GET", "/items/{id}", h_item, 0, 0},
	{"GET", "/items/{id}/{*}", h_item, 0, 0},
	{"POST", "/json", h_json, 0, 0},
	{NULL, "/later", h_later, 0, 0},
	{NULL, "/stream/{*}", h_stream, HTTP_ROUTE_STREAM_BODY, 0},
	{"GET", "/ws", h_ws, HTTP_ROUTE_UPGRADE, 0},
};

static int fz_pre_route(struct http_request *req)
{
	if (http_request_header(req, LIT("X-Deny")).base == NULL)
		return 0;
	http_respond_error(req, 403, "denied");
	return -1;
}

/* ---- checking the replies ---- */

static int fz_reply_status;

static int fz_on_reply_headers(llhttp_t *p)
{
	fz_reply_status = p->status_code;
	return p->status_code == 101 ? 2 : 0; /* 2: no body, stop at the upgrade */
}

static void fz_check_reply(const uint8_t *reply, size_t len)
{
	llhttp_settings_t st;
	llhttp_t p;
	llhttp_errno_t err;

	llhttp_settings_init(&st);
	st.on_headers_complete = fz_on_reply_headers;
	llhttp_init(&p, HTTP_RESPONSE, &st);
	fz_reply_status = 0;
	err = llhttp_execute(&p, (const char *)reply, len);
	if (err != HPE_OK && err != HPE_PAUSED_UPGRADE &&
	    !(err == HPE_CB_HEADERS_COMPLETE && fz_reply_status == 101)) {
		fprintf(stderr, "fuzz_http: the server's reply is not HTTP/1.1: %s (%s)\n",
			llhttp_errno_name(err), llhttp_get_error_reason(&p));
		abort();
	}
}

/* ---- entry points ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct http_server_config cfg = {0};

	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	cfg.host = FZNET_HOST;
	cfg.port = 0;
	cfg.routes = fz_routes;
	cfg.nroutes = sizeof(fz_routes) / sizeof(fz_routes[0]);
	cfg.name = "fuzz";
	cfg.pre_route = fz_pre_route;
	cfg.limits.max_header_bytes = 2048;
	cfg.limits.max_headers = 16;
	cfg.limits.max_json_body = 16384;
	/* The client is a trusted proxy: every X-Forwarded-For is walked. */
	if (net_cidr_parse("127.0.0.0/8", &trusted[0]) != 0 ||
	    net_cidr_parse("10.0.0.0/8", &trusted[1]) != 0)
		abort();
	cfg.trusted_proxies = trusted;
	cfg.ntrusted_proxies = 2;
	fz_strict = !(getenv("FUZZ_STRICT") && strcmp(getenv("FUZZ_STRICT"), "0") == 0);
	/* Lenient mode: short, so that inputs that stall cost little time. */
	cfg.limits.header_timeout_ms = fz_strict ? 30000 : 150;
	cfg.limits.idle_timeout_ms = fz_strict ? 30000 : 150;
	cfg.limits.body_timeout_ms = fz_strict ? 30000 : 150;
	cfg.limits.linger_ms = fz_strict ? 30000 : 150;
	cfg.limits.linger_idle_ms = fz_strict ? 30000 : 150;
	cfg.limits.linger_max_bytes = 8192; /* reachable with inputs of a few KiB */
	if (http_server_start(fznet_loop(), &cfg, &fz_server) != 0)
		abort();
	fz_port = http_server_port(fz_server);
	fznet_mark_baseline();
	return 0;
}

/* Where the first request head ends (after its blank line), or size. */
static size_t fz_head_len(const uint8_t *data, size_t size)
{
	const uint8_t *p = memmem(data, size, "\r\n\r\n", 4);

	return p ? (size_t)(p - data) + 4 : size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t reply[1 << 20];
	size_t n = 0, head = fz_head_len(data, size);
	int fd = fznet_connect(fz_port);

	if (fd < 0)
		abort();
	/* The server's loop runs between the parts: a turn to accept, one to
	 * read the head (and answer), one spare. */
	if (fznet_write(fd, data, head, 2000) == head) {
		for (int i = 0; i < 3; i++)
			uv_run(fznet_loop(), UV_RUN_NOWAIT);
		fznet_send(fd, data + head, size - head, 2000);
	} else {
		(void)shutdown(fd, SHUT_WR);
	}
	if (fznet_drain(fd, fz_strict ? 2000 : 3000, reply, sizeof(reply), &n) != 0 && fz_strict) {
		fprintf(stderr, "fuzz_http: the server neither answered nor closed within 2 s "
				"of the client's EOF (a stalled connection); it sent:\n%.*s\n",
			(int)n, reply);
		abort();
	}
	fznet_close(fd);
	fznet_settle(fz_strict ? 35000 : 5000, "fuzz_http");
	if (getenv("FUZZ_VERBOSE"))
		fwrite(reply, 1, n, stderr);
	/* A HEAD answer has a Content-Length but no body: the check would misread it. */
	if (memmem(data, size, "HEAD", 4) == NULL)
		fz_check_reply(reply, n);
	return 0;
}
