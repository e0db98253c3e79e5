/*
 * tunnels.h - the registry of live cluster tunnels held by this replica.
 *
 * One live tunnel per cluster: a new tunnel from the same cluster replaces
 * the old one, which is drained (GOAWAY; streams in flight finish) and then
 * closed. The store records which replica holds each cluster's tunnel and
 * since when, with an epoch; on disconnect the row is cleared only if it
 * still names this replica and this tunnel's epoch.
 *
 * Liveness: a tunnel silent for the dead time (--tunnel-dead-after, default
 * TUNNELS_DEAD_AFTER_MS) is closed; the manager PINGs each tunnel every
 * third of it and records the RTT, checking every ninth (at most
 * TUNNELS_TICK_MS).
 */
#ifndef LXCM_TUNNELS_H
#define LXCM_TUNNELS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "net/tunnel_h2.h"
#include "net/tunnel_transport.h"
#include "net/ws.h"

#define TUNNELS_PING_INTERVAL_MS 15000
#define TUNNELS_DEAD_AFTER_MS 45000
#define TUNNELS_TICK_MS 5000
#define TUNNELS_WS_MAX_MESSAGE (1 << 20)
#define TUNNEL_PROTOCOL_V2 TUNNEL_ALPN

struct server;
struct tunnels;
struct upstream_ops;

/* One live (or draining) tunnel of one cluster. */
struct tunnel_entry {
	struct tunnels *reg;
	char cluster[64];
	int protocol; /* 1 or 2 */
	/* What carries it (WebSocket or direct); tr.h is NULL once it is gone. */
	struct tunnel_transport tr;
	struct tunnel_h2 *t;  /* v2 session, NULL for v1 */
	void *impl;	   /* the protocol's own state (v1: struct tunnel_v1) */
	/* How requests reach the cluster (upstream.h), set by the protocol. */
	const struct upstream_ops *ops;
	int64_t connected_since;
	int64_t epoch;
	uint64_t last_ping_ms;
	uint64_t attached_ms; /* uv_now() when the tunnel came up */
	uint64_t closing_ms;  /* uv_now() when we started closing it */
	int draining;
	int closing;
	const char *close_reason; /* for metrics; NULL: the peer or the transport closed it */
	struct tunnel_entry *next, *prev; /* every entry of the registry */
	struct tunnel_entry *hnext;	  /* hash chain, while live */
	struct tunnel_entry *dnext;	  /* wants a flush on the next loop turn */
	int dirty;
	int hashed;
};

struct tunnels *tunnels_new(struct server *srv);
void tunnels_free(struct tunnels *reg);
/* Closes every tunnel (shutdown): agents see the connection end and come back. */
void tunnels_close_all(struct tunnels *reg);

/* Closes every tunnel of a cluster that was removed: its agent is no longer trusted. */
void tunnels_drop(struct tunnels *reg, const char *cluster);
/* Change feed subscriber (data: the registry): drops a removed cluster's tunnel. */
struct store_change;
void tunnels_on_change(const struct store_change *c, void *data);

/* The live tunnel of a cluster, or NULL. */
struct tunnel_entry *tunnels_get(struct tunnels *reg, const char *cluster);
size_t tunnels_count(const struct tunnels *reg);
/* The cluster object's "tunnel" field, or NULL when there is none. */
json_t *tunnels_describe(struct tunnels *reg, const char *cluster);

/*
 * Starts a v2 tunnel for an enrolled cluster on an accepted WebSocket (made
 * with tunnel_transport_ws_callbacks()), or, with the direct transport, on
 * the TLS connection itself (connector_direct.c). Either way the registry
 * owns the ws or conn from here on, failure included.
 */
int tunnels_attach_v2(struct tunnels *reg, const char *cluster, struct ws *ws);
int tunnels_attach_direct(struct tunnels *reg, const char *cluster, struct conn *c);
/*
 * For other protocol modules (tunnel_v1.c): a new entry with its epoch, not
 * yet registered; free it with free() if it never gets registered.
 */
struct tunnel_entry *tunnels_entry_new(struct tunnels *reg, const char *cluster, int protocol);
/* For other protocol modules: registers an entry they built. */
int tunnels_register(struct tunnels *reg, struct tunnel_entry *e);
/* Protocol modules call this when their transport is gone. */
void tunnels_unregister(struct tunnel_entry *e);

#endif
