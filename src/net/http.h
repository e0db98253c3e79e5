/*
 * http.h - HTTP/1.1 server on llhttp, over conn (plain or TLS).
 *
 * One request at a time per connection (pipelined requests wait in the
 * socket). A route either gets its request body buffered up to
 * limits.max_json_body (default), or, with HTTP_ROUTE_STREAM_BODY, is called
 * as soon as the headers are in and receives the body through on_body with
 * pause/resume: the body-stream seam of DESIGN.md.
 *
 * Request lifetime: the server owns struct http_request. Once a handler has
 * been called it must finish the request exactly once, with http_respond*,
 * http_response_end or http_response_abort, even if the client went away
 * meanwhile (then req->aborted is set, on_abort was called, and finishing
 * just frees the request). Nothing may touch req after finishing it.
 */
#ifndef LXCM_HTTP_H
#define LXCM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <llhttp.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/buf.h"
#include "common/slice.h"
#include "net/netaddr.h"
#include "net/conn.h"

#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_PARAMS 8

struct http_header {
	struct slice name;
	struct slice value;
};

/* Caps and timeouts of one listener; zero fields take the defaults. */
struct http_limits {
	size_t max_header_bytes;     /* request line + headers, default 64 KiB -> 431 */
	size_t max_headers;	     /* header count, default 100 -> 431 */
	size_t max_json_body;	     /* buffered bodies, default 1 MiB -> 413 */
	uint64_t header_timeout_ms;  /* first byte to end of headers, default 10 s */
	uint64_t idle_timeout_ms;    /* keep-alive idle, default 60 s */
	uint64_t body_timeout_ms;    /* no body bytes for this long, default 60 s */
	size_t max_connections;	     /* default 10000; past it new sockets are closed */
	size_t max_handshakes_per_ip; /* TLS handshakes in progress per source address, default 64 */
	/*
	 * The lingering close after an early answer (see http_server.c,
	 * hc_linger): the client's bytes are read and dropped for at most
	 * linger_ms in all, linger_idle_ms without a byte, and
	 * linger_max_bytes, then the connection is closed.
	 */
	uint64_t linger_ms;	 /* default 30 s */
	uint64_t linger_idle_ms; /* default 5 s */
	size_t linger_max_bytes; /* default 16 MiB */
};

#define HTTP_DEFAULT_MAX_HEADER_BYTES (64 * 1024)
#define HTTP_DEFAULT_MAX_HEADERS 100
#define HTTP_DEFAULT_MAX_JSON_BODY (1024 * 1024)
#define HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000
#define HTTP_DEFAULT_IDLE_TIMEOUT_MS 60000
#define HTTP_DEFAULT_BODY_TIMEOUT_MS 60000
#define HTTP_DEFAULT_MAX_CONNECTIONS 10000
#define HTTP_DEFAULT_MAX_HANDSHAKES_PER_IP 64
#define HTTP_DEFAULT_LINGER_MS 30000
#define HTTP_DEFAULT_LINGER_IDLE_MS 5000
#define HTTP_DEFAULT_LINGER_MAX_BYTES (16 * 1024 * 1024)

struct http_request;
struct http_server;
struct http_conn;

typedef void (*http_handler_fn)(struct http_request *req);

#define HTTP_ROUTE_STREAM_BODY 0x1 /* call the handler after the headers */
#define HTTP_ROUTE_UPGRADE 0x2	   /* the handler may take the connection over */
/*
 * Bits 8 to 15 of a route's flags belong to the listener's pre_route hook
 * (the management listener keeps each route's access level there,
 * server/principal.h); the HTTP server never looks at them.
 */
#define HTTP_ROUTE_HOOK_SHIFT 8
#define HTTP_ROUTE_HOOK(v) (((unsigned)(v) & 0xffu) << HTTP_ROUTE_HOOK_SHIFT)
#define HTTP_ROUTE_HOOK_BITS(flags) (((unsigned)(flags) >> HTTP_ROUTE_HOOK_SHIFT) & 0xffu)

/* pre_route's answer when it decides later: see http_server_config.pre_route. */
#define HTTP_PRE_ROUTE_PENDING 1

/*
 * A route pattern is a path of segments: literal, "{name}" (one non-empty
 * segment) or a final "{*}" (the rest, possibly empty). method NULL matches
 * any method.
 */
struct http_route {
	const char *method;
	const char *pattern;
	http_handler_fn handler;
	unsigned flags;
	size_t max_body; /* buffered body cap for this route; 0: the listener's */
};

struct http_request {
	struct http_conn *hc; /* NULL once the connection is gone */
	struct http_server *server;
	void *server_data; /* http_server_config.data */
	const struct http_route *route;

	struct slice method;
	struct slice target; /* as sent: path and query */
	struct slice path;   /* without the query */
	struct slice query;  /* after '?', without it */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	struct slice params[HTTP_MAX_PARAMS]; /* route captures, in pattern order */
	size_t nparams;
	int64_t content_length; /* -1 when absent */
	int chunked;
	int upgrade;
	int keep_alive;

	const char *peer_fp;   /* client certificate fingerprint or NULL */
	/*
	 * The client's address: the socket's, or, when the socket's is a
	 * trusted proxy (http_server_config.trusted_proxies), the right-most
	 * X-Forwarded-For entry that is not a trusted proxy.
	 */
	const char *peer_addr;
	/*
	 * The connection's address: the socket's, or, when the socket's is in
	 * http_server_config.proxy_protocol_from, the one in its PROXY header.
	 */
	const char *socket_addr;
	char forwarded_addr[NET_ADDR_TEXT_MAX];
	uint64_t start_ms;

