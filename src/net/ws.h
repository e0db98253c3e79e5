/*
 * ws.h - WebSocket (RFC 6455) over a conn, both roles, with our own frame
 * codec (ws.c; why not wslay is said there).
 *
 * A ws takes over an open conn (plain or TLS) after the HTTP upgrade and
 * moves whole messages both ways with backpressure:
 *
 *   - Input: fragments are reassembled up to max_message bytes (the named
 *     cap of the only buffer a peer can grow here); a frame that would take
 *     a message past it closes the connection with 1009. A message that
 *     arrives whole in one read is delivered without a copy. ws_read_stop
 *     stops parsing right after the current message: no on_message runs
 *     between ws_read_stop and ws_read_start.
 *   - Output: ws_send writes the frame to the conn at once (the conn copies
 *     or encrypts it); it returns 0 once ws_pending() is above
 *     WS_HIGH_WATER, and on_drain follows when the queue has fallen to half
 *     of it.
 *
 * Ownership and callbacks: every callback runs on the loop thread, never from
 * inside a ws_* call (input that is already available when ws_new, ws_feed or
 * ws_read_start runs is parsed on a later loop turn). on_close runs
 * exactly once, for every ws that was returned to a caller, after which the
 * ws is gone. After ws_close or ws_abort no on_message runs any more.
 *
 * Pings are answered and close frames echoed here. Peer junk (bad frames,
 * reserved bits or opcodes, unmasked client frames, masked server frames,
 * broken fragmentation, non-minimal lengths, bad UTF-8 in text or close
 * reasons) closes the connection with the matching close code; it never
 * aborts the process.
 */
#ifndef LXCM_WS_H
#define LXCM_WS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "net/conn.h"
#include "net/http.h"
#include "net/http_client.h"

#define WS_TEXT 1
#define WS_BINARY 2

/* The default cap on one received message (after reassembly). */
#define WS_DEFAULT_MAX_MESSAGE (1024 * 1024)
/* ws_send returns 0 above this many queued output bytes. */
#define WS_HIGH_WATER (1024 * 1024)
/* How long we wait for the peer's half of the closing handshake. */
#define WS_CLOSE_TIMEOUT_MS 5000

/* Close codes (RFC 6455 section 7.4.1) that on_close may report. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_NO_STATUS 1005 /* the peer's close frame carried no code */
#define WS_CLOSE_ABNORMAL 1006	/* the connection ended without a close frame */
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

#define WS_PROTOCOL_HEADER "Sec-WebSocket-Protocol"

struct ws;

struct ws_callbacks {
	/* A whole message; data is valid during the call only. */
	void (*on_message)(struct ws *w, int opcode, const char *data, size_t len);
	/* Queued output fell to half of WS_HIGH_WATER after ws_send returned 0. */
	void (*on_drain)(struct ws *w);
	/*
	 * The WebSocket is finished. code is the close code of the peer's close
	 * frame when one arrived; else the code we sent after a protocol error
	 * of the peer (1002, 1007, 1009); else WS_CLOSE_ABNORMAL when the
	 * connection ended (or the closing handshake timed out) without one;
	 * else a negative error: a conn error, -ECONNABORTED after ws_abort.
	 * w is freed right after this returns.
	 */
	void (*on_close)(struct ws *w, int code);
};

/*
 * Takes over the open conn c: sets its callbacks and data, its high-water
 * mark (to WS_HIGH_WATER / 2) and starts reading. is_client: we mask our frames and expect
 * unmasked ones. max_message 0 means WS_DEFAULT_MAX_MESSAGE. Returns NULL on
 * allocation failure, and then leaves c untouched (the caller still owns it).
 */
struct ws *ws_new(struct conn *c, int is_client, size_t max_message, const struct ws_callbacks *cbs,
		  void *data);
/*
 * Bytes that arrived together with the upgrade (copied). They are parsed on
 * a later loop turn, before any bytes the conn delivers afterwards.
 */
void ws_feed(struct ws *w, const char *data, size_t len);
/*
 * Queues one message (copied): opcode WS_TEXT (the caller guarantees UTF-8)
 * or WS_BINARY. Returns 1: go on; 0: queued, but above the high-water mark
 * (wait for on_drain); <0: not sent (-EPIPE once closing, -EINVAL, -ENOMEM).
 */
