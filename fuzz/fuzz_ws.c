/*
 * fuzz_ws.c - WebSocket framing from a hostile peer (src/net/ws.c, our codec,
 * over conn.c) on a loopback TCP connection inside the fuzzer process.
 *
 * Byte 0 of the input is a set of flags, the rest is the peer's byte
 * stream:
 *   bit 0  our role: 0 server (the peer must mask its frames), 1 client
 *   bit 1  echo every message back with ws_send
 *   bit 2  stop reading on the first message, start again from a timer
 *   bit 3  start the closing handshake ourselves on the first message
 *   bit 4  hand the first 1..16 bytes over with ws_feed, as the HTTP
 *          upgrade does with bytes that came with the request head
 * The peer half-closes after its bytes; the ws must then finish
 * (on_close exactly once) and leave nothing behind on the loop.
 */
#include <unistd.h>

#include "common/log.h"
#include "fuzz.h"
#include "fznet.h"
#include "net/conn.h"
#include "net/ws.h"

struct fz_ws {
	unsigned flags;
	const uint8_t *feed;
	size_t feed_len;
	struct ws *w;
	int closed;
	int messages;
	uv_timer_t resume;
	int resume_armed;
};

static struct fz_ws fz;
static uv_tcp_t fz_listener;
static int fz_port;

static void fz_on_resume_closed(uv_handle_t *h)
{
	(void)h;
	fz.resume_armed = 0;
}

static void fz_on_resume(uv_timer_t *t)
{
	if (fz.w && !fz.closed)
		ws_read_start(fz.w);
	uv_close((uv_handle_t *)t, fz_on_resume_closed);
}

static void fz_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	FUZZ_CHECK(!fz.closed);
	FUZZ_CHECK(opcode == WS_TEXT || opcode == WS_BINARY);
	FUZZ_CHECK(len <= 4096);
	fz.messages++;
	if (fz.flags & 2)
		(void)ws_send(w, opcode, data, len);
	if ((fz.flags & 4) && fz.messages == 1) {
		ws_read_stop(w);
		uv_timer_init(fznet_loop(), &fz.resume);
		fz.resume_armed = 1;
		uv_timer_start(&fz.resume, fz_on_resume, 1, 0);
	}
	if ((fz.flags & 8) && fz.messages == 1)
		ws_close(w, WS_CLOSE_NORMAL, "fuzz");
}

static void fz_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	FUZZ_CHECK(!fz.closed);
	fz.closed = 1;
	fz.w = NULL;
}

static const struct ws_callbacks fz_cbs = {
	.on_message = fz_on_message,
	.on_close = fz_on_close,
};

static void fz_on_conn_close(struct conn *c)
{
	(void)c;
}

static const struct conn_callbacks fz_conn_cbs = {.on_close = fz_on_conn_close};

static void fz_on_connection(uv_stream_t *listener, int status)
{
	struct conn *c;

	FUZZ_CHECK(status == 0);
	c = conn_new(fznet_loop(), NULL, &fz_conn_cbs, NULL);
	FUZZ_CHECK(c != NULL);
	FUZZ_CHECK(conn_accept(c, listener) == 0);
	if (fz.w || fz.closed) {
		/*
		 * A second connection in one input: a connect() that fznet
		 * retried after EINTR may have gone through as well. Only the
		 * first one is the input's.
		 */
		conn_close(c);
		return;
	}
	fz.w = ws_new(c, fz.flags & 1, 4096, &fz_cbs, NULL);
	FUZZ_CHECK(fz.w != NULL);
	if (fz.feed_len)
		ws_feed(fz.w, (const char *)fz.feed, fz.feed_len);
}

static int fz_accepted(void *arg)
{
	(void)arg;
	return fz.w != NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	fz_port = fznet_listen(&fz_listener, fz_on_connection, NULL);
	if (fz_port < 0)
		abort();
	fznet_mark_baseline();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (size == 0)
		return 0;
	memset(&fz, 0, sizeof(fz));
	fz.flags = data[0];
	data++;
	size--;
	if ((fz.flags & 16) && size) {
		fz.feed = data;
		fz.feed_len = 1 + (fz.flags >> 5) % 16;
		if (fz.feed_len > size)
			fz.feed_len = size;
		data += fz.feed_len;
		size -= fz.feed_len;
	}
	fd = fznet_connect(fz_port);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(fznet_run_until(fz_accepted, NULL, 2000) == 0);
	fz.feed = NULL;
	fznet_send(fd, data, size, 2000);
	(void)fznet_drain(fd, 3000, NULL, 0, NULL);
	fznet_close(fd);
	fznet_settle(WS_CLOSE_TIMEOUT_MS + 2000, "fuzz_ws");
	FUZZ_CHECK(fz.closed);
	return 0;
}