	/*
	 * Who is calling, set once by the pre_route hook (server/principal.h).
	 * Opaque here: a malloc'd block of principal_len bytes holding no
	 * pointer, which the HTTP server wipes and frees with the request.
	 */
	struct principal *principal;
	size_t principal_len;

	struct buf body; /* the buffered body (non-streaming routes) */

	/* For handlers. */
	void *data;
	void (*on_body)(struct http_request *req, const char *data, size_t len);
	void (*on_body_end)(struct http_request *req);
	void (*on_abort)(struct http_request *req);
	void (*on_drain)(struct http_request *req);

	int aborted;
	int status; /* the status sent, for logs */
	uint64_t bytes_in, bytes_out;

	/* Private to http_server.c. */
	struct buf head;
	unsigned st;
};

struct http_server_config {
	const char *host;
	int port;
	/*
	 * Listen on this unix socket instead of host and port (`lxcm proxy
	 * --listen unix:PATH`): created 0600, a stale socket there replaced,
	 * anything else refused, removed by http_server_stop (unix_listen.h).
	 * Must outlive the server. Peers' address is "unix".
	 */
	const char *unix_path;
	SSL_CTX *tls; /* NULL for plaintext (tests only) */
	const struct http_route *routes;
	size_t nroutes;
	struct http_limits limits;
	/* Sources whose X-Forwarded-For is believed (none: it never is). */
	const struct net_cidr *trusted_proxies;
	size_t ntrusted_proxies;
	/*
	 * Sources that must open every connection with a PROXY protocol header
	 * (L4 load balancers, proxy_proto.h), read before TLS. Its address then
	 * is the connection's: socket_addr, the handshake cap per address, and
	 * where trusted_proxies start from. A missing or bad header closes the
	 * connection; so does a header from any other source. None: no header
	 * is ever looked for.
	 */
	const struct net_cidr *proxy_protocol_from;
	size_t nproxy_protocol_from;
	void *data;
	const char *name; /* for logs: "management", "connector" */
	/*
	 * Runs after the headers are parsed and a route matched, before the
	 * handler. Return 0 to go on; or respond (finishing the request) and
	 * return -1; or return HTTP_PRE_ROUTE_PENDING to decide later (after
	 * a database lookup). A pending request reads nothing more from its
	 * connection and no handler runs; the hook owns it until it calls
	 * http_request_proceed (go on: the handler runs, the body is read) or
	 * answers it (a refusal, which closes the connection as a synchronous
	 * one does). The connection reads on meanwhile (into a bounded
	 * buffer): a client that is gone (a reset) sets req->aborted (and
	 * calls req->on_abort if the hook set one); the hook must still
	 * finish the request, and http_request_proceed then only frees it. A
	 * client that merely ended its side (half-close) is answered first,
	 * as if its end were read later.
	 */
	int (*pre_route)(struct http_request *req);
	/* Runs after each request is finished (for access logs and metrics). */
	void (*on_finished)(struct http_request *req);
};

int http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
		      struct http_server **out);
/* The bound port (useful with port 0); 0 for a unix socket. */
int http_server_port(const struct http_server *s);
size_t http_server_connection_count(const struct http_server *s);
/* Stops listening and closes every connection. Safe with NULL. */
void http_server_stop(struct http_server *s);
void http_limits_fill_defaults(struct http_limits *l);

/* Looks a header up by name, case-insensitively; SLICE_NULL when absent. */
struct slice http_request_header(const struct http_request *req, struct slice name);
/* Copies route parameter i as a C string into out; -E2BIG / -ENOENT. */
int http_request_param(const struct http_request *req, size_t i, char *out, size_t outlen);

/* Complete responses. Extra headers may be NULL. */
int http_respond(struct http_request *req, int status, const struct http_header *hdrs, size_t n,
		 const void *body, size_t len);
/* The LXD envelope: sync with metadata (reference stolen), or an error. */
int http_respond_json(struct http_request *req, int status, json_t *metadata);
int http_respond_error(struct http_request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Streaming responses. content_length -1 means chunked. http_response_write
 * returns 1 to go on, 0 when the output is above its high-water mark (wait
 * for req->on_drain), or a negative code when the client is gone.
 */
int http_response_start(struct http_request *req, int status, const struct http_header *hdrs,
			size_t n, int64_t content_length);
int http_response_write(struct http_request *req, const void *data, size_t len);
int http_response_end(struct http_request *req);
/* Gives up on the response and closes the connection. */
void http_response_abort(struct http_request *req);

/*
 * Goes on with a request whose pre_route hook answered
 * HTTP_PRE_ROUTE_PENDING: from the next loop turn, never inside the call,
 * the route's handler runs and parsing resumes. Frees an aborted request.
 */
void http_request_proceed(struct http_request *req);

/* Request body flow control for HTTP_ROUTE_STREAM_BODY routes. */
void http_request_pause(struct http_request *req);
void http_request_resume(struct http_request *req);

/*
 * Takes the connection away from the HTTP server after an upgrade request
 * (HTTP_ROUTE_UPGRADE routes): the caller owns the conn from now on and
 * must set its callbacks. Bytes the client sent after the request head are
 * copied to *extra (malloc'd, may be NULL). The request is finished.
 */
struct conn *http_request_take_conn(struct http_request *req, char **extra, size_t *extra_len);

const char *http_status_text(int status);

#endif
