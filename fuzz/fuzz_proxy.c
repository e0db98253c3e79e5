/*
 * fuzz_proxy.c - the management proxy end to end: ANY
 * /1.0/remote-cluster/{name}/tunnel/{path} (src/server/proxy.c, with its
 * WebSocket pass-through in src/net/stream_pipe.c) over a REAL v2 tunnel.
 *
 * The server is fzserver.c's, plaintext on loopback. A fake agent in this
 * process dials the connector's /1.0/remote-cluster/ws with ws_connect, the
 * lxcm-tunnel.v2 subprotocol and "X-Fuzz-Cert" (which stands in for the
 * client certificate of cluster "enrolled"), and runs a tunnel_h2 session
 * in the agent (HTTP/2 server) role, as bench/fleetgen.c does. The tunnel
 * stays up across inputs; one that an input closed (or sent GOAWAY on) is
 * taken down and dialled again after that input.
 *
 * Input: byte 0 holds flags, then two parts cut at a line "----":
 *   flags bit 0  hold: the user's write side stays open until the exchange
 *                is quiet (answers before the request body ends), then EOF
 *         bit 1  reset: the user's socket is reset soon after sending
 *         bit 2  slow: the user's socket has a small receive buffer and is
 *                not read for 40 ms after sending (backpressure)
 *   part 1       raw bytes the user sends to the management listener
 *   part 2       the fake agent's script, one block per stream it receives
 *                (blocks cut at lines "=="; a stream past the last block
 *                gets the last one; no script: 200 with a small body). A
 *                block is lines of commands, run in order:
 *     s CODE          the :status to answer (default 200)
 *     h NAME VALUE    a response header (tunnel_h2_respond lowercases it)
 *     hx NAME N       a header whose value is N bytes
 *     respond         send the headers, a body follows
 *     respond-end     send the headers with END_STREAM
 *     d TEXT          body bytes
 *     dn N            N body bytes
 *     end             END_STREAM
 *     rst CODE        RST_STREAM
 *     goaway          GOAWAY on the whole tunnel
 *     wait            wait until the request body ended (or the stream closed)
 *     sleep MS        wait MS milliseconds (at most 100)
 *     echo            write every request body byte back
 *     noconsume       never credit the request body (the window fills)
 *     rawh FLAGS      a raw HEADERS frame on this stream with the h headers
 *                     as they are (uppercase, pseudo-headers, CR/LF, ...),
 *                     HPACK literals, FLAGS a number (1 END_STREAM, 4 END_HEADERS)
 *     rawd FLAGS TEXT a raw DATA frame on this stream
 *     raw HEX         raw bytes as one WebSocket message
 *     close, abort    close (or cut) the tunnel's WebSocket
 *   A block that ends before an answer never answers.
 *
 * Invariants: the user gets well-formed HTTP/1.1 (llhttp; a cut mid-body is
 * fine, a bad byte is not), every status is in 100..599, there are never
 * more answers than requests (plus one for a malformed one), and a clean
 * connection end without "Connection: close" comes only after every
 * complete request was answered (while the agent kept to HTTP: see
 * fz_agent_clean). A complete answer of such an agent carries exactly the
 * body bytes it sent (each agent answer has an "x-fz-stream" header naming
 * its stream), and so do the bytes after a 101. The agent never receives a
 * header the proxy must strip (Authorization, hop-by-hop, Host, Expect, the
 * WebSocket handshake headers, lxcm_* cookies) and gets its own Forwarded
 * and X-Forwarded-* exactly once. Between inputs the loop settles: no
 * connection, timer or request left, no stream open on either side of the
 * tunnel. The proxy's header and body-idle timeouts are 60 and 100 ms
 * here, so stalls cost little. No check is tolerant of an open bug now
 * (FUZZ_STRICT=1 is accepted and changes nothing). FUZZ_VERBOSE=1 prints what the agent
 * got and the user's answer; FUZZ_QUIET_MS sets how long a quiet exchange
 * is waited on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "common/buf.h"
#include "common/log.h"
#include "fuzz.h"
#include "fznet.h"
#include "fzserver.h"
#include "net/tunnel_h2.h"
#include "net/ws.h"
#include "server/tunnels.h"

#define FZ_F_HOLD 0x01
#define FZ_F_RESET 0x02
#define FZ_F_SLOW 0x04
#define FZ_MAX_STREAMS 64
#define FZ_MAX_BLOCKS 64
#define FZ_MAX_HDRS 80
#define FZ_HBUF (96 << 10)
#define FZ_SLEEP_MAX_MS 100
#define FZ_QUIET_MS 150
#define FZ_PROXY_TIMEOUT_MS 60
#define FZ_PROXY_IDLE_MS 100 /* more than FZ_SLOW_MS: a slow reader is no stall */
#define FZ_SLOW_MS 40
#define FZ_CLUSTER "enrolled"
#define FZ_REPLY_MAX (1 << 20) /* what is kept of the user's answer */

static const char fz_default_script[] = "s 200\nh content-type application/json\nrespond\n"
					"d {\"type\":\"sync\"}\nend\n";

static struct server *fz_srv;
static uv_idle_t fz_pump;
static size_t fz_base_down, fz_base_up;
static uint64_t fz_activity;

/* ---- the fake agent's tunnel ---- */

static struct ws *fz_ws;
static struct tunnel_h2 *fz_t;
static int fz_connecting, fz_kicked, fz_recycle;
static int fz_desync; /* raw frames: the agent's session no longer knows its streams */
/*
 * The agent kept to HTTP this input: no reset, GOAWAY, raw frame, closed
 * tunnel, framing or hop-by-hop header, bodiless or odd status. Otherwise
 * a connection the proxy cuts after an answer that looked complete (a 204
 * whose stream then failed) is right, and the user cannot tell it apart.
 */
