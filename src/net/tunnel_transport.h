/*
 * tunnel_transport.h - what carries the bytes of a tunnel's HTTP/2
 * connection (tunnel_h2) between the manager and an agent.
 *
 * Two implementations behind one small table, chosen when the tunnel is
 * set up and never looked at again by the tunnel's owner:
 *
 *   websocket  WebSocket binary messages (ws.c) after an HTTP/1.1 upgrade
 *              (GET /1.0/remote-cluster/ws, subprotocol lxcm-tunnel.v2):
 *              passes HTTP ingress proxies.
 *   direct     the TLS connection itself, after the handshake selected
 *              ALPN lxcm-tunnel.v2: no upgrade, no framing, no masking.
 *
 * The direct one is HTTP/2 straight over TLS, so it is also what a
 * replica-to-replica peer link would use (docs/architecture.md).
 *
 * A struct tunnel_transport is embedded in its owner and points at the ws
 * or conn it drives (h, NULL once that is gone). The callbacks follow the
 * rules of ws.h and conn.h: on the loop thread, never from inside a
 * tunnel_transport_* call. on_close runs once; the owner may free the
 * struct inside it.
 */
#ifndef LXCM_TUNNEL_TRANSPORT_H
#define LXCM_TUNNEL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "net/conn.h"
#include "net/ws.h"

/* The ALPN name and WebSocket subprotocol of tunnel v2 (docs/protocol.md). */
#define TUNNEL_ALPN "lxcm-tunnel.v2"
/* Above this many queued output bytes nothing more is pulled out of the session. */
#define TUNNEL_TRANSPORT_HIGH_WATER WS_HIGH_WATER
/* How long a closing direct transport waits for the peer's end. */
#define TUNNEL_TRANSPORT_CLOSE_TIMEOUT_MS WS_CLOSE_TIMEOUT_MS

struct tunnel_transport;

struct tunnel_transport_callbacks {
	/* Bytes of the HTTP/2 connection, valid during the call only. */
	void (*on_bytes)(void *owner, const uint8_t *data, size_t len);
	/* The peer broke the transport's rules (a WebSocket text message); it is being closed. */
	void (*on_junk)(void *owner, const char *why);
	/* Queued output fell to the low-water mark after a send returned 0. */
	void (*on_drain)(void *owner);
	/*
	 * The transport is gone. code: a WebSocket close code as ws.h reports
	 * it; the direct transport reports WS_CLOSE_NORMAL after a clean end
	 * (TLS close_notify or EOF) and a negative conn error otherwise.
	 */
	void (*on_close)(void *owner, int code);
};

struct tunnel_transport_ops {
	const char *name; /* "websocket" or "direct": the cluster object's tunnel.transport */
	int (*send)(struct tunnel_transport *tr, const uint8_t *data, size_t len);
	size_t (*pending)(const struct tunnel_transport *tr);
	/* Graceful: queued output goes out, then the connection ends. */
	void (*close)(struct tunnel_transport *tr, uint16_t code, const char *reason);
	/* At once, queued output dropped. */
	void (*abort)(struct tunnel_transport *tr);
	struct conn *(*conn)(const struct tunnel_transport *tr);
};

struct tunnel_transport {
	const struct tunnel_transport_ops *ops; /* NULL before init */
	void *h;				/* the ws or the conn; NULL once gone */
	const struct tunnel_transport_callbacks *cbs;
	void *owner;
	uv_timer_t *close_timer; /* direct: bounds the wait for the peer's end */
	int close_code;		 /* direct: what on_close will report */
};

extern const struct tunnel_transport_ops tunnel_transport_ws_ops;
extern const struct tunnel_transport_ops tunnel_transport_direct_ops;

/*
 * The ws callbacks of the websocket transport: pass them (with data NULL)
 * to ws_server_accept or ws_connect, then call tunnel_transport_ws before
 * the loop turns (ws callbacks never run sooner).
 */
const struct ws_callbacks *tunnel_transport_ws_callbacks(void);
/*
 * Drives a ws made with tunnel_transport_ws_callbacks(); its data becomes
 * tr. With cbs NULL, a ws with callbacks of its own (tunnel v1) only
 * lends tr its close and abort.
 */
void tunnel_transport_ws(struct tunnel_transport *tr, struct ws *w,
			 const struct tunnel_transport_callbacks *cbs, void *owner);
/*
 * Drives an open conn (TLS, ALPN lxcm-tunnel.v2): sets its callbacks, data
 * and high-water mark, and starts reading.
 */
void tunnel_transport_direct(struct tunnel_transport *tr, struct conn *c,
			     const struct tunnel_transport_callbacks *cbs, void *owner);

/* 1 ok, 0 ok but above the high-water mark (wait for on_drain), < 0 gone. */
int tunnel_transport_send(struct tunnel_transport *tr, const uint8_t *data, size_t len);
/* 1 while up and below TUNNEL_TRANSPORT_HIGH_WATER. */
int tunnel_transport_writable(const struct tunnel_transport *tr);
/* code and reason: the WebSocket close frame's (the direct transport has none). */
void tunnel_transport_close(struct tunnel_transport *tr, uint16_t code, const char *reason);
void tunnel_transport_abort(struct tunnel_transport *tr);
int tunnel_transport_up(const struct tunnel_transport *tr);
const char *tunnel_transport_name(const struct tunnel_transport *tr);
/* The connection underneath, NULL once gone. */
struct conn *tunnel_transport_conn(const struct tunnel_transport *tr);

#endif
