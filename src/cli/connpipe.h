/*
 * connpipe.h - raw bytes both ways between two connections, with
 * backpressure: what a WebSocket becomes once both sides have upgraded.
 *
 * Bytes read from one side are written to the other; when the other side's
 * output is above its high-water mark (conn_write returned 0), reading from
 * this side stops until the other's on_drain. So a pipe holds at most about
 * two high-water marks of data whatever the traffic.
 *
 * When either side ends (the peer closed, or an error), the other side is
 * shut down (its queued output is flushed first) and this side is closed.
 *
 * Ownership: connpipe_start takes both conns, even when it fails (then
 * both are closed). on_closed runs once, after both conns are gone; the
 * pipe is freed right after it returns.
 */
#ifndef LXCM_CLI_CONNPIPE_H
#define LXCM_CLI_CONNPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

struct connpipe;

typedef void (*connpipe_closed_fn)(struct connpipe *p, void *data);

/*
 * Pipes a <-> b. a_read holds bytes already read from a (they go to b
 * first), b_read those already read from b; both are copied. Starts
 * reading on both. Returns NULL on allocation failure.
 */
struct connpipe *connpipe_start(struct conn *a, const char *a_read, size_t a_len, struct conn *b,
				const char *b_read, size_t b_len, connpipe_closed_fn on_closed,
				void *data);

/* Closes both sides now (on_closed follows once they are gone). */
void connpipe_close(struct connpipe *p);

/* Bytes moved so far from a to b and from b to a. */
void connpipe_counts(const struct connpipe *p, uint64_t *a_to_b, uint64_t *b_to_a);

#endif
