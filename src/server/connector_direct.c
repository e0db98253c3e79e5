/*
 * connector_direct.c - the direct tunnel transport's way in on the
 * connector: a TLS connection whose handshake selected ALPN
 * lxcm-tunnel.v2 is handed here by conn.c right after the handshake
 * (tls_server_set_alpn_handover), before the HTTP server reads a byte.
 *
 * It gets exactly the WebSocket path's check (connector.c,
 * GET /1.0/remote-cluster/ws): the client certificate's fingerprint must
 * name an enrolled cluster in the store (the same lookup, on the store's
 * worker threads), and the cluster's tunnel is then registered under that
 * name (tunnels_attach_direct), replacing any older one. There is no HTTP
 * here to answer 403 with, so a refusal is an HTTP/2 GOAWAY with
 * TUNNEL_H2_REFUSED (or TUNNEL_H2_UNAVAILABLE) and the reason as its debug
 * data, from a session made for that alone, then the connection closes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "store/store_async.h"

struct cd_peer {
	struct server *srv;
	struct conn *c; /* while its certificate is looked up; NULL once gone */
	char fp[65];
	char *name;
	int rc;
	/* A refusal's session and transport. */
	struct tunnel_transport tr;
	struct tunnel_h2 *t;
};

static void cd_peer_free(struct cd_peer *p)
{
	if (p->t)
		tunnel_h2_free(p->t);
	free(p->name);
	free(p);
}

/* ---- the refusal: GOAWAY with a reason, then close ---- */

static int cd_refuse_send(void *io, const uint8_t *data, size_t len)
{
	struct cd_peer *p = io;

	return tunnel_transport_send(&p->tr, data, len);
}

static void cd_refuse_bytes(void *owner, const uint8_t *data, size_t len)
{
	(void)owner; /* the agent's preface and SETTINGS: nothing to answer */
	(void)data;
	(void)len;
}

static void cd_refuse_nop(void *owner)
{
	(void)owner;
}

static void cd_refuse_junk(void *owner, const char *why)
{
	(void)owner;
	(void)why;
}

static void cd_refuse_closed(void *owner, int code)
{
	(void)code;
	cd_peer_free(owner);
}

static const struct tunnel_transport_callbacks cd_refuse_cbs = {
	.on_bytes = cd_refuse_bytes,
	.on_junk = cd_refuse_junk,
	.on_drain = cd_refuse_nop,
	.on_close = cd_refuse_closed,
};

static const struct tunnel_h2_callbacks cd_refuse_h2_cbs = {0};

static void cd_refuse(struct cd_peer *p, uint32_t code, const char *why)
{
	struct tunnel_h2_io io = {cd_refuse_send, NULL, NULL, p};
	struct conn *c = p->c;

	LOG_INFO("connector: refused a direct tunnel from %s: %s", conn_peer_addr(c), why);
	p->c = NULL;
	tunnel_transport_direct(&p->tr, c, &cd_refuse_cbs, p);
	/* Without io.kick every session call flushes at once. */
	p->t = tunnel_h2_new(1, &p->srv->tunnel_cfg, &io, &cd_refuse_h2_cbs, p);
	if (p->t != NULL)
		tunnel_h2_goaway_error(p->t, code, why);
	tunnel_transport_close(&p->tr, WS_CLOSE_POLICY, why);
}

/* ---- waiting for the store ---- */

static void cd_wait_on_end(struct conn *c, int err)
{
	(void)err;
	conn_close(c);
}

static void cd_wait_on_close(struct conn *c)
{
	struct cd_peer *p = conn_data(c);

	p->c = NULL; /* the lookup's done callback frees p */
}

static const struct conn_callbacks cd_wait_cbs = {
	.on_end = cd_wait_on_end,
	.on_close = cd_wait_on_close,
};

static void cd_identify_work(struct store *s, void *arg)
{
	struct cd_peer *p = arg;

	p->rc = store_cluster_name_by_fingerprint(s, p->fp, &p->name);
}

static void cd_identify_done(void *arg)
{
	struct cd_peer *p = arg;
	struct conn *c = p->c;

	if (c == NULL) {
		cd_peer_free(p);
		return;
	}
	if (p->rc == -ENOENT) {
		cd_refuse(p, TUNNEL_H2_REFUSED, "this client certificate is not enrolled");
		return;
	}
	if (p->rc < 0) {
		cd_refuse(p, TUNNEL_H2_UNAVAILABLE, "the manager's store is unavailable");
		return;
	}
	LOG_DEBUG("connector: direct tunnel of %s from %s", p->name, conn_peer_addr(c));
	tunnels_attach_direct(p->srv->tunnels, p->name, c);
	cd_peer_free(p);
}

/* tls_alpn_handover_fn of the connector's TLS context (arg: the server). */
void connector_direct_accept(struct conn *c, void *arg)
{
	struct cd_peer *p = calloc(1, sizeof(*p));
	const char *fp = conn_peer_fingerprint(c);

	if (p == NULL) {
		conn_close(c);
		return;
	}
	p->srv = arg;
	p->c = c;
	conn_set_data(c, p);
	conn_set_callbacks(c, &cd_wait_cbs);
	/* Nothing is read until the tunnel's session is there to take it. */
	conn_read_stop(c);
	if (fp == NULL) {
		cd_refuse(p, TUNNEL_H2_REFUSED, "a client certificate of an enrolled cluster is required");
		return;
	}
	memcpy(p->fp, fp, sizeof(p->fp));
	if (store_run(p->srv->loop, p->srv->store, cd_identify_work, cd_identify_done, p) < 0)
		cd_refuse(p, TUNNEL_H2_UNAVAILABLE, "the server is busy, try again later");
}
