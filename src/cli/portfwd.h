/*
 * portfwd.h - the engine of `lxcm proxy`: a plain HTTP/1.1 listener on a
 * loopback address or a unix socket whose every request is sent on to one
 * URL prefix of the management API (the tunnel of one cluster), with bodies streamed
 * both ways under backpressure and WebSocket upgrades turned into byte
 * pipes.
 *
 * One local request is one struct portfwd_x ("exchange") and one outbound
 * http_client connection to the manager (no connection reuse). Memory per
 * exchange is bounded by the conn high-water marks plus one read buffer,
 * whatever the body sizes:
 *   request body:  local on_body -> http_client_write; write returns 0 ->
 *                  http_request_pause until the client's on_drain.
 *   response body: client on_body -> http_response_write; returns 0 ->
 *                  http_client_pause until the local request's on_drain.
 *   upgrades:      both conns handed to a stream_pipe (net/stream_pipe.h).
 *
 * Everything runs on the caller's loop. portfwd_stop starts the shutdown;
 * once uv_run has returned, portfwd_free releases the rest.
 */
#ifndef LXCM_CLI_PORTFWD_H
#define LXCM_CLI_PORTFWD_H

#include <stddef.h>

#include <uv.h>

#include "net/http_client.h"

/*
 * Bytes of request body held back before the first write to the manager.
 * conn_write accepts (and keeps) any amount before the TLS handshake is
 * done without reporting the high-water mark, so the first write must by
 * itself exceed the high-water mark: then an on_drain is certain to follow,
 * whether the connection was already open or not, and the body waits for
 * it. Without this a fast local upload to a slow-to-connect manager would
 * be buffered whole.
 */
#define PORTFWD_PRIME_BYTES (CONN_HIGH_WATER_DEFAULT + 64 * 1024)
/* Manager silent after the request before its response head (long uploads fit). */
#define PORTFWD_RESPONSE_TIMEOUT_MS (60ull * 60 * 1000)
/* Manager silent while the response body flows (and we are not the ones pausing). */
#define PORTFWD_IDLE_TIMEOUT_MS (10ull * 60 * 1000)
/* Request target as shown in the log line, cut beyond this. */
#define PORTFWD_LOG_TARGET 160

struct portfwd;

struct portfwd_config {
	const char *listen_host; /* a loopback IP literal */
	int listen_port;	 /* 0: any free port */
	/*
	 * Or a unix socket path (listen_host and listen_port unused): made
	 * 0600, removed at portfwd_stop (net/unix_listen.h).
	 */
	const char *listen_unix;
	/*
	 * How to reach the manager (host, port, TLS context, pin, Host
	 * header); copied. The timeouts are set by portfwd.
	 */
	struct http_client_opts upstream;
	const char *server_url; /* "https://host:port", for messages */
	const char *server_key; /* "host:port", for Location rewriting */
	const char *prefix;	/* "/1.0/remote-cluster/<name>/tunnel", no trailing '/' */
	const char *auth;	/* "Bearer ...", or NULL; must outlive the portfwd */
	int quiet;		/* no per-request log lines on stderr */
};

/* Starts listening. 0, or a negative uv error code (the port is taken...). */
int portfwd_start(uv_loop_t *loop, const struct portfwd_config *cfg, struct portfwd **out);
/* The bound port. */
int portfwd_port(const struct portfwd *pf);
/* Stops listening, cancels requests in flight and closes every pipe. */
void portfwd_stop(struct portfwd *pf);
/* After portfwd_stop and the end of uv_run. NULL-safe. */
void portfwd_free(struct portfwd *pf);

#endif
