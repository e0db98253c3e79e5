/*
 * tunnel_v1.h - tunnel protocol v1: the JSON text frames MicroCloud speaks
 * (MICROCLOUD-PROTOCOL.md, "Tunnel v1"; docs/protocol-v1.md for lxcm's caps
 * and choices).
 *
 * A cluster that opens /1.0/remote-cluster/ws without the lxcm-tunnel.v2
 * subprotocol gets a v1 tunnel: an entry with protocol 1 in the tunnel
 * registry, replacing an older tunnel of the same cluster. The proxy route
 * hands requests for such a cluster to tunnel_v1_proxy, which buffers the
 * request body, sends one frame per request and answers the user from the
 * matching response frame. Several requests may be in flight; responses are
 * matched by uuid in any order.
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

#include "net/http.h"

#define TUNNEL_V1_MAX_FRAME (16 * 1024 * 1024)
#define TUNNEL_V1_MAX_BODY (8 * 1024 * 1024)
#define TUNNEL_V1_MAX_PENDING 256
#define TUNNEL_V1_MAX_BUFFERED (64 * 1024 * 1024)
#define TUNNEL_V1_MAX_QUEUED (64 * 1024 * 1024)
#define TUNNEL_V1_MAX_HEADERS 100

struct server;
struct tunnel_entry;

/*
 * For the connector's /1.0/remote-cluster/ws handler, after the cluster was
 * identified by its certificate and the request checked as an upgrade:
 * accepts the WebSocket (no subprotocol) and registers the tunnel. Finishes
 * req either way (ws_server_accept's contract).
 */
void tunnel_v1_accept(struct server *srv, const char *cluster, struct http_request *req);

/*
 * For the proxy route: carries req over the v1 tunnel of entry e. Takes
 * over req (sets its body callbacks) and finishes it exactly once.
 */
void tunnel_v1_proxy(struct tunnel_entry *e, struct http_request *req);

/* Requests in flight on a v1 entry (0 for anything else). */
size_t tunnel_v1_active(const struct tunnel_entry *e);

#endif
