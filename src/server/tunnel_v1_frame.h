/*
 * tunnel_v1_frame.h - the codec of tunnel v1 (MicroCloud's JSON frames,
 * MICROCLOUD-PROTOCOL.md "Tunnel v1"; docs/protocol-v1.md): a request as
 * one frame, one response frame as a status, headers and a body. No I/O,
 * no state: upstream_v1.c drives it, the fuzz and unit tests reach it.
 */
#ifndef LXCM_TUNNEL_V1_FRAME_H
#define LXCM_TUNNEL_V1_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/http.h"

#define TUNNEL_V1_FRAME_UUID_LEN 36
#define TUNNEL_V1_FRAME_MAX (16 * 1024 * 1024) /* one frame either way */
#define TUNNEL_V1_FRAME_MAX_HEADERS 100	       /* response headers passed to the user */

/* A request, as the frame carries it. */
struct tunnel_v1_frame_req {
	const char *uuid;
	struct slice method;
	struct slice path;
	const struct http_header *h; /* already filtered for the cluster */
	size_t n;
	struct slice session; /* "session=..." to add unless the user sent one, or SLICE_NULL */
	const void *body;
	size_t body_len;
};

/* What we answer the user with, built from one response frame. */
struct tunnel_v1_frame_resp {
	int status;
	struct http_header h[TUNNEL_V1_FRAME_MAX_HEADERS];
	size_t n;
	unsigned char *body; /* malloc'd, or NULL */
	size_t body_len;
	char *owned[TUNNEL_V1_FRAME_MAX_HEADERS]; /* Set-Cookie lines we built */
	size_t nowned;
	json_t *cookies;     /* the frame's cookie array, or NULL */
	const char *cluster; /* for log lines */
	/* The frame's `session` cookie (never passed on): the last one wins. */
	int session_seen;
	int session_expired;
	struct slice session_value; /* into the frame's JSON */
};

/* A random (version 4) UUID in its 36-character text form. 0 or -EIO. */
int tunnel_v1_frame_uuid(char out[TUNNEL_V1_FRAME_UUID_LEN + 1]);

/* 1 when a Cookie header value carries a cookie named `session`. */
int tunnel_v1_frame_has_session(struct slice cookie);

/*
 * The whole request frame, malloc'd, in *frame / *flen. Returns 0, or
 * -EINVAL (not UTF-8: 400), -E2BIG (over TUNNEL_V1_FRAME_MAX: 413),
 * -ENOMEM, with *why set.
 */
int tunnel_v1_frame_request(const struct tunnel_v1_frame_req *fr, char **frame, size_t *flen,
			    const char **why);

/*
 * Parses a response frame into rs (zeroed by the caller, cluster set).
 * Returns NULL, or why the frame is unusable. Clear rs either way.
 */
const char *tunnel_v1_frame_response(json_t *root, struct tunnel_v1_frame_resp *rs);
void tunnel_v1_frame_resp_clear(struct tunnel_v1_frame_resp *rs);

/* Copies peer bytes into out for a log line: printable ASCII only, cut short. */
void tunnel_v1_frame_printable(const char *s, size_t len, char *out, size_t outlen);

#endif