static int fz_agent_clean;
static uint64_t fz_quiet_ms = FZ_QUIET_MS; /* FUZZ_QUIET_MS overrides (debugging) */
static int fz_hold; /* this input holds the user's write side open (FZ_F_HOLD) */

struct fz_stream {
	struct tunnel_h2_stream *s;
	int32_t id;
	const char *pc, *stop; /* the rest of its block */
	int body_done, closed, echo, noconsume, waiting, responded;
	uint64_t wake_ms;
	char status[32];
	/* What the user must get as this answer's body, if all goes well. */
	uint64_t out_len, out_hash;
	int ended_ok, no_body;
	int is_connect; /* an extended CONNECT: its bytes follow a 101 */
	char tag[16]; /* x-fz-stream: which stream an answer came from */
	struct http_header h[FZ_MAX_HDRS];
	size_t nh, hused;
	char hbuf[FZ_HBUF];
};

static struct fz_stream *fz_st[FZ_MAX_STREAMS];
static size_t fz_nst;
static const char *fz_block[FZ_MAX_BLOCKS], *fz_block_end[FZ_MAX_BLOCKS];
static size_t fz_nblocks;
static char *fz_script;

static uint64_t fz_now(void)
{
	return uv_hrtime() / 1000000;
}

static void fz_on_pump(uv_idle_t *h);

static void fz_wake(void)
{
	if (!uv_is_active((uv_handle_t *)&fz_pump))
		uv_idle_start(&fz_pump, fz_on_pump);
}

static int fz_send(void *io, const uint8_t *data, size_t len)
{
	(void)io;
	if (fz_ws == NULL)
		return -EPIPE;
	fz_activity++;
	return ws_send(fz_ws, WS_BINARY, data, len);
}

static void fz_kick(void *io)
{
	(void)io;
	fz_kicked = 1;
	fz_wake();
}

static int fz_writable(void *io)
{
	(void)io;
	return fz_ws != NULL && ws_pending(fz_ws) < WS_HIGH_WATER;
}

/* ---- what the agent receives ---- */

static const char *const fz_stripped[] = {
	"authorization", "proxy-authorization", "connection", "keep-alive", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "host", "http2-settings",
	"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
	"sec-websocket-accept", "expect",
};

static void fz_fail_headers(const struct tunnel_h2_headers *h, const char *why)
{
	size_t i;

	fprintf(stderr, "fuzz_proxy: the agent got a request with %s:\n", why);
	for (i = 0; i < h->n; i++)
		fprintf(stderr, "  %.*s: %.*s\n", (int)h->h[i].name.len, h->h[i].name.base,
			(int)(h->h[i].value.len > 200 ? 200 : h->h[i].value.len), h->h[i].value.base);
	abort();
}

/* Every cookie of a Cookie header the agent got: none may be lxcm_*. */
static int fz_has_lxcm_cookie(struct slice v)
{
	size_t a = 0;

	while (a < v.len) {
		size_t b;

		while (a < v.len && (v.base[a] == ' ' || v.base[a] == ';' || v.base[a] == '\t'))
			a++;
		b = a;
		while (b < v.len && v.base[b] != ';')
			b++;
		if (b - a >= 5 && memcmp(v.base + a, "lxcm_", 5) == 0)
			return 1;
		a = b;
	}
	return 0;
}

static void fz_check_request(const struct tunnel_h2_headers *h)
{
	size_t i, j, fwd = 0, xff = 0, xfp = 0, clen = 0;
	struct slice m = tunnel_h2_header(h, LIT(":method"));

	if (m.base == NULL || tunnel_h2_header(h, LIT(":path")).base == NULL)
		fz_fail_headers(h, "no :method or :path");
	if (slice_eq(m, LIT("CONNECT")) && !slice_eq(tunnel_h2_header(h, LIT(":protocol")),
						     LIT("websocket")))
		fz_fail_headers(h, "a CONNECT without :protocol websocket");
	for (i = 0; i < h->n; i++) {
		struct slice n = h->h[i].name, v = h->h[i].value;

		for (j = 0; j < sizeof(fz_stripped) / sizeof(fz_stripped[0]); j++)
			if (slice_eq_nocase(n, slice_cstr(fz_stripped[j])))
				fz_fail_headers(h, "a header the proxy must strip");
		if (slice_eq_nocase(n, LIT("cookie")) && fz_has_lxcm_cookie(v))
			fz_fail_headers(h, "an lxcm_* cookie");
		if (slice_eq_nocase(n, LIT("forwarded")))
			fwd++;
		if (slice_eq_nocase(n, LIT("x-forwarded-proto")))
			xfp++;
		if (slice_eq_nocase(n, LIT("content-length")))
			clen++;
		if (slice_eq_nocase(n, LIT("x-forwarded-for"))) {
			xff++;
			if (!slice_eq(v, LIT("127.0.0.1")) && !slice_eq(v, LIT(FZNET_HOST)))
				fz_fail_headers(h, "an X-Forwarded-For that is not the peer");
		}
	}
	if (fwd != 1 || xff != 1 || xfp != 1 || clen > 1)
		fz_fail_headers(h, "Forwarded/X-Forwarded-*/Content-Length not exactly once");
}

static uint64_t fz_fnv(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* tunnel_h2_stream_write, counting what the stream will carry. */
static void fz_write(struct fz_stream *st, const void *data, size_t len)
{
	if (tunnel_h2_stream_write(st->s, data, len) >= 0) {
		st->out_len += len;
		st->out_hash = fz_fnv(st->out_hash, data, len);
	}
}

static void fz_s_on_data(struct tunnel_h2_stream *s, const uint8_t *data, size_t len)
{
	struct fz_stream *st = tunnel_h2_stream_data(s);

	fz_activity++;
	if (st->echo)
		fz_write(st, data, len);
	if (!st->noconsume)
		tunnel_h2_stream_consume(s, len);
}

static void fz_s_on_end(struct tunnel_h2_stream *s)
{
	struct fz_stream *st = tunnel_h2_stream_data(s);

	fz_activity++;
	st->body_done = 1;
	fz_wake();
}

static void fz_s_on_drain(struct tunnel_h2_stream *s)
{
	(void)s;
	fz_activity++;
}

static void fz_s_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct fz_stream *st = tunnel_h2_stream_data(s);

	(void)code;
	fz_activity++;
	st->closed = 1;
	st->s = NULL;
}

