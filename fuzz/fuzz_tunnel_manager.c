/*
 * fuzz_tunnel_manager.c - tunnel v2 bytes from a hostile agent into the
 * manager's side of the HTTP/2 session (src/net/tunnel_h2.c, is_client 1).
 *
 * Before the input is fed, the manager opens four streams as the proxy
 * does: 1 GET without a body, 3 POST with a body it writes and ends, 5 a
 * GET whose response body it never consumes, 7 a PUT with a body still open
 * (ended after the input). The input is what the agent sends back (its
 * SETTINGS first), cut at lines "----" into transport messages for
 * tunnel_h2_feed. Each stream's state is freed in on_close, which must come
 * exactly once per stream, at the latest from tunnel_h2_free.
 */
#include <errno.h>

#include "common/log.h"
#include "fuzz.h"
#include "net/tunnel_h2.h"

#define FZ_NSTREAMS 4

struct fz_stream {
	int idx;
	int responded, ended, closed;
	size_t got;
};

static struct fz_stream *fz_s[FZ_NSTREAMS];
static struct tunnel_h2_stream *fz_ts[FZ_NSTREAMS];
static size_t fz_sent;
static int fz_goaways;

static int fz_kicked;

/* The owner's side of tunnel_io.kick: the flush happens later, not inside the call. */
static void fz_kick(void *io)
{
	(void)io;
	fz_kicked = 1;
}

/* What the owner does on its next loop turn after a kick. */
static void fz_serve_kicks(struct tunnel_h2 *t)
{
	int turns = 0;

	while (fz_kicked && turns++ < 64) {
		fz_kicked = 0;
		(void)tunnel_h2_flush(t);
	}
}

static int fz_send(void *io, const uint8_t *data, size_t len)
{
	(void)io;
	(void)data;
	fz_sent += len;
	return 1;
}

static void fz_on_response(struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);
	struct slice st = tunnel_h2_header(h, LIT(":status"));
	size_t i;

	FUZZ_CHECK(fs && !fs->closed);
	FUZZ_CHECK(h->n <= TUNNEL_H2_MAX_HEADERS);
	/* nghttp2 checks :status; 1xx answers are not passed on; one final answer. */
	FUZZ_CHECK(st.len == 3 && st.base[0] != '1');
	for (i = 0; i < 3; i++)
		FUZZ_CHECK(st.base[i] >= '0' && st.base[i] <= '9');
	FUZZ_CHECK(++fs->responded == 1);
}

static void fz_on_data(struct tunnel_h2_stream *s, const uint8_t *d, size_t n)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);

	(void)d;
	FUZZ_CHECK(fs && !fs->closed && !fs->ended);
	fs->got += n;
	if (fs->idx != 2)
		tunnel_h2_stream_consume(s, n);
}

static void fz_on_end(struct tunnel_h2_stream *s)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);

	FUZZ_CHECK(fs && !fs->closed && !fs->ended);
	fs->ended = 1;
}

static void fz_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);

	(void)code;
	FUZZ_CHECK(fs && !fs->closed);
	fs->closed = 1;
	fz_ts[fs->idx] = NULL;
}

static const struct tunnel_h2_stream_callbacks fz_stream_cbs = {
	.on_response = fz_on_response,
	.on_data = fz_on_data,
	.on_end = fz_on_end,
	.on_close = fz_on_close,
};

static void fz_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	(void)t;
	(void)code;
	fz_goaways++;
}

static const struct tunnel_h2_callbacks fz_cbs = {.on_goaway = fz_on_goaway};

static void fz_open(struct tunnel_h2 *t, int i, const char *method, const char *path, int body)
{
	struct http_header h[5] = {
		{LIT(":method"), slice_cstr(method)},
		{LIT(":scheme"), LIT("https")},
		{LIT(":authority"), LIT("lxd")},
		{LIT(":path"), slice_cstr(path)},
		{LIT("user-agent"), LIT("lxcm-fuzz")},
	};

	fz_s[i] = calloc(1, sizeof(**fz_s));
	FUZZ_CHECK(fz_s[i] != NULL);
	fz_s[i]->idx = i;
	fz_ts[i] = tunnel_h2_request(t, h, 5, body, &fz_stream_cbs, fz_s[i]);
	FUZZ_CHECK(fz_ts[i] != NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tunnel_h2_config cfg = {.max_streams = 16, .stream_window = 65535,
				    .conn_window = 1 << 20, .stream_out_high = 16384};
	struct tunnel_h2_io io = {.send = fz_send, .kick = fz_kick};
	struct tunnel_h2 *t;
	const uint8_t *p;
	size_t len;
	int rc = 0, i;

	fz_sent = 0;
	fz_kicked = 0;
	fz_goaways = 0;
	t = tunnel_h2_new(1, &cfg, &io, &fz_cbs, NULL);
	FUZZ_CHECK(t != NULL);
	fz_open(t, 0, "GET", "/1.0", 0);
	fz_open(t, 1, "POST", "/1.0/instances", 1);
	fz_open(t, 2, "GET", "/1.0/events", 0);
	fz_open(t, 3, "PUT", "/1.0/instances/c1", 1);
	FUZZ_CHECK(tunnel_h2_stream_write(fz_ts[1], "{\"name\":\"c1\"}", 13) >= 0);
	FUZZ_CHECK(tunnel_h2_stream_end(fz_ts[1]) == 0);
	FUZZ_CHECK(tunnel_h2_stream_write(fz_ts[3], "{}", 2) >= 0);
	fz_serve_kicks(t);
	while (rc == 0 && (p = fuzz_next_part(&data, &size, &len)) != NULL) {
		rc = tunnel_h2_feed(t, p, len);
		FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EPIPE);
		fz_serve_kicks(t);
	}
	if (rc == 0 && fz_ts[3])
		(void)tunnel_h2_stream_end(fz_ts[3]);
	if (rc == 0 && fz_ts[2])
		tunnel_h2_stream_reset(fz_ts[2], 8 /* CANCEL */);
	fz_serve_kicks(t);
	tunnel_h2_free(t);
	for (i = 0; i < FZ_NSTREAMS; i++) {
		FUZZ_CHECK(fz_s[i]->closed); /* on_close came, exactly once */
		free(fz_s[i]);
		fz_s[i] = NULL;
	}
	return 0;
}
