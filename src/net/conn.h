/*
 * conn.h - one byte-stream connection over libuv, plain or TLS.
 *
 * A conn hides whether bytes go over TCP, a unix socket, or TLS (OpenSSL
 * with memory BIOs) on either. Users see plaintext only.
 *
 * Ownership: conn_new allocates; the conn frees itself after its handles are
 * closed, right after calling on_close. Nothing may touch it after on_close.
 * conn_close is idempotent and never calls back synchronously.
 *
 * Callbacks (all on the loop thread, never from inside a conn_* call):
 *   on_open   the connection is usable (connected, TLS handshake done,
 *             pin checked).
 *   on_data   plaintext arrived; the callee may conn_read_stop(). The bytes
 *             lie in a buffer of the conn that is valid during the call
 *             only; the callee may modify them in place (ws.c unmasks
 *             there), which is why nothing else reads them afterwards.
 *   on_end    the peer closed (err == 0) or something failed (err < 0,
 *             a uv error code, or CONN_EPIN / CONN_ETLS). Called at most
 *             once; no on_data follows. The user normally calls conn_close.
 *   on_drain  queued output fell to the low-water mark after a conn_write
 *             reported the high-water mark (returned 0).
 *   on_close  the conn is about to be freed, or (server role) it was
 *             handed to another owner after its handshake by an ALPN
 *             handover (tls.h): either way the owner forgets it.
 */
#ifndef LXCM_CONN_H
#define LXCM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/slice.h"

#define CONN_EPIN (-10001) /* peer certificate does not match the pinned fingerprint */
#define CONN_ETLS (-10002) /* TLS handshake or record failure */
#define CONN_EPREFIX (-10003) /* the prefix did not end within its cap */
#define CONN_PREFIX_MORE (-10004) /* conn_prefix_fn: not complete yet, read on */

#define CONN_HIGH_WATER_DEFAULT (256 * 1024)

struct conn;

struct conn_callbacks {
	void (*on_open)(struct conn *c);
	void (*on_data)(struct conn *c, const char *data, size_t len);
	void (*on_end)(struct conn *c, int err);
	void (*on_drain)(struct conn *c);
	void (*on_close)(struct conn *c);
};

/* tls may be NULL for plaintext. The conn takes a reference on tls. */
struct conn *conn_new(uv_loop_t *loop, SSL_CTX *tls, const struct conn_callbacks *cbs,
		      void *data);
/* Accepts a pending connection from a listening TCP or unix socket handle (server role). */
int conn_accept(struct conn *c, uv_stream_t *server);
/* Resolves host and connects (client role); sni NULL means host unless it is an IP. */
int conn_connect_tcp(struct conn *c, const char *host, int port);
int conn_connect_unix(struct conn *c, const char *path);
/*
 * Server role: a prefix the peer sends before anything else (a PROXY
 * protocol header, proxy_proto.h), read before TLS starts. Set it right
 * after conn_accept. Until the prefix is complete, raw bytes are read into
 * a buffer of the conn, at most cap bytes, and fn is called with all of
 * them each time more arrived. fn returns:
 *   n >= 0            the prefix is complete and is the first n bytes; they
 *                     are dropped and the rest goes on to TLS (or on_data)
 *                     as if just read. fn is not called again.
 *   CONN_PREFIX_MORE  read on; if cap bytes are already in, the connection
 *                     ends with CONN_EPREFIX.
 *   other negative    the connection ends with this code (on_end).
 * fn may also conn_close (nothing then follows) or conn_set_peer_addr. The
 * peer's EOF before the prefix is complete is on_end(c, 0) as usual. No
 * timer is kept here: the user's (a header timeout) covers the prefix.
 */
