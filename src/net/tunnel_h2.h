/*
 * tunnel_h2.h - tunnel protocol v2: an HTTP/2 session (nghttp2) over any
 * byte transport, in practice WebSocket binary messages (DESIGN.md).
 *
 * The manager is the HTTP/2 client and opens one stream per proxied
 * request; the agent is the HTTP/2 server. This module knows nothing of
 * sockets: bytes from the peer go in with tunnel_h2_feed, bytes for the peer
 * leave through tunnel_io.send. That keeps it testable (two sessions wired
 * back to back in memory) and fuzzable.
 *
 * Flow control: each stream has a receive window (stream_window) and the
 * connection one (conn_window). Received DATA is handed to on_data at once;
 * the connection window is credited immediately, the stream window only when
 * the user calls tunnel_h2_stream_consume (after the bytes left downstream). So
 * a slow reader stalls only its own stream, and the memory it can pin is one
 * stream window. Outgoing data is buffered per stream up to stream_out_high
 * before tunnel_h2_stream_write asks the producer to pause.
 *
 * Lifetime: a tunnel_stream is freed right after its on_close callback.
 * tunnel_h2_free must not be called from inside a tunnel callback.
 */
#ifndef LXCM_TUNNEL_H2_H
#define LXCM_TUNNEL_H2_H

#include <stddef.h>
#include <stdint.h>

#include "net/http.h"

#define TUNNEL_H2_DEFAULT_MAX_STREAMS 256
#define TUNNEL_H2_DEFAULT_STREAM_WINDOW (1 << 20)	  /* 1 MiB */
#define TUNNEL_H2_DEFAULT_CONN_WINDOW (16 << 20)	  /* 16 MiB */
#define TUNNEL_H2_DEFAULT_STREAM_OUT_HIGH (256 << 10) /* pause producers above this */
#define TUNNEL_H2_MAX_HEADER_BYTES (64 << 10)
#define TUNNEL_H2_MAX_HEADERS HTTP_MAX_HEADERS
#define TUNNEL_H2_SEND_CHUNK (64 << 10) /* bytes gathered into one transport message */
/*
 * SETTINGS_MAX_FRAME_SIZE we announce: a DATA frame may fill a whole
 * transport message (we send at most TUNNEL_H2_SEND_CHUNK - 9 bytes of payload
 * per frame, so frame header and payload make one WebSocket message), not
 * the default 16 KiB that cut every message into four frames.
 */
#define TUNNEL_H2_MAX_FRAME_SIZE (64 << 10)
/* nghttp2 blocks this big are mapped on their own (tunnel_h2.c, "nghttp2's memory"). */
#define TUNNEL_H2_BIG_ALLOC (16 << 10)
#define TUNNEL_H2_BIG_MAX 4

struct tunnel_h2;
struct tunnel_h2_stream;

struct tunnel_h2_headers {
	struct http_header h[TUNNEL_H2_MAX_HEADERS];
	size_t n;
};

struct tunnel_h2_io {
	/* Sends bytes to the peer: 1 ok, 0 ok but stop for now (call
	 * tunnel_h2_flush when the transport drains), < 0 the transport is dead. */
	int (*send)(void *io, const uint8_t *data, size_t len);
	/*
	 * Optional: asks the owner to call tunnel_h2_flush soon, on a later turn
	 * of its loop (once per request until that flush). With it, the
	 * stream and tunnel calls below never flush themselves, so no tunnel
	 * callback (on_close above all) runs inside them, and output made by
	 * many calls in one loop turn leaves in one transport message. Without
	 * it (tests) every call flushes at once.
	 */
	void (*kick)(void *io);
	/*
	 * Optional: 1 while the transport takes more (below its high-water
	 * mark). While it returns 0 nothing more is pulled out of the session,
	 * so a peer that stops reading holds up only what is already queued:
	 * flow control then stalls the streams.
	 */
	int (*writable)(void *io);
	void *io;
};

struct tunnel_h2_config {
	uint32_t max_streams;
	int32_t stream_window;
	int32_t conn_window;
	size_t stream_out_high;
};

struct tunnel_h2_callbacks {
	/* Agent side: a request's headers arrived (h valid during the call only).
	 * Set stream callbacks with
	 * tunnel_h2_stream_set_callbacks, then answer with tunnel_h2_respond or
	 * tunnel_h2_stream_reset. */
	void (*on_request)(struct tunnel_h2 *t, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h);
	/* The peer sent GOAWAY: no new streams will be accepted. */
	void (*on_goaway)(struct tunnel_h2 *t, uint32_t error_code);
};

