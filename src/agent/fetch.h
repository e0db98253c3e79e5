/*
 * fetch.h - a buffered HTTP request that can be cancelled.
 *
 * net/http_fetch does the same but hands back no handle, so a request in
 * flight cannot be abandoned when the agent stops. This wrapper over
 * http_client_request keeps the handle: fetch_cancel ends a request at once
 * and no callback runs after it.
 *
 * Lifetime: the fetch frees itself right after its callback returns; the
 * caller drops its pointer in the callback. fetch_cancel must not be called
 * on a fetch from inside that fetch's own callback.
 */
#ifndef LXCM_AGENT_FETCH_H
#define LXCM_AGENT_FETCH_H

#include <stddef.h>

#include <uv.h>

#include "net/http.h"
#include "net/http_client.h"

struct fetch;

/*
 * res->err is 0 or a negative code (connection, TLS, CONN_EPIN, timeout,
 * -E2BIG past max_response); res->status and res->body are set when err is
 * 0 (and res->retry_after when the server sent one). res and its buffers are valid during the
 * callback only.
 */
typedef void (*fetch_cb)(struct fetch *f, struct http_fetch_result *res, void *arg);

/*
 * Starts a request; body (body_len bytes, copied) may be NULL. Returns the
 * fetch, or NULL on an immediate failure, in which case cb never runs.
 */
struct fetch *fetch_start(uv_loop_t *loop, const struct http_client_opts *opts, const char *method,
			  const char *target, const struct http_header *hdrs, size_t n,
			  const void *body, size_t body_len, size_t max_response, fetch_cb cb,
			  void *arg);
/* Abandons the request: no callback runs. NULL is fine. */
void fetch_cancel(struct fetch *f);

#endif
