/*
 * upstream.h - how a proxied request reaches a cluster: one abstract
 * producer that proxy.c drives whatever the tunnel protocol (STYLE.md rule
 * 8b, after h2o's httpclient).
 *
 * Each way of reaching a cluster fills one struct upstream_ops, in a file of
 * its own: upstream_h2.c (a stream of a v2 tunnel, HTTP/2), upstream_v1.c
 * (MicroCloud's JSON frames). The tunnel registry (tunnels.c) holds on every
 * entry the ops table its protocol set when it registered, so proxy.c picks
 * the upstream through the entry and never names a protocol. Forwarding to
 * another replica would be one more such file (upstream_peer.c).
 *
 * The exchange, from the proxy's side:
 *   admit    may the entry carry this request at all (method, path,
 *            upgrade, size, load)? A refusal is answered as given, before
 *            any upstream exists.
 *   start    opens the exchange with the request head (headers already
 *            filtered by the proxy, forwarding headers added).
 *   write    request body bytes: 1 ok, 0 ok but pause until on_drain,
 *            < 0 the exchange failed (u->err says why; reset it).
 *   end      the request body is complete (0, or < 0 as for write).
 *   consume  response bytes the user took: credit them back (flow control).
 *   reset    cancel: the upstream is gone when it returns; no callback
 *            follows.
 *   close    the response was complete: release it (the request is ended
 *            if it was fully sent, else cancelled); no callback follows.
 *   pipe     after on_head(101) of a WebSocket request: hand the user's
 *            socket and the upstream to a byte pipe (stream_pipe); the
 *            upstream is gone when it returns, also on failure.
 *
 * Callbacks (to the proxy), never from inside an op:
 *   on_head   status, end-to-end headers (not yet filtered for the user),
 *             the body's length or -1. For a WebSocket request, status 101
 *             means the cluster accepted the upgrade (then call pipe); any
 *             other status is an ordinary response.
 *   on_data   response body bytes; credit them with consume.
 *   on_end    the response body is complete (then call close or reset).
 *   on_drain  write may take more after it returned 0.
 *   on_error  the exchange failed; u->err holds the reason and a message,
 *             which proxy.c maps to a status (502, 503, 504, ...) in one
 *             place. u is freed right after the callback returns.
 *
 * Errors follow libuv's rule (STYLE.md rule 3): an op that returns an error
 * fires no callback for it; the reason is in u->err.
 */
#ifndef LXCM_UPSTREAM_H
#define LXCM_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "net/http.h"
#include "net/stream_pipe.h"

#define UPSTREAM_MAX_HEADERS (HTTP_MAX_HEADERS + 8) /* the user's + forwarding + cookie */
#define UPSTREAM_MSG_MAX 400

struct tunnel_entry;
struct upstream;

/* Why an exchange failed; upstream_status gives the HTTP status for each. */
enum upstream_reason {
	UPSTREAM_OK = 0,
	UPSTREAM_CLOSED,      /* the tunnel closed before a response: 502 */
	UPSTREAM_INCOMPLETE,  /* the response was cut short: 502 */
	UPSTREAM_INVALID,     /* the cluster broke the protocol: 502 */
	UPSTREAM_BUSY,	      /* the tunnel or cluster refused more load: 503 */
	UPSTREAM_TIMEOUT,     /* no answer in time: 504 */
	UPSTREAM_TOO_LARGE,   /* the request does not fit the tunnel: 413 */
	UPSTREAM_HEAD_TOO_LARGE, /* its path or headers do not fit: 431 */
	UPSTREAM_BAD_REQUEST, /* the request cannot be carried as it is: 400 */
	UPSTREAM_INTERNAL,    /* out of memory and the like: 500 */
};

struct upstream_error {
	enum upstream_reason reason;
	char msg[UPSTREAM_MSG_MAX];
};

/* A request the proxy hands to an upstream; valid during start only. */
struct upstream_req {
	struct slice method;
	struct slice path;	/* "/" + the path after tunnel/ + "?" + query */
	struct slice tail;	/* the path after tunnel/, for admit */
	struct slice authority; /* the user's Host, or SLICE_NULL */
	const struct http_header *h; /* filtered for the cluster, forwarding added */
	size_t n;
	int64_t content_length; /* -1 when not known (chunked or none) */
	int has_body;
	int upgrade;	      /* the user asked for any protocol upgrade */
	int websocket;	      /* ... and that was a WebSocket */
	struct slice user_key; /* who the user is for per-user state (the principal's seal) */
};

/* A refusal from admit: answered as it is, in the LXD error envelope. */
struct upstream_refusal {
	int status;
	char msg[UPSTREAM_MSG_MAX];
	struct slice allow; /* an Allow header for a 405, or SLICE_NULL */
};

struct upstream_callbacks {
	void (*on_head)(struct upstream *u, int status, const struct http_header *h, size_t n,
			int64_t content_length);
	void (*on_data)(struct upstream *u, const uint8_t *data, size_t len);
	void (*on_end)(struct upstream *u);
	void (*on_drain)(struct upstream *u);
	void (*on_error)(struct upstream *u);
};

struct upstream_ops {
	const char *name; /* "v1", "v2": for the tunnel's description and logs */
	/* Requests in flight on the entry. */
	size_t (*active)(const struct tunnel_entry *e);
	/* 0 to go on, or -1 with *ref filled. */
	int (*admit)(struct tunnel_entry *e, const struct upstream_req *rq,
		     struct upstream_refusal *ref);
	/* The exchange, or NULL with *err filled. */
	struct upstream *(*start)(struct tunnel_entry *e, const struct upstream_req *rq,
				  const struct upstream_callbacks *cbs, void *arg,
				  struct upstream_error *err);
	int (*write)(struct upstream *u, const void *data, size_t len);
	int (*end)(struct upstream *u);
	void (*consume)(struct upstream *u, size_t n);
	void (*reset)(struct upstream *u);
	void (*close)(struct upstream *u);
	/* NULL when the protocol carries no upgrades (admit refuses them). */
	struct stream_pipe *(*pipe)(struct upstream *u, struct conn *c, const char *extra,
				    size_t extra_len, stream_pipe_done_cb done, void *arg);
};

/* The part every upstream starts with. */
struct upstream {
	const struct upstream_ops *ops;
	const struct upstream_callbacks *cbs;
	void *arg;
	struct upstream_error err;
};

/* The HTTP status the proxy answers for a reason. */
int upstream_status(enum upstream_reason reason);

/* Sets u->err (or any error) with a printf-style message. */
void upstream_error_set(struct upstream_error *err, enum upstream_reason reason, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));

/* The tables of the protocols, set on registry entries by their owners. */
extern const struct upstream_ops upstream_h2_ops;
extern const struct upstream_ops upstream_v1_ops;

#endif
