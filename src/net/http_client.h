/*
 * http_client.h - outbound HTTP/1.1 over TCP, TLS (CA-verified or
 * fingerprint-pinned, optional client certificate) or a unix socket: one
 * request per connection, or, with an http_pool, keep-alive connections
 * reused by later requests to the same upstream. Both bodies stream with backpressure; http_fetch buffers a
 * bounded response for the common JSON case, and http_fetch_sync runs that
 * on a private loop for command-line tools.
 *
 * Lifetime: the client frees itself after on_done returns. After
 * http_client_cancel no callback runs at all.
 */
#ifndef LXCM_HTTP_CLIENT_H
#define LXCM_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "net/conn.h"
#include "net/http.h"

#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define HTTP_CLIENT_DEFAULT_RESPONSE_TIMEOUT_MS 60000
#define HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS 60000
#define HTTP_CLIENT_MAX_HEADER_BYTES (64 * 1024)

#define HTTP_CLIENT_ETIMEDOUT (-ETIMEDOUT)

struct http_client;
struct http_pool;

struct http_client_opts {
	const char *unix_path; /* when set, connect here instead of host:port */
	const char *host;
	int port;
	SSL_CTX *tls;		 /* NULL for plaintext */
	const char *pin;	 /* required peer fingerprint, or NULL */
	const char *host_header; /* default: host[:port], or "lxd" over a unix socket */
	uint64_t connect_timeout_ms;  /* connect + TLS handshake */
	uint64_t response_timeout_ms; /* request sent to response head */
	uint64_t idle_timeout_ms;     /* silence while reading the body */
	struct http_pool *pool;	      /* reuse keep-alive connections, or NULL */
};

struct http_response_head {
	int status;
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	int64_t content_length; /* -1 unknown */
	const char *peer_fp;	/* the server certificate's fingerprint, or NULL */
};

struct http_client_callbacks {
	void (*on_head)(struct http_client *cl, const struct http_response_head *head);
	void (*on_body)(struct http_client *cl, const char *data, size_t len);
	/* err 0: the response is complete. Otherwise a negative code. */
	void (*on_done)(struct http_client *cl, int err);
	/* The request body may flow again after http_client_write returned 0. */
	void (*on_drain)(struct http_client *cl);
	/*
	 * A 101 response: the connection now belongs to the callee, who must
	 * set its callbacks. on_done does not run. Without this callback a 101
	 * is an error.
	 */
	void (*on_upgrade)(struct http_client *cl, const struct http_response_head *head,
			   struct conn *c, const char *extra, size_t extra_len);
};

/*
 * Starts a request. body_len: 0 for none, > 0 for that many bytes written
 * with http_client_write, -1 for a chunked body; then http_client_end.
 * Returns NULL on an immediate failure (no callback will run).
 */
struct http_client *http_client_request(uv_loop_t *loop, const struct http_client_opts *opts,
					const char *method, const char *target,
					const struct http_header *hdrs, size_t n, int64_t body_len,
					const struct http_client_callbacks *cbs, void *data);
int http_client_write(struct http_client *cl, const void *data, size_t len);
int http_client_end(struct http_client *cl);
void http_client_pause(struct http_client *cl);
void http_client_resume(struct http_client *cl);
void http_client_cancel(struct http_client *cl);
void *http_client_data(const struct http_client *cl);

/*
 * A keep-alive pool: up to max_idle idle connections, each kept at most
 * idle_ms. A request with opts->pool takes the most recently used idle
 * connection to the same upstream (unix path, or host, port, TLS context
 * and pin) if there is one. Its connection goes back to the pool only when
 * everything went by the book: the response was read to its end, the
 * server allows keep-alive, the request body was complete and sent, no
 * error, no upgrade, and the caller asked for no Connection or Upgrade
 * handling. Anything else closes it.
 *
 * A reused connection may have been closed by the server meanwhile. If it
 * fails before any byte of the response arrived, a request without a body
 * and with an idempotent method (GET, HEAD, OPTIONS, PUT, DELETE) is sent
 * once more on a fresh connection; others get the error.
 *
 * http_pool_close closes the idle connections; requests still running
 * finish without pooling, and the pool frees itself after the last of them
 * (and its timer handle) is gone, so the loop can run dry.
 */
#define HTTP_POOL_DEFAULT_MAX_IDLE 16
#define HTTP_POOL_DEFAULT_IDLE_MS 30000

struct http_pool_stats {
	size_t idle;	       /* connections waiting now */
	unsigned long reused;  /* requests sent on a pooled connection */
	unsigned long retried; /* of those, sent again on a fresh one */
};

struct http_pool *http_pool_new(uv_loop_t *loop, size_t max_idle, uint64_t idle_ms);
void http_pool_close(struct http_pool *p);
void http_pool_stats(const struct http_pool *p, struct http_pool_stats *out);

/* A bounded, buffered request: the usual JSON round trip. */
struct http_fetch_result {
	int err;    /* 0 or a negative code (connect, TLS, pin, timeout, -E2BIG) */
	int status; /* HTTP status when err == 0 */
	char *body; /* NUL-terminated, malloc'd */
	size_t body_len;
	char *content_type;
	char *retry_after;
	char peer_fp[65]; /* empty when none */
};

/*
 * res->err is 0 or a negative code (connection, TLS, CONN_EPIN, timeout,
 * -E2BIG past max_response); res->status and res->body are set when err is
 * 0. res and its buffers are valid during cb only (freed afterwards; a
 * callback may take a buffer by setting its pointer to NULL).
 */
typedef void (*http_fetch_cb)(struct http_fetch_result *res, void *arg);

/*
 * A buffered request that can be abandoned: body (body_len bytes, copied)
 * may be NULL. Returns the fetch, or NULL on an immediate failure, in
 * which case cb never runs. The fetch frees itself right after cb
 * returns; the caller drops its pointer there.
 */
struct http_fetch *http_fetch_start(uv_loop_t *loop, const struct http_client_opts *opts,
				    const char *method, const char *target,
				    const struct http_header *hdrs, size_t n, const void *body,
				    size_t body_len, size_t max_response, http_fetch_cb cb,
				    void *arg);
/*
 * Abandons the request: no callback runs. NULL is fine; not from inside
 * the fetch's own callback.
 */
void http_fetch_cancel(struct http_fetch *f);
/* http_fetch_start for a caller that never cancels: 0, or -EIO (cb never runs). */
int http_fetch(uv_loop_t *loop, const struct http_client_opts *opts, const char *method,
	       const char *target, const struct http_header *hdrs, size_t n, const void *body,
	       size_t body_len, size_t max_response, http_fetch_cb cb, void *arg);
/* Runs http_fetch on a private loop; the caller frees res with http_fetch_result_clear. */
int http_fetch_sync(const struct http_client_opts *opts, const char *method, const char *target,
		    const struct http_header *hdrs, size_t n, const void *body, size_t body_len,
		    size_t max_response, struct http_fetch_result *res);
void http_fetch_result_clear(struct http_fetch_result *res);

#endif
