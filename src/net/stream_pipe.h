/*
 * stream_pipe.h - the one byte pipe: raw bytes both ways between two ends,
 * each a socket (struct conn) or a tunnel stream.
 *
 * What a WebSocket (or any upgraded connection) becomes once both sides
 * have switched protocols: the manager pipes the user's socket into an
 * extended CONNECT stream, the agent pipes that stream into LXD's socket,
 * and `lxcm proxy` pipes the local client's socket into its connection to
 * the manager. Both directions keep backpressure:
 *   into a stream: tunnel_h2_stream_write returns 0 -> the source stops
 *                  (a socket: conn_read_stop; a stream: its bytes are
 *                  credited to its window only later), until the stream's
 *                  on_drain
 *   into a socket: conn_write returns 0 -> the same, until its on_drain
 * So a pipe holds at most about two high-water marks whatever the traffic.
 *
 * Ends:
 *   - A socket's EOF (TCP FIN, TLS close_notify) is a half-close: the
 *     other end's input is ended (a stream: END_STREAM; a socket:
 *     conn_shutdown_write, after its queued output) and what the other
 *     end sends keeps flowing to this socket until it ends too; then both
 *     are finished.
 *   - A stream's end (END_STREAM) finishes its socket: the queued output is
 *     flushed and the socket closed. (A cluster that ended its side has
 *     nothing more to say; the user's connection is not held open for it.)
 *   - An error on either end (a socket's read or write error, a stream
 *     reset, a failed write) resets the stream and closes the sockets.
 *   - A half-closed pipe (one end ended) lives on only while bytes move:
 *     quiet for the fin timeout (STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS unless
 *     set), it is cut as by an error.
 *
 * Ownership: the start functions take both ends (the caller must forget
 * them), also when they fail (then the sockets are closed and the stream
 * reset, and done never runs). done runs once, after both ends are gone;
 * the pipe is freed right after it returns.
 */
#ifndef LXCM_STREAM_PIPE_H
#define LXCM_STREAM_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/tunnel_h2.h"

struct stream_pipe;

#define STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS 30000

/* Runs once both ends are gone, with the bytes moved each way. */
typedef void (*stream_pipe_done_cb)(void *arg, uint64_t first_to_second, uint64_t second_to_first);

/*
 * Pipes the socket c (first) and the stream s (second). extra: bytes
 * already read from c that belong to the stream. Returns NULL only on
 * allocation failure.
 */
struct stream_pipe *stream_pipe_start(struct conn *c, struct tunnel_h2_stream *s, const char *extra,
				      size_t extra_len, stream_pipe_done_cb done, void *arg);

/*
 * Pipes the sockets a (first) and b (second). a_extra holds bytes already
 * read from a (they go to b first), b_extra those already read from b;
 * both are copied. Returns NULL only on allocation failure.
 */
struct stream_pipe *stream_pipe_start_conns(struct conn *a, const char *a_extra, size_t a_len,
					    struct conn *b, const char *b_extra, size_t b_len,
					    stream_pipe_done_cb done, void *arg);

/* Ends both ends now, as an error would (done follows once they are gone). */
void stream_pipe_close(struct stream_pipe *p);

/*
 * How long a half-closed pipe (one end ended) may stay quiet before both
 * ends are cut; each byte moved restarts the wait. 0: no limit.
 */
void stream_pipe_set_fin_timeout(struct stream_pipe *p, uint64_t ms);

#endif