struct tunnel_h2_stream_callbacks {
	/* Manager side: the final response headers (":status" first). h and its
	 * slices are valid during the call only (the next HEADERS frame of the
	 * stream reuses their buffer): copy what must outlive it. */
	void (*on_response)(struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h);
	/* Body bytes; credit them back with tunnel_h2_stream_consume. */
	void (*on_data)(struct tunnel_h2_stream *s, const uint8_t *data, size_t len);
	/* The peer finished its side (END_STREAM). */
	void (*on_end)(struct tunnel_h2_stream *s);
	/* Our queued output fell below the low-water mark after a write returned 0. */
	void (*on_drain)(struct tunnel_h2_stream *s);
	/* The stream is gone (error_code 0 on a clean finish); s is freed after. */
	void (*on_close)(struct tunnel_h2_stream *s, uint32_t error_code);
};

void tunnel_h2_config_defaults(struct tunnel_h2_config *c);
/* is_client: 1 on the manager (HTTP/2 client), 0 on the agent. */
struct tunnel_h2 *tunnel_h2_new(int is_client, const struct tunnel_h2_config *cfg, const struct tunnel_h2_io *io,
			  const struct tunnel_h2_callbacks *cbs, void *data);
void tunnel_h2_free(struct tunnel_h2 *t);
/* Bytes from the peer. Returns 0, or < 0 on a protocol error (close the transport). */
int tunnel_h2_feed(struct tunnel_h2 *t, const uint8_t *data, size_t len);
/* Pushes pending output to the transport; < 0 when the session is over. */
int tunnel_h2_flush(struct tunnel_h2 *t);
/* 1 while the session can still carry streams or has some in flight. */
int tunnel_h2_alive(const struct tunnel_h2 *t);
void *tunnel_h2_data(const struct tunnel_h2 *t);
void tunnel_h2_set_data(struct tunnel_h2 *t, void *data);
/* Sends a PING; the RTT of the answer is kept. */
int tunnel_h2_ping(struct tunnel_h2 *t, uint64_t now_ms);
int64_t tunnel_h2_rtt_ms(const struct tunnel_h2 *t); /* -1 before the first answer */
uint64_t tunnel_h2_last_recv_ms(const struct tunnel_h2 *t);
void tunnel_h2_touch(struct tunnel_h2 *t, uint64_t now_ms);
size_t tunnel_h2_active_streams(const struct tunnel_h2 *t);
/* Graceful: streams in flight finish, no new ones. */
int tunnel_h2_goaway(struct tunnel_h2 *t);
/*
 * GOAWAY with an HTTP/2 error code (RFC 9113 section 7) and a short
 * reason as its debug data (our own C string, or NULL). The tunnel uses
 * TUNNEL_H2_REFUSED for "this certificate is not (or no longer) enrolled"
 * (docs/protocol.md).
 */
int tunnel_h2_goaway_error(struct tunnel_h2 *t, uint32_t error_code, const char *why);
#define TUNNEL_H2_REFUSED 0xcu	    /* INADEQUATE_SECURITY */
#define TUNNEL_H2_UNAVAILABLE 0x2u  /* INTERNAL_ERROR: the manager cannot serve it now */
/* 1 once the peer accepts extended CONNECT (RFC 8441), manager side. */
int tunnel_h2_connect_protocol_enabled(const struct tunnel_h2 *t);

/* Manager side: opens a stream. nv holds pseudo-headers first. has_body: a
 * request body will follow with tunnel_h2_stream_write / tunnel_h2_stream_end. */
struct tunnel_h2_stream *tunnel_h2_request(struct tunnel_h2 *t, const struct http_header *nv, size_t n,
				     int has_body, const struct tunnel_h2_stream_callbacks *cbs,
				     void *data);
/* Agent side: answers a request. has_body as above. */
int tunnel_h2_respond(struct tunnel_h2_stream *s, const struct http_header *nv, size_t n, int has_body);

void tunnel_h2_stream_set_callbacks(struct tunnel_h2_stream *s, const struct tunnel_h2_stream_callbacks *cbs,
				 void *data);
void *tunnel_h2_stream_data(const struct tunnel_h2_stream *s);
void tunnel_h2_stream_set_data(struct tunnel_h2_stream *s, void *data);
struct tunnel_h2 *tunnel_h2_stream_tunnel(const struct tunnel_h2_stream *s);
int32_t tunnel_h2_stream_id(const struct tunnel_h2_stream *s);
/* 1 go on, 0 above the high-water mark (wait for on_drain), < 0 error. */
int tunnel_h2_stream_write(struct tunnel_h2_stream *s, const void *data, size_t len);
int tunnel_h2_stream_end(struct tunnel_h2_stream *s);
void tunnel_h2_stream_consume(struct tunnel_h2_stream *s, size_t n);
/* RST_STREAM; on_close follows (possibly later). */
void tunnel_h2_stream_reset(struct tunnel_h2_stream *s, uint32_t error_code);
/* 1 when the body was ended and every byte of it was handed to HTTP/2. */
int tunnel_h2_stream_sent_all(const struct tunnel_h2_stream *s);

/* Looks a header up (case-sensitive: HTTP/2 names are lowercase). */
struct slice tunnel_h2_header(const struct tunnel_h2_headers *h, struct slice name);

#endif
