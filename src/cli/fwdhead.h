/*
 * fwdhead.h - pure helpers of `lxcm proxy`: which headers cross the proxy,
 * the manager-side request target, the listen address (TCP or unix), and
 * the checks that
 * keep web pages in the local browser from using the proxy.
 *
 * No I/O, no allocation: tests/unit/test_cli_fwdhead.c includes fwdhead.c.
 * Peer bytes are slices (STYLE.md rule 5). Functions return 0 or a negative
 * errno code unless noted.
 */
#ifndef LXCM_CLI_FWDHEAD_H
#define LXCM_CLI_FWDHEAD_H

#include <stddef.h>

#include "common/slice.h"
#include "net/http.h"

/* Longest request target sent to the manager (prefix, path and query). */
#define FWDHEAD_MAX_TARGET 8192

/*
 * A hop-by-hop header (HTTP_HDR_HOP of the one table, net/http_hdr.h:
 * Connection, Keep-Alive, Transfer-Encoding, Upgrade, TE, Trailer,
 * Proxy-*...): it describes one connection, so it never crosses the proxy.
 * Returns 1 or 0.
 */
int fwdhead_is_hop_by_hop(struct slice name);

/*
 * Does one of the Connection headers among hdrs list name as an option
 * ("Connection: close, X-Foo" makes X-Foo hop-by-hop too)? Returns 1 or 0.
 */
int fwdhead_connection_lists(const struct http_header *hdrs, size_t n, struct slice name);

/*
 * Picks the local request's headers that go to the manager, in order, into
 * out: not those HTTP_HDR_DROP_CLI_REQUEST names (net/http_hdr.h: the
 * hop-by-hop ones, those named by Connection, and those the proxy sets
 * itself: Host, Authorization, Content-Length; Expect, because the client
 * library cannot take a 100 Continue; Forwarded and X-Forwarded-*). Returns
 * how many were copied (slices into in), or -E2BIG if more than max would
 * be needed.
 */
int fwdhead_request(const struct http_header *in, size_t n, struct http_header *out, size_t max);

/*
 * Picks the manager's response headers that go to the local client: not
 * those HTTP_HDR_DROP_CLI_RESPONSE names (the hop-by-hop ones, those named
 * by Connection, and the framing: the local server writes its own). For a
 * 101, Upgrade is kept and "Connection: Upgrade" appended. Returns the
 * count or -E2BIG.
 */
int fwdhead_response(const struct http_header *in, size_t n, int status, struct http_header *out,
		     size_t max);

/*
 * Builds prefix + path + ("?" query when has_query) into out. path must
 * pass the path rule of every hop (http_hdr_path_check: no "." or ".."
 * segment, also none hidden by percent-encoding, no encoded slash, no
 * empty segment...): resolved by any server on the way, such a path would
 * leave the tunnel prefix and reach the manager's own API with the user's
 * token. The query must be visible ASCII. -EINVAL for such a path, -E2BIG
 * when out (at most FWDHEAD_MAX_TARGET) is too small.
 */
int fwdhead_target(const char *prefix, struct slice path, struct slice query, int has_query,
		   char *out, size_t len);

/*
 * A Location header of the manager that points into the tunnel prefix
 * ("/1.0/remote-cluster/NAME/tunnel/1.0/operations/x", absolute or not) is
 * given back as the cluster-side path ("/1.0/operations/x"), since that is
 * what the local client must ask us for. server_key is "host:port". Any
 * other value is returned as it is.
 */
struct slice fwdhead_location(struct slice value, const char *server_key, const char *prefix);

/*
 * Parses --listen: "PORT", "HOST:PORT" or "[V6]:PORT"; HOST is a loopback
 * IP literal (127.0.0.0/8 or ::1) or "localhost" (127.0.0.1), PORT 0..65535
 * (0: any free port). host gets the IP as text. -EINVAL when malformed,
 * -EPERM when HOST is not a loopback address: the proxy carries the user's
 * credentials and must not be reachable from the network.
 */
int fwdhead_parse_listen(const char *s, char host[64], int *port);

/* Longest unix socket path for --listen unix:PATH (sun_path holds 108 bytes with its NUL). */
#define FWDHEAD_MAX_UNIX_PATH 107

/*
 * Is --listen a unix socket, "unix:PATH"? 1 with *path pointing at PATH
 * inside s, 0 when s is a TCP address (fwdhead_parse_listen), -EINVAL for
 * an empty PATH, -ENAMETOOLONG beyond FWDHEAD_MAX_UNIX_PATH bytes.
 */
int fwdhead_listen_unix(const char *s, const char **path);

/*
 * DNS rebinding defence: a browser that fetched evil.example, now resolving
 * to 127.0.0.1, sends "Host: evil.example:PORT". Accepts only the listen
 * address itself or "localhost", with this port (or without one when the
 * port is 80), case-insensitively. Returns 1 when acceptable.
 */
int fwdhead_host_ok(struct slice host, const char *listen_host, int port);

/*
 * Cross-site request defence: browsers send Origin on cross-origin POST,
 * PUT, DELETE and on every WebSocket. Accepts only this proxy's own origin
 * ("http://" + an acceptable host). Returns 1 when acceptable.
 */
int fwdhead_origin_ok(struct slice origin, const char *listen_host, int port);

/* Does an Upgrade header value name the websocket protocol? 1 or 0. */
int fwdhead_is_websocket(struct slice upgrade);

#endif
