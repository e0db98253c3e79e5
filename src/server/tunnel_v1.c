/*
 * tunnel_v1.c - tunnel protocol v1 (MicroCloud's JSON frames), server side:
 * the WebSocket and its registry entry. Requests travel through
 * upstream_v1.c; frames are made and read by tunnel_v1_frame.c.
 *
 * Ownership: one struct tunnel_v1 per live v1 WebSocket, hung on its
 * registry entry (e->impl). When the WebSocket closes, every request of it
 * fails at once (upstream_v1__fail_all: 502), the entry leaves the registry
 * and the tunnel is freed; no request ever points at a freed tunnel.
 * Everything runs on the loop thread.
 *
 * Peer input policy (docs/protocol-v1.md): a frame that is not a JSON
 * object, has no uuid, matches no request, or is malformed as a response is
 * dropped with a (rate limited) log line; a malformed response to a known
 * request answers that request 502. The tunnel stays up. A frame over
 * TUNNEL_V1_MAX_FRAME is refused by the WebSocket layer, which closes the
 * tunnel (1009); pending requests then get 502 at once.
 */
#include "server/tunnel_v1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "net/ws.h"
#include "server/server.h"
#include "server/session_cookies.h"
#include "server/tunnels.h"
#include "server/upstream.h"

#define V1_LOG_FIRST 10 /* bad frames logged per tunnel, then one in V1_LOG_EVERY */
#define V1_LOG_EVERY 1000

void tunnel_v1_bad_frame(struct tunnel_v1 *tv, const char *what, const char *detail)
{
	tv->bad_frames++;
	if (tv->bad_frames <= V1_LOG_FIRST || tv->bad_frames % V1_LOG_EVERY == 0)
		LOG_WARN("tunnel v1 of %s: dropped %s%s%s (%llu dropped on this tunnel)",
			 tv->cluster, what, detail ? ": " : "", detail ? detail : "",
			 (unsigned long long)tv->bad_frames);
}

/*
 * Text and binary messages are both read as JSON (Go's ReadJSON, which the
 * reference uses, accepts either). wslay bounds a message by
 * TUNNEL_V1_MAX_FRAME before we see it.
 */
static void v1_ws_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	struct tunnel_v1 *tv = ws_data(w);
	char why[sizeof(((json_error_t *)0)->text)];
	json_error_t err;
	json_t *root;

	(void)opcode;
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL || !json_is_object(root)) {
		/* jansson quotes the peer's bytes near the error: keep the log line clean. */
		if (root == NULL)
			tunnel_v1_frame_printable(err.text, strnlen(err.text, sizeof(err.text)),
						  why, sizeof(why));
		tunnel_v1_bad_frame(tv, "a frame that is not a JSON object", root ? NULL : why);
		json_decref(root);
		return;
	}
	upstream_v1__on_frame(tv, root);
	json_decref(root);
}

static void v1_ws_on_drain(struct ws *w)
{
	(void)w; /* queued frames are bounded by TUNNEL_V1_MAX_QUEUED at send time */
}

/* The tunnel is gone: every request of it gets 502 now, then the entry and jar go. */
static void v1_ws_on_close(struct ws *w, int code)
{
	struct tunnel_v1 *tv = ws_data(w);
	struct tunnel_entry *e = tv->e;
	char msg[160];

	tv->ws = NULL;
	LOG_INFO("tunnel v1 of %s closed (%d); failing %zu pending requests", tv->cluster, code,
		 tv->buffering.n + tv->inflight.n);
	snprintf(msg, sizeof(msg), "the tunnel to cluster %s closed before a response",
		 tv->cluster);
	upstream_v1__fail_all(tv, msg);
	tv->e = NULL;
	if (e) {
		e->tr.h = NULL;
		e->closing = 1;
		e->impl = NULL;
		tunnels_unregister(e);
	}
	session_cookies_free(tv->jar); /* the cookies die with the tunnel */
	free(tv);
}

static const struct ws_callbacks v1_ws_cbs = {
    .on_message = v1_ws_on_message,
    .on_drain = v1_ws_on_drain,
    .on_close = v1_ws_on_close,
};

void tunnel_v1_accept(struct server *srv, const char *cluster, struct http_request *req)
{
	struct tunnel_v1 *tv = calloc(1, sizeof(*tv));
	struct tunnel_entry *e = tunnels_entry_new(srv->tunnels, cluster, 1);
	struct session_cookies *jar = session_cookies_new(cluster);
	struct ws *ws;

	if (tv == NULL || e == NULL || jar == NULL) {
		free(tv);
		free(e);
		session_cookies_free(jar);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	tv->srv = srv;
	tv->jar = jar;
	TAILQ_INIT(&tv->buffering.q);
	TAILQ_INIT(&tv->inflight.q);
	snprintf(tv->cluster, sizeof(tv->cluster), "%s", cluster);
	ws = ws_server_accept(req, NULL, TUNNEL_V1_MAX_FRAME, &v1_ws_cbs, tv);
	if (ws == NULL) {
		free(tv);
		free(e);
		session_cookies_free(jar);
		return;
	}
	tv->ws = ws;
	tv->e = e;
	tunnel_transport_ws(&e->tr, ws, NULL, NULL); /* for the registry's close and abort */
	e->impl = tv;
	e->ops = &upstream_v1_ops;
	tunnels_register(srv->tunnels, e);
}
