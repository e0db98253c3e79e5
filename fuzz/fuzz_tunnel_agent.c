/*
 * fuzz_tunnel_agent.c - tunnel v2 bytes from a hostile manager into the
 * agent's side of the HTTP/2 session (src/net/tunnel_h2.c, is_client 0).
 *
 * The input is what the manager sends, after the HTTP/2 client preface
 * (added here, so mutations start at the frames). It is cut at lines "----"
 * into transport messages, each given to tunnel_h2_feed as one WebSocket
 * message would be. The agent answers like lxcm-agent's forwarder does:
 *   :path /reset...   reset the stream at once
 *   :path /hold...    never consume the body (its window stays shut)
 *   :path /early...   answer at once, before the request body ends, and
 *                     echo the body as it comes (a CONNECT-style stream)
 *   otherwise         consume the body, answer 200 with it at END_STREAM
 * After each message the agent credits what the held streams got so far (a
 * slow reader), pings, and flushes as lxcm-agent does: tunnel_io.kick only
 * marks the session, the flush comes after tunnel_h2_feed returns. The
 * transport says "full" now and then, and "drained" (a flush) after.
 * Every stream's state is freed in on_close; tunnel_h2_free must call on_close
 * for every stream still open (LeakSanitizer checks that nothing is lost).
 */
#include <errno.h>

#include <nghttp2/nghttp2.h>

#include "common/buf.h"
#include "common/log.h"
#include "fuzz.h"
#include "net/tunnel_h2.h"

#define FZ_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

struct fz_stream {
	struct tunnel_h2_stream *s;
	struct buf body;
	int hold, early, responded;
	size_t held; /* bytes received and not credited yet */
	struct fz_stream *next;
};

static struct tunnel_h2 *fz_t;
static size_t fz_sent, fz_open;
static struct fz_stream *fz_streams;

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
	if ((fz_sent / 4096) % 3 != 2)
		return 1;
	fz_kicked = 1; /* "full" now; its drain will call for a flush */
	return 0;
}

static const struct http_header fz_resp[] = {
	{LIT(":status"), LIT("200")},
	{LIT("content-type"), LIT("application/octet-stream")},
};

static void fz_on_data(struct tunnel_h2_stream *s, const uint8_t *d, size_t n)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);

	FUZZ_CHECK(fs != NULL);
	if (fs->early) {
		(void)tunnel_h2_stream_write(s, d, n);
		tunnel_h2_stream_consume(s, n);
		return;
	}
	(void)buf_append(&fs->body, d, n);
	if (fs->hold)
		fs->held += n;
	else
		tunnel_h2_stream_consume(s, n);
}

static void fz_on_end(struct tunnel_h2_stream *s)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s);

	if (!fs->responded) {
		fs->responded = 1;
		if (tunnel_h2_respond(s, fz_resp, 2, 1) < 0)
			return;
	}
	(void)tunnel_h2_stream_write(s, fs->body.data ? fs->body.data : "", fs->body.len);
	(void)tunnel_h2_stream_end(s);
}

static void fz_on_drain(struct tunnel_h2_stream *s)
{
	(void)s;
}

static void fz_on_close(struct tunnel_h2_stream *s, uint32_t code)
{
	struct fz_stream *fs = tunnel_h2_stream_data(s), **pp;

	(void)code;
	FUZZ_CHECK(fs != NULL);
	for (pp = &fz_streams; *pp; pp = &(*pp)->next) {
		if (*pp == fs) {
			*pp = fs->next;
			break;
		}
	}
	buf_free(&fs->body);
	free(fs);
	fz_open--;
}

static const struct tunnel_h2_stream_callbacks fz_stream_cbs = {
	.on_data = fz_on_data,
	.on_end = fz_on_end,
	.on_drain = fz_on_drain,
	.on_close = fz_on_close,
};

static void fz_on_request(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h)
{
	struct slice path = tunnel_h2_header(h, LIT(":path"));
	struct fz_stream *fs = calloc(1, sizeof(*fs));
	size_t i;

	FUZZ_CHECK(t == fz_t && fs != NULL);
	FUZZ_CHECK(h->n <= TUNNEL_H2_MAX_HEADERS);
	for (i = 0; i < h->n; i++)
		FUZZ_CHECK(h->h[i].name.len == 0 || h->h[i].name.base != NULL);
	buf_init(&fs->body, 1 << 20);
	fs->s = s;
	fs->next = fz_streams;
	fz_streams = fs;
	fz_open++;
	tunnel_h2_stream_set_callbacks(s, &fz_stream_cbs, fs);
	if (slice_starts_with(path, LIT("/reset"))) {
		tunnel_h2_stream_reset(s, NGHTTP2_REFUSED_STREAM);
	} else if (slice_starts_with(path, LIT("/hold"))) {
		fs->hold = 1;
	} else if (slice_starts_with(path, LIT("/early"))) {
		fs->early = 1;
		fs->responded = 1;
		(void)tunnel_h2_respond(s, fz_resp, 1, 1);
	}
}

static void fz_on_goaway(struct tunnel_h2 *t, uint32_t code)
{
	(void)code;
	FUZZ_CHECK(t == fz_t);
}

static const struct tunnel_h2_callbacks fz_cbs = {
	.on_request = fz_on_request,
	.on_goaway = fz_on_goaway,
};

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
	const uint8_t *p;
	size_t len;
	int rc = 0;

	fz_sent = 0;
	fz_kicked = 0;
	fz_open = 0;
	fz_streams = NULL;
	fz_t = tunnel_h2_new(0, &cfg, &io, &fz_cbs, NULL);
	FUZZ_CHECK(fz_t != NULL);
	rc = tunnel_h2_feed(fz_t, (const uint8_t *)FZ_PREFACE, sizeof(FZ_PREFACE) - 1);
	FUZZ_CHECK(rc == 0);
	while (rc == 0 && (p = fuzz_next_part(&data, &size, &len)) != NULL) {
		tunnel_h2_touch(fz_t, 1000);
		rc = tunnel_h2_feed(fz_t, p, len);
		FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EPIPE);
		if (rc == 0) {
			/* Credit the held bodies now and then, like a slow reader. */
			struct fz_stream *fs;

			for (fs = fz_streams; fs; fs = fs->next) {
				tunnel_h2_stream_consume(fs->s, fs->held);
				fs->held = 0;
			}
			(void)tunnel_h2_ping(fz_t, 1000);
		}
		fz_serve_kicks(fz_t);
		/* Streams whose headers are still arriving are the tunnel's, not ours yet. */
		FUZZ_CHECK(tunnel_h2_active_streams(fz_t) >= fz_open);
		FUZZ_CHECK(fz_open <= cfg.max_streams + 1);
	}
	if (rc == 0) {
		(void)tunnel_h2_goaway(fz_t);
		fz_serve_kicks(fz_t);
	}
	(void)tunnel_h2_alive(fz_t);
	tunnel_h2_free(fz_t);
	fz_t = NULL;
	FUZZ_CHECK(fz_open == 0 && fz_streams == NULL);
	return 0;
}
