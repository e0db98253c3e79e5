/*
 * tunnel_v1.h - tunnel protocol v1: the JSON text frames MicroCloud speaks
 * (MICROCLOUD-PROTOCOL.md, "Tunnel v1"; docs/protocol-v1.md for lxcm's caps
 * and choices).
 *
 * A cluster that opens /1.0/remote-cluster/ws without the lxcm-tunnel.v2
 * subprotocol gets a v1 tunnel: an entry with protocol 1 in the tunnel
 * registry, replacing an older tunnel of the same cluster, whose upstream
 * table is upstream_v1_ops. Three files:
 *   tunnel_v1.c        the WebSocket and the registry entry (this header);
 *   upstream_v1.c      requests as an upstream (upstream.h): the body is
 *                      buffered, one frame per request, answered from the
 *                      response frame with the same uuid, in any order;
 *   tunnel_v1_frame.c  the frame codec.
 *
 * Caps (every buffer a peer can grow, STYLE.md rule 4):
 *   TUNNEL_V1_MAX_FRAME    one message from the cluster; bigger: the
 *                          WebSocket layer closes the tunnel with 1009.
 *   TUNNEL_V1_MAX_BODY     one request body; bigger: 413.
 *   TUNNEL_V1_MAX_PENDING  requests of one tunnel at once; more: 503.
 *   TUNNEL_V1_MAX_BUFFERED request body bytes being buffered on one tunnel; more: 503.
 *   TUNNEL_V1_MAX_QUEUED   frame bytes queued towards the cluster; more: 503.
 *   TUNNEL_V1_MAX_HEADERS  response headers (including Set-Cookie lines)
 *                          passed to the user; a response with more: 502.
 */
#ifndef LXCM_TUNNEL_V1_H
#define LXCM_TUNNEL_V1_H

#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

#include "net/http.h"
#include "server/tunnel_v1_frame.h"

#define TUNNEL_V1_MAX_FRAME TUNNEL_V1_FRAME_MAX
#define TUNNEL_V1_MAX_BODY (8 * 1024 * 1024)
#define TUNNEL_V1_MAX_PENDING 256
#define TUNNEL_V1_MAX_BUFFERED (64 * 1024 * 1024)
#define TUNNEL_V1_MAX_QUEUED (64 * 1024 * 1024)
#define TUNNEL_V1_MAX_HEADERS TUNNEL_V1_FRAME_MAX_HEADERS

struct server;
struct tunnel_entry;
struct session_cookies;
struct ws;
struct upstream_v1;

TAILQ_HEAD(tunnel_v1_queue, upstream_v1);

struct tunnel_v1_list {
	struct tunnel_v1_queue q; /* oldest first */
	size_t n;
};

/* One live v1 WebSocket, hung on its registry entry (e->impl). */
struct tunnel_v1 {
	struct server *srv;
	struct tunnel_entry *e; /* NULL once unregistered */
	struct ws *ws;		/* NULL once closed */
	struct session_cookies *jar;
	struct tunnel_v1_list buffering; /* request bodies still arriving */
	struct tunnel_v1_list inflight;	 /* frames sent, waiting for an answer */
	size_t buffered;		 /* body bytes held by the buffering list */
	uint64_t bad_frames;
	char cluster[64];
};

/*
 * For the connector's /1.0/remote-cluster/ws handler, after the cluster was
 * identified by its certificate and the request checked as an upgrade:
 * accepts the WebSocket (no subprotocol) and registers the tunnel. Finishes
 * req either way (ws_server_accept's contract).
 */
void tunnel_v1_accept(struct server *srv, const char *cluster, struct http_request *req);

/* Counts a dropped frame; logs the first few and then one in a thousand. */
void tunnel_v1_bad_frame(struct tunnel_v1 *tv, const char *what, const char *detail);

/* upstream_v1.c, for tunnel_v1.c: a response frame arrived; the tunnel closed. */
void upstream_v1__on_frame(struct tunnel_v1 *tv, json_t *root);
void upstream_v1__fail_all(struct tunnel_v1 *tv, const char *msg);

#endif