int ws_send(struct ws *w, int opcode, const void *data, size_t len);
/* Bytes queued for the peer (in the conn: ws keeps no output queue). */
size_t ws_pending(const struct ws *w);
/* Backpressure on incoming messages. */
void ws_read_stop(struct ws *w);
void ws_read_start(struct ws *w);
/*
 * Starts the closing handshake: sends a close frame with code (0: none) and
 * reason (our own C string, cut to 123 bytes), waits up to
 * WS_CLOSE_TIMEOUT_MS for the peer's close frame, flushes and closes the
 * conn. on_close follows. Idempotent.
 */
void ws_close(struct ws *w, uint16_t code, const char *reason);
/* Closes the conn at once, dropping queued output; on_close(-ECONNABORTED) follows. */
void ws_abort(struct ws *w);

void *ws_data(const struct ws *w);
void ws_set_data(struct ws *w, void *data);
/* The conn underneath (for peer fingerprint and address); NULL once closed. */
struct conn *ws_conn(const struct ws *w);

/* ---- handshake helpers ---- */

/*
 * out = base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28
 * characters and a NUL. Returns 0 or -EIO.
 */
int ws_accept_key(const char *key, size_t key_len, char out[29]);
/* out = base64 of 16 random bytes, 24 characters and a NUL. Returns 0 or -EIO. */
int ws_client_key(char out[25]);
/*
 * Validates a server-side upgrade request: GET, Upgrade with the token
 * "websocket", Connection with the token "upgrade" (both case-insensitive
 * token lists), Sec-WebSocket-Version: 13, and exactly one Sec-WebSocket-Key
 * that base64-decodes to 16 bytes. Returns 0, or -EINVAL with a static
 * reason in *why.
 */
int ws_check_upgrade_request(const struct http_request *req, const char **why);
/* 1 if the request's Sec-WebSocket-Protocol token list offers protocol. */
int ws_request_offers_protocol(const struct http_request *req, const char *protocol);
/*
 * The whole server handshake, for a handler of an HTTP_ROUTE_UPGRADE route:
 * validates the request, responds 101 with Sec-WebSocket-Accept (and
 * Sec-WebSocket-Protocol: protocol when protocol is not NULL, which the
 * client must have offered), takes the conn and returns a new ws. On
 * failure returns NULL, and the request has been finished (400 for a bad
 * request). Either way the caller must not touch req afterwards.
 */
struct ws *ws_server_accept(struct http_request *req, const char *protocol, size_t max_message,
			    const struct ws_callbacks *cbs, void *data);

/*
 * done gets a ready ws and 101, or NULL and the HTTP status of a refusal
 * (the response body is discarded) or a negative error: a connect, TLS or
 * pin error from the conn, HTTP_CLIENT_ETIMEDOUT, or -EPROTO for a 101 that
 * fails the checks of RFC 6455 section 4.1.
 */
typedef void (*ws_connect_cb)(struct ws *w, int status, void *arg);

/*
 * Opens a client WebSocket: GET target with the upgrade headers (and
 * Sec-WebSocket-Protocol: protocol when protocol is not NULL) plus the n
 * extra headers hdrs, through http_client_request with opts (TLS, pin, unix
 * socket, timeouts). Verifies the 101: Upgrade, Connection,
 * Sec-WebSocket-Accept, no extension, and exactly the requested protocol
 * (or none). Returns 0, after which done runs exactly once, or a negative
 * code, and then done never runs.
 */
int ws_connect(uv_loop_t *loop, const struct http_client_opts *opts, const char *target,
	       const char *protocol, const struct http_header *hdrs, size_t n, size_t max_message,
	       const struct ws_callbacks *cbs, void *data, ws_connect_cb done, void *arg);

/* ---- internals, exported for tests/unit/test_ws.c ---- */

/*
 * dst = src XOR the masking key, a 64-bit word at a time; phase (0..3) is
 * the key byte that src[0] meets. dst may equal src. Returns the phase after
 * the n bytes.
 */
unsigned ws__mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);

/* Incremental UTF-8 validation; zero-initialise, then feed any split. */
struct ws__utf8 {
	uint8_t need;	/* continuation bytes still due (0: between characters) */
	uint8_t lo, hi; /* the range the next continuation byte must fall in */
};
/* 0, or -1 on an invalid sequence. A whole text is valid if need is 0 at the end. */
int ws__utf8(struct ws__utf8 *u, const uint8_t *p, size_t n);

#endif