static const struct tunnel_h2_stream_callbacks fz_stream_cbs = {
	.on_data = fz_s_on_data,
	.on_end = fz_s_on_end,
	.on_drain = fz_s_on_drain,
	.on_close = fz_s_on_close,
};

static void fz_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct fz_stream *st;
	size_t b;

	(void)t;
	fz_activity++;
	fz_check_request(h);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "agent: %.*s %.*s\n", (int)tunnel_h2_header(h, LIT(":method")).len,
			tunnel_h2_header(h, LIT(":method")).base,
			(int)tunnel_h2_header(h, LIT(":path")).len, tunnel_h2_header(h, LIT(":path")).base);
	if (fz_nst == FZ_MAX_STREAMS) {
		tunnel_h2_stream_reset(s, 7 /* REFUSED_STREAM */);
		return;
	}
	st = calloc(1, sizeof(*st));
	FUZZ_CHECK(st != NULL);
	fz_st[fz_nst] = st;
	st->s = s;
	st->id = tunnel_h2_stream_id(s);
	st->out_hash = 14695981039346656037ull;
	st->is_connect = slice_eq(tunnel_h2_header(h, LIT(":method")), LIT("CONNECT"));
	snprintf(st->tag, sizeof(st->tag), "%zu", fz_nst);
	if (fz_nblocks == 0) {
		st->pc = fz_default_script;
		st->stop = fz_default_script + sizeof(fz_default_script) - 1;
	} else {
		b = fz_nst < fz_nblocks ? fz_nst : fz_nblocks - 1;
		st->pc = fz_block[b];
		st->stop = fz_block_end[b];
	}
	fz_nst++;
	/* Leading echo/noconsume lines hold from the first DATA on, which
	 * often comes in the same read as the HEADERS. */
	for (;;) {
		size_t left = (size_t)(st->stop - st->pc);

		if (left >= 5 && memcmp(st->pc, "echo\n", 5) == 0)
			st->echo = 1, st->pc += 5;
		else if (left >= 10 && memcmp(st->pc, "noconsume\n", 10) == 0)
			st->noconsume = 1, st->pc += 10;
		else
			break;
	}
	tunnel_h2_stream_set_callbacks(s, &fz_stream_cbs, st);
	fz_wake();
}

static void fz_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	(void)t;
	(void)code;
	fz_recycle = 1;
}

static const struct tunnel_h2_callbacks fz_tunnel_cbs = {
	.on_request = fz_on_request,
	.on_goaway = fz_on_goaway,
};

/* ---- the script ---- */

static int fz_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t fz_num(struct slice a, size_t max)
{
	size_t v = 0, i;

	for (i = 0; i < a.len && a.base[i] >= '0' && a.base[i] <= '9'; i++) {
		v = v * 10 + (size_t)(a.base[i] - '0');
		if (v > max)
			return max;
	}
	return v;
}

static void fz_raw_send(const uint8_t *p, size_t n)
{
	/* What the session has queued goes first, so frames stay in order. */
	if (fz_t)
		(void)tunnel_h2_flush(fz_t);
	if (fz_ws && n)
		(void)ws_send(fz_ws, WS_BINARY, p, n);
	fz_activity++;
}

