/*
 * telemetry.h - the manager's own metrics: which series exist, and the
 * one-line hooks the request path, the proxy, the tunnels, the connector
 * and the store call to move them (the registry itself is metrics.h).
 *
 * Every hook takes the server and does nothing when it has no telemetry
 * (unit tests that build a bare server), so call sites need no check.
 * Hooks run on the loop thread, except the store observer
 * (telemetry_store_observe), which runs on store workers.
 *
 * Cardinality: labels come from fixed sets (listener, route pattern,
 * status class, protocol, reason, result, store operation). No series
 * carries a cluster name unless --metrics-per-cluster is given; then the
 * proxied-request series do, capped at TELEMETRY_MAX_CLUSTER_SERIES.
 */
#ifndef LXCM_TELEMETRY_H
#define LXCM_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"

#define TELEMETRY_MAX_CLUSTER_SERIES 20000

struct server;
struct http_request;
struct tunnel_entry;

struct telemetry;

/* Makes every family and collector; per_cluster: --metrics-per-cluster. NULL on ENOMEM. */
struct telemetry *telemetry_new(struct server *srv, int per_cluster);
void telemetry_free(struct telemetry *t);
struct metrics *telemetry_registry(struct telemetry *t);

/* Renders the registry for a scrape (format from the Accept header). Finishes req. */
void telemetry_respond(struct http_request *req);

/* http_server_config.on_finished of every listener: requests by listener, route, class. */
void telemetry_request_finished(struct http_request *req);

/* A proxied request's audit row was recorded (proxy.c): counts, bytes, duration. */
void telemetry_proxied(struct server *srv, const char *protocol, const char *cluster, int status,
		       uint64_t bytes_in, uint64_t bytes_out, uint64_t start_ms);
/* A proxied request took (+1) or gave back (-1) a stream of its tunnel. */
void telemetry_stream(struct server *srv, int delta);

/* A tunnel was registered / unregistered (tunnels.c); reason: why it went. */
void telemetry_tunnel_up(struct server *srv, const struct tunnel_entry *e);
void telemetry_tunnel_down(struct server *srv, const struct tunnel_entry *e, const char *reason);
/* A tunnel's last PING round trip, in ms (negative: none yet). */
void telemetry_tunnel_rtt(struct server *srv, int64_t rtt_ms);

/* A heartbeat was stored (rc 0) or refused by the store; start_ms: its request's start. */
void telemetry_heartbeat(struct server *srv, uint64_t start_ms, int rc);
/* A join ended with the store's answer (0, -ENOENT, -EACCES, -EEXIST, other). */
void telemetry_join(struct server *srv, int rc);
/* A request was refused by a rate limit (what: "join"). */
void telemetry_rate_limited(struct server *srv, const char *what);

/* store_observe_fn (store.h); data: the telemetry. Any thread. */
void telemetry_store_observe(void *data, const char *op, uint64_t ns, int rc);

#endif
