/*
 * stream_pipe.h - raw bytes both ways between a socket and a tunnel stream.
 *
 * The WebSocket pass-through on both ends of tunnel v2 is the same pipe:
 * the manager pipes the user's upgraded socket into an extended CONNECT
 * stream, the agent pipes that stream into LXD's upgraded socket. Both
 * directions keep backpressure:
 *   socket -> stream: tunnel_stream_write returns 0 -> conn_read_stop,
 *                     the stream's on_drain -> conn_read_start
 *   stream -> socket: conn_write returns 0 -> the bytes are credited to the
 *                     stream window only on the socket's on_drain
 * A clean end on one side ends the other (half-close, then close); an
 * error on either side resets the stream and closes the socket. A
 * half-closed pipe lives on only while bytes move: quiet for the fin
 * timeout (STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS unless set), it is cut.
 */
#ifndef LXCM_STREAM_PIPE_H
#define LXCM_STREAM_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/tunnel_h2.h"

struct stream_pipe;

#define STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS 30000

/* Runs once both sides are gone, with the bytes moved each way. */
typedef void (*stream_pipe_done_cb)(void *arg, uint64_t to_stream, uint64_t to_conn);

/*
 * Takes over the callbacks of c and s (the caller must forget both).
 * extra: bytes already read from c that belong to the stream. Returns NULL
 * only on allocation failure, after closing c and resetting s; done then
 * never runs.
 */
struct stream_pipe *stream_pipe_start(struct conn *c, struct tunnel_stream *s, const char *extra,
				      size_t extra_len, stream_pipe_done_cb done, void *arg);

/*
 * How long a half-closed pipe (one side ended) may stay quiet before both
 * sides are cut; each byte moved restarts the wait. 0: no limit.
 */
void stream_pipe_set_fin_timeout(struct stream_pipe *p, uint64_t ms);

#endif