static size_t fz_h2_int(uint8_t *out, size_t v, unsigned prefix)
{
	size_t limit = (1u << prefix) - 1, n = 0;

	if (v < limit) {
		out[n++] = (uint8_t)v;
		return n;
	}
	out[n++] = (uint8_t)limit;
	v -= limit;
	while (v >= 128) {
		out[n++] = (uint8_t)(v % 128 + 128);
		v /= 128;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static void fz_frame(uint8_t type, uint8_t flags, int32_t id, const uint8_t *payload, size_t len)
{
	static uint8_t f[9 + (1 << 17)];

	if (len > sizeof(f) - 9)
		len = sizeof(f) - 9;
	f[0] = (uint8_t)(len >> 16);
	f[1] = (uint8_t)(len >> 8);
	f[2] = (uint8_t)len;
	f[3] = type;
	f[4] = flags;
	f[5] = (uint8_t)((uint32_t)id >> 24);
	f[6] = (uint8_t)(id >> 16);
	f[7] = (uint8_t)(id >> 8);
	f[8] = (uint8_t)id;
	memcpy(f + 9, payload, len);
	fz_raw_send(f, 9 + len);
}

/* HEADERS with the script's headers as literals without indexing (no HPACK state). */
static void fz_raw_headers(struct fz_stream *st, uint8_t flags)
{
	static uint8_t block[1 << 17];
	size_t n = 0, i;
	struct http_header all[FZ_MAX_HDRS + 1];
	size_t nall = 0;

	if (st->status[0])
		all[nall++] = (struct http_header){LIT(":status"), slice_cstr(st->status)};
	for (i = 0; i < st->nh; i++)
		all[nall++] = st->h[i];
	for (i = 0; i < nall; i++) {
		if (n + 16 + all[i].name.len + all[i].value.len > sizeof(block))
			break;
		block[n++] = 0;
		n += fz_h2_int(block + n, all[i].name.len, 7);
		memcpy(block + n, all[i].name.base, all[i].name.len);
		n += all[i].name.len;
		n += fz_h2_int(block + n, all[i].value.len, 7);
		memcpy(block + n, all[i].value.base, all[i].value.len);
		n += all[i].value.len;
	}
	fz_frame(1 /* HEADERS */, flags, st->id, block, n);
}

static void fz_add_header(struct fz_stream *st, struct slice name, const char *v, size_t vlen,
			  int fill)
{
	char *p;

	if (st->nh == FZ_MAX_HDRS || name.len + vlen > FZ_HBUF - st->hused)
		return;
	p = st->hbuf + st->hused;
	memcpy(p, name.base, name.len);
	if (fill)
		memset(p + name.len, 'x', vlen);
	else
		memcpy(p + name.len, v, vlen);
	st->h[st->nh].name = slice_make(p, name.len);
	st->h[st->nh].value = slice_make(p + name.len, vlen);
	st->nh++;
	st->hused += name.len + vlen;
}

/* A lowercase token name that is no framing or hop-by-hop header. */
static int fz_plain_header(struct slice n)
{
	static const char *const framing[] = {"content-length", "connection", "keep-alive",
					      "transfer-encoding", "upgrade", "te",
					      "proxy-connection", "trailer"};
	size_t i;

	if (n.len == 0)
		return 0;
	for (i = 0; i < n.len; i++)
		if (!((n.base[i] >= 'a' && n.base[i] <= 'z') || (n.base[i] >= '0' && n.base[i] <= '9') ||
		      n.base[i] == '-'))
			return 0;
	for (i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (slice_eq(n, slice_cstr(framing[i])))
			return 0;
	return 1;
}

static void fz_respond(struct fz_stream *st, int has_body)
{
	struct http_header all[FZ_MAX_HDRS + 2];
	size_t nall = 0, i;

	if (st->status[0] && (strlen(st->status) != 3 || st->status[0] < '2' ||
			      st->status[0] > '5' || st->status[1] < '0' || st->status[1] > '9' ||
			      st->status[2] < '0' || st->status[2] > '9' ||
			      strcmp(st->status, "204") == 0 || strcmp(st->status, "304") == 0))
		fz_agent_clean = 0;
	for (i = 0; i < st->nh; i++)
		if (!fz_plain_header(st->h[i].name))
			fz_agent_clean = 0;

	all[nall++] = (struct http_header){LIT(":status"),
					   st->status[0] ? slice_cstr(st->status) : LIT("200")};
	for (i = 0; i < st->nh && nall < FZ_MAX_HDRS; i++)
		all[nall++] = st->h[i];
	if (st->responded)
		fz_agent_clean = 0; /* a second HEADERS: trailers or an error */
	st->responded = 1;
	all[nall++] = (struct http_header){LIT("x-fz-stream"), slice_cstr(st->tag)};
	(void)tunnel_h2_respond(st->s, all, nall, has_body);
}

/* Splits "word rest" (rest after one space). */
static void fz_split(struct slice line, struct slice *cmd, struct slice *rest)
{
	size_t i = 0;

	while (i < line.len && line.base[i] != ' ')
		i++;
	*cmd = slice_make(line.base, i);
	*rest = i < line.len ? slice_make(line.base + i + 1, line.len - i - 1) : slice_make(line.base + i, 0);
}

static void fz_do_line(struct fz_stream *st, struct slice line)
{
	static char zeros[300000];
	struct slice cmd, a, b;

	fz_split(line, &cmd, &a);
	if (slice_eq(cmd, LIT("rst")) || slice_eq(cmd, LIT("goaway")) || slice_eq(cmd, LIT("hx")) ||
	    slice_eq(cmd, LIT("rawh")) || slice_eq(cmd, LIT("rawd")) || slice_eq(cmd, LIT("raw")) ||
	    slice_eq(cmd, LIT("close")) || slice_eq(cmd, LIT("abort")))
		fz_agent_clean = 0;
	if (slice_eq(cmd, LIT("s"))) {
		snprintf(st->status, sizeof(st->status), "%.*s", (int)a.len, a.base);
	} else if (slice_eq(cmd, LIT("h"))) {
		fz_split(a, &a, &b);
		fz_add_header(st, a, b.base, b.len, 0);
	} else if (slice_eq(cmd, LIT("hx"))) {
		fz_split(a, &a, &b);
		fz_add_header(st, a, NULL, fz_num(b, 70000), 1);
	} else if (slice_eq(cmd, LIT("respond"))) {
		fz_respond(st, 1);
	} else if (slice_eq(cmd, LIT("respond-end"))) {
		fz_respond(st, 0);
		st->no_body = st->ended_ok = 1;
	} else if (slice_eq(cmd, LIT("d"))) {
		fz_write(st, a.base, a.len);
	} else if (slice_eq(cmd, LIT("dn"))) {
		if (zeros[0] == 0)
			memset(zeros, 'd', sizeof(zeros));
		fz_write(st, zeros, fz_num(a, sizeof(zeros)));
	} else if (slice_eq(cmd, LIT("end"))) {
		st->ended_ok = tunnel_h2_stream_end(st->s) == 0;
	} else if (slice_eq(cmd, LIT("rst"))) {
		tunnel_h2_stream_reset(st->s, (uint32_t)fz_num(a, 0xffffffffu));
	} else if (slice_eq(cmd, LIT("goaway"))) {
		if (fz_t)
			(void)tunnel_h2_goaway(fz_t);
		fz_recycle = 1;
	} else if (slice_eq(cmd, LIT("wait"))) {
		st->waiting = 1;
	} else if (slice_eq(cmd, LIT("sleep"))) {
		st->wake_ms = fz_now() + fz_num(a, FZ_SLEEP_MAX_MS);
	} else if (slice_eq(cmd, LIT("echo"))) {
		st->echo = 1;
	} else if (slice_eq(cmd, LIT("noconsume"))) {
		st->noconsume = 1;
	} else if (slice_eq(cmd, LIT("rawh"))) {
		st->responded = 1;
		fz_desync = fz_recycle = 1;
		fz_raw_headers(st, (uint8_t)fz_num(a, 255));
	} else if (slice_eq(cmd, LIT("rawd"))) {
		fz_desync = fz_recycle = 1;
		fz_split(a, &a, &b);
		fz_frame(0 /* DATA */, (uint8_t)fz_num(a, 255), st->id, (const uint8_t *)b.base, b.len);
	} else if (slice_eq(cmd, LIT("raw"))) {
		uint8_t out[4096];
		size_t i, n = 0;

		for (i = 0; i + 1 < a.len && n < sizeof(out); i += 2) {
			int hi = fz_hex(a.base[i]), lo = fz_hex(a.base[i + 1]);

			if (hi < 0 || lo < 0)
				break;
			out[n++] = (uint8_t)(hi << 4 | lo);
		}
		fz_raw_send(out, n);
		fz_desync = fz_recycle = 1; /* the sessions may disagree from here on */
	} else if (slice_eq(cmd, LIT("close"))) {
		if (fz_ws)
			ws_close(fz_ws, WS_CLOSE_NORMAL, "fuzz");
	} else if (slice_eq(cmd, LIT("abort"))) {
		if (fz_ws)
			ws_abort(fz_ws);
	}
}

/* Runs a stream's script until it waits or ends. 1 if it still has work later. */
static int fz_run_script(struct fz_stream *st)
{
	while (st->s && st->pc < st->stop) {
		const char *nl;
		struct slice line;

		if (st->waiting && !st->body_done)
			return 1;
		st->waiting = 0;
		if (st->wake_ms && fz_now() < st->wake_ms)
			return 1;
		st->wake_ms = 0;
		nl = memchr(st->pc, '\n', (size_t)(st->stop - st->pc));
		line = slice_make(st->pc, (size_t)((nl ? nl : st->stop) - st->pc));
		st->pc = nl ? nl + 1 : st->stop;
		fz_activity++;
		fz_do_line(st, line);
		if (fz_t == NULL)
			return 0;
	}
	return 0;
}

static void fz_on_pump(uv_idle_t *h)
{
	int busy = 0, turns = 0;
	size_t i;

	for (i = 0; i < fz_nst; i++)
		busy |= fz_run_script(fz_st[i]);
	while (fz_kicked && fz_t && fz_ws && turns++ < 64) {
		fz_kicked = 0;
		(void)tunnel_h2_flush(fz_t);
	}
	fz_kicked = 0;
	if (!busy)
		uv_idle_stop(h);
}

/* ---- the WebSocket ---- */

static void fz_ws_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	fz_activity++;
	if (opcode != WS_BINARY || fz_t == NULL) {
		ws_close(w, WS_CLOSE_PROTOCOL_ERROR, "binary messages only");
		return;
	}
	tunnel_h2_touch(fz_t, uv_now(fznet_loop()));
	if (tunnel_h2_feed(fz_t, (const uint8_t *)data, len) < 0 || !tunnel_h2_alive(fz_t))
		ws_close(w, WS_CLOSE_PROTOCOL_ERROR, "HTTP/2 protocol error");
	fz_wake();
}

static void fz_ws_on_drain(struct ws *w)
{
	(void)w;
	fz_activity++;
	if (fz_t)
		(void)tunnel_h2_flush(fz_t);
}

static void fz_ws_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	fz_activity++;
	fz_ws = NULL;
	if (fz_t) {
		tunnel_h2_free(fz_t); /* our streams get on_close */
		fz_t = NULL;
	}
}

static const struct ws_callbacks fz_ws_cbs = {
	.on_message = fz_ws_on_message,
	.on_drain = fz_ws_on_drain,
	.on_close = fz_ws_on_close,
};

static void fz_on_connected(struct ws *w, int status, void *arg)
{
	struct tunnel_h2_io io = {.send = fz_send, .kick = fz_kick, .writable = fz_writable};
	/* Small windows and queues: backpressure with small inputs. */
	struct tunnel_h2_config cfg = {.stream_window = 65535, .stream_out_high = 16384};

	(void)arg;
	fz_connecting = 0;
	if (w == NULL) {
		fprintf(stderr, "fuzz_proxy: the tunnel upgrade failed: %d\n", status);
		return;
	}
	fz_ws = w;
	tunnel_h2_config_defaults(&cfg);
	fz_t = tunnel_h2_new(0, &cfg, &io, &fz_tunnel_cbs, NULL);
	FUZZ_CHECK(fz_t != NULL);
	tunnel_h2_touch(fz_t, uv_now(fznet_loop()));
	(void)tunnel_h2_flush(fz_t);
}

static struct tunnel_entry *fz_entry(void)
{
	return tunnels_get(fz_srv->tunnels, FZ_CLUSTER);
}

/* Runs the loop for up to ms, polling fd too when >= 0. */
static void fz_step(int fd, short events, int ms)
{
	uv_loop_t *loop = fznet_loop();
	struct pollfd p[2];
	int n = 0, to = uv_backend_timeout(loop);

	if (fd >= 0)
		p[n++] = (struct pollfd){.fd = fd, .events = events};
	p[n++] = (struct pollfd){.fd = uv_backend_fd(loop), .events = POLLIN};
	if (to < 0 || to > ms)
		to = ms;
	(void)poll(p, (nfds_t)n, to);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* The loop holds want handles and nothing else is in flight, for a few turns. */
static int fz_settled(size_t want)
{
	struct tunnel_entry *e = fz_entry();

	if (want == 0) /* whichever the tunnel's state is */
		want = fz_ws || fz_connecting ? fz_base_up : fz_base_down;

	return fznet_handle_count() == want && fznet_loop()->active_reqs.count == 0 &&
	       (e == NULL || e->t == NULL || tunnel_h2_active_streams(e->t) == 0) &&
	       (fz_t == NULL || fz_desync || tunnel_h2_active_streams(fz_t) == 0) &&
	       !uv_is_active((uv_handle_t *)&fz_pump);
}

static void fz_wait_settled(size_t want, const char *what)
{
	uint64_t deadline = fz_now() + 8000;
	int ok = 0;

	while (ok < 3) {
		struct tunnel_entry *e = fz_entry();

		if (fz_now() >= deadline) {
			fprintf(stderr,
				"fuzz_proxy: %s: the loop did not settle: %zu handles (idle: %zu), "
				"%u requests, server streams %zu, agent streams %zu\n",
				what, fznet_handle_count(), want, fznet_loop()->active_reqs.count,
				e && e->t ? tunnel_h2_active_streams(e->t) : 0,
				fz_t ? tunnel_h2_active_streams(fz_t) : 0);
			uv_print_all_handles(fznet_loop(), stderr);
			abort();
		}
		fz_step(-1, 0, 1);
		ok = fz_settled(want) ? ok + 1 : 0;
	}
}

/* Dials the tunnel and waits until the server has it registered and idle. */
static void fz_tunnel_up(void)
{
	struct http_header hdr = {LIT("X-Fuzz-Cert"), LIT("1")};
	struct http_client_opts o = {0};
	uint64_t deadline = fz_now() + 5000;
	struct tunnel_entry *e;

	o.host = FZNET_HOST;
	o.port = http_server_port(fz_srv->connector);
	o.connect_timeout_ms = 5000;
	o.response_timeout_ms = 5000;
	o.idle_timeout_ms = 5000;
	fz_recycle = 0;
	fz_desync = 0;
	fz_connecting = 1;
	FUZZ_CHECK(ws_connect(fznet_loop(), &o, "/1.0/remote-cluster/ws", TUNNEL_PROTOCOL_V2, &hdr, 1,
			      1 << 20, &fz_ws_cbs, NULL, fz_on_connected, NULL) == 0);
	for (;;) {
		FUZZ_CHECK(fz_now() < deadline);
		fz_step(-1, 0, 5);
		FUZZ_CHECK(fz_connecting || fz_ws != NULL);
		e = fz_entry();
		if (fz_ws && e && e->t && tunnel_h2_connect_protocol_enabled(e->t))
			break;
	}
}

/* Takes a tunnel an input broke (or said GOAWAY on) down and dials a new one. */
static void fz_tunnel_renew(void)
{
	if (fz_ws && !fz_recycle && fz_t && tunnel_h2_alive(fz_t) && fz_entry() != NULL)
		return;
	if (fz_ws)
		ws_abort(fz_ws);
	fz_wait_settled(fz_base_down, "tunnel down");
	fz_tunnel_up();
	fz_wait_settled(fz_base_up, "tunnel up again");
}

/* ---- the user's side ---- */

struct fz_parse {
	int nreq;	     /* complete requests */
	int nbegun;	     /* requests whose head began */
	int started;	     /* a request or response had begun */
	int upgrade;	     /* stopped at an upgrade */
	unsigned char head[FZ_MAX_STREAMS]; /* HEAD requests, by index */
	int nresp;	     /* final responses started */
	int ncomplete;	     /* final responses complete */
	int last_close;	     /* the last response said Connection: close */
	int saw_101;
	int in_tag, tag;     /* x-fz-stream of the current answer, -1 none */
	uint64_t body_len, body_hash;
	struct llhttp_settings_s st;
	const struct fz_parse *req; /* for responses: the requests */
	int in_conn;	     /* parsing a Connection header */
	int cur_interim;
};

static int fz_req_on_headers(llhttp_t *p)
{
	struct fz_parse *r = p->data;

	if (r->nreq < FZ_MAX_STREAMS && llhttp_get_method(p) == HTTP_HEAD)
		r->head[r->nreq] = 1;
	return 0;
}

static int fz_req_on_begin(llhttp_t *p)
{
	struct fz_parse *r = p->data;

	r->nbegun++;
	return 0;
}

static int fz_req_on_complete(llhttp_t *p)
{
	struct fz_parse *r = p->data;

	r->nreq++;
	return 0;
}

static int fz_on_begin(llhttp_t *p)
{
	struct fz_parse *r = p->data;

	r->started = 1;
	r->in_conn = 0;
	r->last_close = 0;
	r->tag = -1;
	r->body_len = 0;
	r->body_hash = 14695981039346656037ull;
	return 0;
}

static int fz_resp_on_field(llhttp_t *p, const char *at, size_t len)
{
	struct fz_parse *r = p->data;

	r->in_conn = slice_eq_nocase(slice_make(at, len), LIT("connection"));
	r->in_tag = slice_eq_nocase(slice_make(at, len), LIT("x-fz-stream"));
	return 0;
}

static int fz_resp_on_value(llhttp_t *p, const char *at, size_t len)
{
	struct fz_parse *r = p->data;

	if (r->in_conn && memmem(at, len, "close", 5))
		r->last_close = 1;
	if (r->in_tag)
		r->tag = (int)fz_num(slice_make(at, len), FZ_MAX_STREAMS);
	return 0;
}

static int fz_resp_on_headers(llhttp_t *p)
{
	struct fz_parse *r = p->data;
	int status = p->status_code;

	if (status < 100 || status > 599) {
		fprintf(stderr, "fuzz_proxy: the user got status %d\n", status);
		abort();
	}
	r->cur_interim = status >= 100 && status < 200 && status != 101;
	if (r->cur_interim)
		return 0;
	r->nresp++;
	if (status == 101) {
		r->saw_101 = 1;
		return 2;
	}
	if (r->nresp - 1 < FZ_MAX_STREAMS && r->req->head[r->nresp - 1])
		return 1;
	return 0;
}

static int fz_resp_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct fz_parse *r = p->data;

	r->body_len += len;
	r->body_hash = fz_fnv(r->body_hash, at, len);
	return 0;
}

/*
 * A complete answer from a stream whose agent kept to HTTP and ended it
 * carries exactly the bytes the agent sent (HEAD answers carry none).
 */
static void fz_check_body(const struct fz_parse *r)
{
	const struct fz_stream *st;

	if (r->tag < 0 || (size_t)r->tag >= fz_nst || !fz_agent_clean)
		return;
	st = fz_st[r->tag];
	if (!st->ended_ok || (r->nresp - 1 < FZ_MAX_STREAMS && r->req->head[r->nresp - 1]))
		return;
	if (r->body_len != (st->no_body ? 0 : st->out_len) ||
	    (!st->no_body && r->body_hash != st->out_hash)) {
		fprintf(stderr, "fuzz_proxy: stream %d: the user got %llu body bytes, the agent "
				"sent %llu%s\n", r->tag, (unsigned long long)r->body_len,
			(unsigned long long)(st->no_body ? 0 : st->out_len),
			r->body_len == st->out_len ? " (other bytes)" : "");
		abort();
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "stream %d: %llu body bytes as sent\n", r->tag,
			(unsigned long long)r->body_len);
}

static int fz_resp_on_complete(llhttp_t *p)
{
	struct fz_parse *r = p->data;

	if (!r->cur_interim && p->status_code != 101)
		fz_check_body(r);
	if (!r->cur_interim)
		r->ncomplete++;
	return 0;
}

static void fz_parse_requests(const uint8_t *d, size_t n, struct fz_parse *r)
{
	llhttp_t p;
	llhttp_errno_t err;

	llhttp_settings_init(&r->st);
	r->st.on_headers_complete = fz_req_on_headers;
	r->st.on_message_complete = fz_req_on_complete;
	r->st.on_message_begin = fz_req_on_begin;
	llhttp_init(&p, HTTP_REQUEST, &r->st);
	p.data = r;
	err = llhttp_execute(&p, (const char *)d, n);
	r->upgrade = err == HPE_PAUSED_UPGRADE;
}

/*
 * After a 101 and a clean end, the user got exactly the bytes the agent
 * sent on its CONNECT stream, also after the user's EOF (a half-close: the
 * pipe once closed the socket then; seed ws_user_eof_truncates).
 */
static void fz_check_ws(const char *rest, size_t len)
{
	const struct fz_stream *ws = NULL;
	size_t i;

	if (!fz_agent_clean)
		return;
	for (i = 0; i < fz_nst; i++) {
		if (!fz_st[i]->is_connect)
			continue;
		if (ws)
			return; /* two: which one is ours? */
		ws = fz_st[i];
	}
	if (ws == NULL || !ws->ended_ok || ws->no_body || strcmp(ws->status, "200") != 0)
		return;
	if (len != ws->out_len || fz_fnv(14695981039346656037ull, rest, len) != ws->out_hash) {
		fprintf(stderr, "fuzz_proxy: after the 101 the user got %zu bytes, the agent sent "
				"%llu\n", len, (unsigned long long)ws->out_len);
		abort();
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "websocket: %zu bytes as sent\n", len);
}

static void fz_check_reply(const uint8_t *reqd, size_t reqn, const uint8_t *reply, size_t n,
			   int cut)
{
	struct fz_parse rq = {0}, rs = {0};
	llhttp_t p;
	llhttp_errno_t err;

	fz_parse_requests(reqd, reqn, &rq);
	llhttp_settings_init(&rs.st);
	rs.st.on_message_begin = fz_on_begin;
	rs.st.on_header_field = fz_resp_on_field;
	rs.st.on_header_value = fz_resp_on_value;
	rs.st.on_headers_complete = fz_resp_on_headers;
	rs.st.on_message_complete = fz_resp_on_complete;
	rs.st.on_body = fz_resp_on_body;
	rs.req = &rq;
	llhttp_init(&p, HTTP_RESPONSE, &rs.st);
	p.data = &rs;
	err = llhttp_execute(&p, (const char *)reply, n);
	if (err != HPE_OK && !(rs.saw_101 && (err == HPE_PAUSED_UPGRADE ||
					      err == HPE_CB_HEADERS_COMPLETE))) {
		fprintf(stderr, "fuzz_proxy: the user's answer is not HTTP/1.1: %s (%s)\n",
			llhttp_errno_name(err), llhttp_get_error_reason(&p));
		abort();
	}
	if (rs.saw_101 && err == HPE_PAUSED_UPGRADE && !cut && n < FZ_REPLY_MAX)
		fz_check_ws(llhttp_get_error_pos(&p), n - (size_t)((const uint8_t *)
								     llhttp_get_error_pos(&p) - reply));
	/*
	 * Counted against the requests begun: the server's parser may take a
	 * request this strict one refuses (and answer it, then 400 for the
	 * same bytes: an invalid Transfer-Encoding after a 404 at the headers).
	 */
	if (rs.nresp > rq.nbegun + 1) {
		fprintf(stderr, "fuzz_proxy: %d answers to %d requests\n", rs.nresp, rq.nbegun);
		abort();
	}
	/*
	 * A connection that ended cleanly after complete answers, none saying
	 * it would close, must have answered every complete request (the
	 * server's own answers at the headers once closed it silently: fixed,
	 * seed sync_error_then_pipelined).
	 */
	if (!cut && !rs.saw_101 && rs.nresp == rs.ncomplete && !rs.last_close &&
	    rs.nresp < rq.nreq && !rq.upgrade && fz_agent_clean) {
		fprintf(stderr, "fuzz_proxy: %d answers to %d requests, and no Connection: close\n",
			rs.nresp, rq.nreq);
		abort();
	}
}

/* Reads until EOF or until nothing happened for FZ_QUIET_MS; 0 at EOF. */
static int fz_drain(int fd, uint8_t *out, size_t cap, size_t *len)
{
	uint64_t deadline = fz_now() + 5000, quiet_since = fz_now(), seen = fz_activity;

	while (fz_now() < deadline) {
		uint8_t spill[4096];
		ssize_t n = *len < cap ? recv(fd, out + *len, cap - *len, 0)
				       : recv(fd, spill, sizeof(spill), 0);

		if (n > 0) {
			if (*len < cap)
				*len += (size_t)n;
			fz_activity++;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			return 0;
		}
		if (fz_activity != seen || uv_is_active((uv_handle_t *)&fz_pump)) {
			seen = fz_activity;
			quiet_since = fz_now();
		} else if (fz_now() - quiet_since >= fz_quiet_ms) {
			return -1;
		}
		if (n <= 0)
			fz_step(fd, POLLIN, 10);
	}
	return -1;
}

/*
 * fznet_connect with a small receive buffer, set before the handshake (set
 * after it, the kernel prunes what the advertised window let in, and
 * loopback TCP stalls in retransmission backoff).
 */
static int fz_connect_small(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, small = 4096, one = 1;

	FUZZ_CHECK(inet_pton(AF_INET, FZNET_HOST, &sa.sin_addr) == 1);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return fznet_connect(port); /* no local port: fznet_connect retries */
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/*
 * Gives the proxy a moment to clean up after the user is gone. When the
 * agent ends its answer while the request body is still held up by flow
 * control, the proxy resets the stream itself (a bug once: it stayed open
 * behind the blocked body; seed early_end_body_blocked).
 */
static void fz_rescue(void)
{
	uint64_t until = fz_now() + 30;

	while (fz_now() < until && fz_t && tunnel_h2_active_streams(fz_t) > 0)
		fz_step(-1, 0, 1);
	fz_wake();
}

/* ---- the target ---- */

static void fz_load_script(const uint8_t *d, size_t n)
{
	const char *p, *end;

	fz_script = fuzz_strndup(d, n);
	fz_nblocks = 0;
	p = fz_script;
	end = fz_script + n;
	while (p <= end && fz_nblocks < FZ_MAX_BLOCKS) {
		const char *sep = memmem(p, (size_t)(end - p), "\n==\n", 4);

		fz_block[fz_nblocks] = p;
		fz_block_end[fz_nblocks] = sep ? sep + 1 : end;
		fz_nblocks++;
		if (sep == NULL)
			break;
		p = sep + 4;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("FUZZ_QUIET_MS"))
		fz_quiet_ms = strtoull(getenv("FUZZ_QUIET_MS"), NULL, 10);
	fz_srv = fzserver_start();
	fz_srv->cfg.proxy_header_timeout_ms = FZ_PROXY_TIMEOUT_MS;
	fz_srv->cfg.proxy_idle_timeout_ms = FZ_PROXY_IDLE_MS;
	fz_srv->tunnel_cfg.stream_window = 65535;
	fz_srv->tunnel_cfg.stream_out_high = 16384;
	fzserver_enroll("notunnel", "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0");
	FUZZ_CHECK(uv_idle_init(fznet_loop(), &fz_pump) == 0);
	fz_base_down = fznet_handle_count();
	fz_wait_settled(fz_base_down, "start");
	fz_tunnel_up();
	/* The count with the tunnel up: the conns of both ends. */
	{
		uint64_t until = fz_now() + 300;

		while (fz_now() < until)
			fz_step(-1, 0, 5);
	}
	fz_base_up = fznet_handle_count();
	fz_wait_settled(fz_base_up, "tunnel up");
	fznet_mark_baseline();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t reply[FZ_REPLY_MAX];
	const uint8_t *user, *script;
	size_t ulen = 0, slen = 0, n = 0;
	unsigned flags;
	int fd, cut = 0, i;

	if (size == 0)
		return 0;
	flags = data[0];
	fz_hold = (flags & FZ_F_HOLD) != 0;
	data++;
	size--;
	user = fuzz_next_part(&data, &size, &ulen);
	script = fuzz_next_part(&data, &size, &slen);
	fzserver_rearm_auth();
	fz_tunnel_renew();
	fz_load_script(script ? script : (const uint8_t *)"", script ? slen : 0);
	if (script == NULL)
		fz_nblocks = 0;
	fz_nst = 0;
	fz_agent_clean = 1;

	fd = flags & FZ_F_SLOW ? fz_connect_small(http_server_port(fz_srv->management))
			       : fznet_connect(http_server_port(fz_srv->management));
	FUZZ_CHECK(fd >= 0);
	if (flags & FZ_F_HOLD) {
		(void)fznet_write(fd, user, ulen, 2000);
		if (fz_drain(fd, reply, sizeof(reply), &n) == 0)
			goto done;
		(void)shutdown(fd, SHUT_WR);
	} else {
		(void)fznet_send(fd, user, ulen, 2000);
	}
	if (flags & FZ_F_SLOW) {
		uint64_t until = fz_now() + FZ_SLOW_MS;

		while (fz_now() < until)
			fz_step(-1, 0, 5);
	}
	if (flags & FZ_F_RESET) {
		fz_step(fd, POLLIN, 5);
		cut = 1;
		goto done;
	}
	if (fz_drain(fd, reply, sizeof(reply), &n) < 0)
		cut = 1; /* a stall (an agent that never finishes) ends here */
done:
	fznet_close(fd);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%.*s\n---- %zu bytes, %s\n", (int)(n > 4096 ? 4096 : n), reply, n,
			cut ? "cut" : "closed");
	if (!(flags & FZ_F_RESET))
		fz_check_reply(user, ulen, reply, n, cut);
	fz_rescue();
	fz_wait_settled(0, "after the input");
	/* After a desync the agent's session may still hold our streams: renew first. */
	fz_tunnel_renew();
	for (i = 0; i < (int)fz_nst; i++)
		free(fz_st[i]);
	fz_nst = 0;
	free(fz_script);
	fz_script = NULL;
	return 0;
}
