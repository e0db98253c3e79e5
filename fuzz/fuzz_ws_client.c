/*
 * fuzz_ws_client.c - the client side of a WebSocket from a hostile server:
 * ws_connect (src/net/ws.c), which sends the upgrade request with
 * http_client (src/net/http_client.c), checks the 101 answer (RFC 6455
 * section 4.1) and then reads frames in the client role. This is what
 * lxcm-agent does to open its tunnel.
 *
 * The input is the server's whole answer: response head, then frames. The
 * Sec-WebSocket-Accept value depends on the random key of the request, so
 * every "@ACCEPT@" in the input is replaced by the right value for this
 * connection (and "@KEY@" by the key itself), which lets mutations get past
 * the handshake. The server half-closes after its bytes; done must run
 * exactly once and, with a ws, on_close exactly once after it.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "fuzz.h"
#include "fznet.h"
#include "net/ws.h"

struct fz_state {
	int done;
	int status;
	struct ws *w;
	int closed;
	int messages;
};

static struct fz_state fz;
static int fz_lfd = -1, fz_port;

static void fz_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	FUZZ_CHECK(!fz.closed);
	FUZZ_CHECK(opcode == WS_TEXT || opcode == WS_BINARY);
	FUZZ_CHECK(len <= 4096);
	if (++fz.messages == 1)
		(void)ws_send(w, WS_BINARY, data, len);
}

static void fz_on_close(struct ws *w, int code)
{
	(void)code;
	FUZZ_CHECK(fz.done && w == fz.w && !fz.closed);
	fz.closed = 1;
}

static const struct ws_callbacks fz_cbs = {
	.on_message = fz_on_message,
	.on_close = fz_on_close,
};

static void fz_on_done(struct ws *w, int status, void *arg)
{
	(void)arg;
	FUZZ_CHECK(!fz.done);
	fz.done = 1;
	fz.status = status;
	fz.w = w;
	FUZZ_CHECK((w != NULL) == (status == 101));
}

static int fz_finished(void *arg)
{
	(void)arg;
	return fz.done && (fz.w == NULL || fz.closed);
}

/* Accepts the client's connection and reads its request head (fd in *out). */
static int fz_accept_request(struct buf *head)
{
	uint64_t deadline = uv_hrtime() / 1000000 + 3000;
	int fd = -1;
	char tmp[4096];

	while (uv_hrtime() / 1000000 < deadline) {
		if (fd < 0)
			fd = accept4(fz_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = recv(fd, tmp, sizeof(tmp), 0);

			if (n > 0 && buf_append(head, tmp, (size_t)n) < 0)
				break;
			if (head->len && memmem(head->data, head->len, "\r\n\r\n", 4))
				return fd;
			if (n == 0)
				break;
		}
		uv_run(fznet_loop(), UV_RUN_NOWAIT);
		if (fd < 0 || head->len == 0)
			(void)poll(NULL, 0, 1);
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The value of the Sec-WebSocket-Key header in head (24 characters), or "". */
static void fz_key(const struct buf *head, char key[25])
{
	const char *p = memmem(head->data, head->len, "Sec-WebSocket-Key: ", 19);

	key[0] = '\0';
	if (p && p + 19 + 24 <= head->data + head->len) {
		memcpy(key, p + 19, 24);
		key[24] = '\0';
	}
}

/* The input with "@ACCEPT@" and "@KEY@" filled in. */
static void fz_expand(const uint8_t *data, size_t size, const char *key, struct buf *out)
{
	char accept[29] = "";
	size_t i = 0;

	if (key[0])
		FUZZ_CHECK(ws_accept_key(key, 24, accept) == 0);
	while (i < size) {
		if (size - i >= 8 && memcmp(data + i, "@ACCEPT@", 8) == 0) {
			buf_append_str(out, accept);
			i += 8;
		} else if (size - i >= 5 && memcmp(data + i, "@KEY@", 5) == 0) {
			buf_append_str(out, key);
			i += 5;
		} else {
			buf_append(out, data + i, 1);
			i++;
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	if (inet_pton(AF_INET, FZNET_HOST, &sa.sin_addr) != 1)
		abort();
	fz_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fz_lfd < 0 || bind(fz_lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fz_lfd, 16) != 0 || getsockname(fz_lfd, (struct sockaddr *)&sa, &len) != 0)
		abort();
	fz_port = ntohs(sa.sin_port);
	fznet_loop();
	fznet_mark_baseline();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_client_opts opts = {
		.host = FZNET_HOST,
		.connect_timeout_ms = 2000,
		.response_timeout_ms = 2000,
		.idle_timeout_ms = 2000,
	};
	static const struct http_header extra[] = {{LIT("X-Fuzz"), LIT("1")}};
	struct buf head, answer;
	char key[25];
	int fd, rc;

	memset(&fz, 0, sizeof(fz));
	opts.port = fz_port;
	rc = ws_connect(fznet_loop(), &opts, "/1.0/remote-cluster/ws", "lxcm-tunnel.v2", extra, 1,
			4096, &fz_cbs, NULL, fz_on_done, NULL);
	FUZZ_CHECK(rc == 0);
	buf_init(&head, 64 * 1024);
	buf_init(&answer, 4 * size + 64);
	fd = fz_accept_request(&head);
	FUZZ_CHECK(fd >= 0);
	fz_key(&head, key);
	fz_expand(data, size, key, &answer);
	fznet_send(fd, answer.data, answer.len, 2000);
	(void)fznet_drain(fd, 3000, NULL, 0, NULL);
	fznet_close(fd);
	FUZZ_CHECK(fznet_run_until(fz_finished, NULL, WS_CLOSE_TIMEOUT_MS + 3000) == 0);
	fznet_settle(5000, "fuzz_ws_client");
	buf_free(&head);
	buf_free(&answer);
	return 0;
}
