/*
 * forward.h - serving tunnel streams from the local LXD (forward.c) and
 * holding the tunnel to the manager open (tunnel_client.c).
 */
#ifndef LXCM_AGENT_FORWARD_H
#define LXCM_AGENT_FORWARD_H

#include "agent/agent.h"
#include "common/slice.h"
#include "net/tunnel_h2.h"

/* Serves one request stream (called from the tunnel's on_request). */
void forward_request(struct agent *ag, struct tunnel_h2_stream *s, const struct tunnel_h2_headers *h);
/*
 * 1 when the path of target (a request target: its query is not looked at)
 * passes the path rule of every hop (http_hdr_path_check: no dot segments,
 * encoded dots or slashes, empty segments...) and is under one of the
 * prefixes (at a segment boundary). With nprefixes == 0 the defaults, /1.0
 * and /ui, apply.
 */
int forward_path_allowed(struct slice target, const char *const *prefixes, size_t nprefixes);
/* Adds an --allow-path prefix; -EINVAL for a bad one, -E2BIG past AGENT_MAX_ALLOW. */
int forward_allow_add(struct agent *ag, const char *prefix);

#define TUNNEL_CLIENT_BACKOFF_BASE_MS 500
#define TUNNEL_CLIENT_BACKOFF_CAP_MS 30000
#define TUNNEL_CLIENT_HEALTHY_MS 60000 /* connected this long: backoff starts over */
#define TUNNEL_CLIENT_DEAD_AFTER_MS 45000
#define TUNNEL_CLIENT_TICK_MS 5000

/* Keeps the reverse tunnel up, reconnecting with full-jitter backoff. */
int tunnel_client_start(struct agent *ag);
void tunnel_client_stop(struct agent *ag);
/* "auto", "direct" or "websocket" to AGENT_TRANSPORT_*, or -EINVAL. */
int tunnel_client_transport_parse(const char *s);

#endif