typedef int (*conn_prefix_fn)(struct conn *c, const char *data, size_t len);
void conn_set_prefix(struct conn *c, conn_prefix_fn fn, size_t cap);
/* Replaces what conn_peer_addr says (the address a PROXY header gave). */
void conn_set_peer_addr(struct conn *c, const char *addr);
/*
 * Client role, before connecting: the ALPN list to offer, in wire form
 * ("\x0elxcm-tunnel.v2\x08http/1.1"); protos must outlive the handshake
 * (a static list). See conn_alpn for the answer.
 */
void conn_set_alpn(struct conn *c, const unsigned char *protos, unsigned len);
/* Client role only: fail the handshake unless the peer's SHA-256 matches. */
void conn_set_pin(struct conn *c, const char *fingerprint);
void conn_set_high_water(struct conn *c, size_t bytes);

/*
 * Queues bytes (copied). Returns 1 if the producer may go on, 0 if the queue
 * is above the high-water mark (wait for on_drain), or a negative code if the
 * conn is closing or failed.
 */
int conn_write(struct conn *c, const void *data, size_t len);
/*
 * conn_write of the n slices one after the other, as if they were one
 * buffer: with TLS, small slices share a record with the bytes behind them
 * (a frame header does not cost a record of its own).
 */
int conn_writev(struct conn *c, const struct slice *v, size_t n);
size_t conn_write_pending(const struct conn *c);
/* Bytes the kernel has taken from us so far (partial writes included): a
 * measure of progress toward a slow reader. */
uint64_t conn_bytes_sent(const struct conn *c);
void conn_read_stop(struct conn *c);
void conn_read_start(struct conn *c);
/*
 * Delivers the end (on_end) once more, on the next loop turn: for a new
 * owner of the callbacks when the old one saw the end but kept it.
 * Nothing happens if the connection has not ended.
 */
void conn_replay_end(struct conn *c);
/* Flushes queued output (and TLS close_notify), then closes. */
void conn_shutdown(struct conn *c);
/*
 * Ends our output but keeps reading (a half-close): after the queued
 * output, TLS close_notify (with TLS) and the TCP FIN go out; later writes
 * fail with -EPIPE. The peer's own end still arrives as on_end; the user
 * then closes (conn_shutdown or conn_close). On a conn that is not open
 * yet it is conn_shutdown. A peer's EOF, TCP FIN or TLS close_notify, is
 * the same half-close seen from the other side: on_end(0), and writing may
 * go on.
 */
void conn_shutdown_write(struct conn *c);
void conn_close(struct conn *c);
int conn_is_closing(const struct conn *c);

void *conn_data(const struct conn *c);
void conn_set_data(struct conn *c, void *data);
void conn_set_callbacks(struct conn *c, const struct conn_callbacks *cbs);
uv_loop_t *conn_loop(const struct conn *c);
/* Lowercase hex SHA-256 of the peer's certificate, or NULL if it sent none. */
const char *conn_peer_fingerprint(const struct conn *c);
/* PEM of the peer certificate (malloc'd) or NULL. */
char *conn_peer_cert_pem(const struct conn *c);
/*
 * The peer's address without port ("127.0.0.1", "::1", "unix"): the
 * socket's, unless conn_set_peer_addr replaced it.
 */
const char *conn_peer_addr(const struct conn *c);
/* Always the socket's peer address. */
const char *conn_socket_addr(const struct conn *c);
int conn_is_tls(const struct conn *c);
/* ALPN protocol chosen, or NULL. */
const char *conn_alpn(const struct conn *c, unsigned *len);
/*
 * TLS handshakes this process completed (ok) or failed (a TLS error or a
 * refused peer certificate) as a server, for metrics. Loop thread.
 */
void conn_tls_server_stats(uint64_t *ok, uint64_t *failed);

/*
 * For fuzz targets only: a plaintext server conn that claims the client
 * certificate with this fingerprint (64 lowercase hex digits), so code
 * behind a TLS handshake (the direct tunnel's way in) can be driven
 * without one.
 */
void conn__set_peer_fingerprint(struct conn *c, const char *fingerprint);

#endif
