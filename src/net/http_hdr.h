/*
 * http_hdr.h - the header and path rules of every hop, once.
 *
 * A request crosses up to four hops that each copy headers from one
 * message to the next: `lxcm proxy` (local client -> manager), the
 * management proxy and tunnel v1 (user -> cluster), and the agent (tunnel
 * stream -> LXD). Each asks this module which headers to leave out and
 * whether a path may go on; none has a list or a parser of its own.
 *
 * Headers. One table gives each known name its flags (below); a hop drops
 * a header when the name's flags meet the hop's mask, or when a Connection
 * header of the same message names it (RFC 9110 section 7.6.1). The masks
 * of the hops are the HTTP_HDR_DROP_* values.
 *
 * Paths. http_hdr_path_check is the one request-path rule (see there).
 *
 * Also here: the one parser of comma-separated token lists (Connection,
 * Upgrade), of "Authorization: Bearer <token>", and the one filter of the
 * manager's own cookies.
 *
 * Peer bytes are slices (STYLE.md rule 5); nothing here allocates.
 */
#ifndef LXCM_HTTP_HDR_H
#define LXCM_HTTP_HDR_H

#include <stddef.h>

#include "common/buf.h"
#include "common/slice.h"
#include "net/http.h"

/*
 * Hop-by-hop (RFC 9110 section 7.6.1): Connection, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, HTTP2-Settings, and every Proxy-*
 * name. They describe one connection and never cross any hop.
 */
#define HTTP_HDR_HOP 0x01u
/*
 * The framing of one message: Host, Content-Length, Expect. Every hop
 * writes its own (from :authority, its own body length; no hop passes a
 * 100-continue on).
 */
#define HTTP_HDR_FRAMING 0x02u
/*
 * The WebSocket handshake (Sec-WebSocket-Key, -Version, -Extensions,
 * -Accept): a hop that turns an HTTP/1.1 upgrade into an RFC 8441 stream
 * or back makes its own. Sec-WebSocket-Protocol is not one: it goes through.
 */
#define HTTP_HDR_WS 0x04u
/*
 * Never sent to a cluster: the caller's credential for the manager
 * (Authorization) and what a client claims about where it came from
 * (Forwarded, X-Forwarded-For/-Proto/-Host; the manager sets them itself),
 * and X-Request-Id (the manager's own, the id of the request's audit row)
 * and who the person is (X-Lxcm-User, set by the manager for sessions).
 * The manager's own lxcm_* cookies are removed cookie by cookie by the
 * proxies, not by name here.
 */
#define HTTP_HDR_NO_CLUSTER 0x08u
/*
 * Never in a response to a user: the request-only claims above
 * (Forwarded, X-Forwarded-*) mean nothing in a response and are not passed
 * on, nor a cluster's X-Request-Id (the manager answers with its own).
 * (A cluster's `session` cookie of tunnel v1 is kept server-side by
 * tunnel_v1.c: a cookie name, not a header name.)
 */
#define HTTP_HDR_NO_USER 0x10u

/* The user's request on its way to a cluster (management proxy, tunnel v1). */
#define HTTP_HDR_DROP_TO_CLUSTER                                                                   \
	(HTTP_HDR_HOP | HTTP_HDR_FRAMING | HTTP_HDR_WS | HTTP_HDR_NO_CLUSTER)
/* A cluster's response on its way to the user (management proxy, tunnel v1). */
#define HTTP_HDR_DROP_TO_USER (HTTP_HDR_HOP | HTTP_HDR_FRAMING | HTTP_HDR_WS | HTTP_HDR_NO_USER)
/* The agent, both ways between a tunnel stream and LXD. */
#define HTTP_HDR_DROP_AGENT (HTTP_HDR_HOP | HTTP_HDR_FRAMING | HTTP_HDR_WS)
/*
 * `lxcm proxy`, local client -> manager and back. An upgrade goes through
 * it as HTTP/1.1 end to end, so the WebSocket handshake crosses it.
 */
#define HTTP_HDR_DROP_CLI_REQUEST (HTTP_HDR_HOP | HTTP_HDR_FRAMING | HTTP_HDR_NO_CLUSTER)
#define HTTP_HDR_DROP_CLI_RESPONSE (HTTP_HDR_HOP | HTTP_HDR_FRAMING | HTTP_HDR_NO_USER)

/* The longest Authorization header a bearer token is read from. */
#define HTTP_HDR_AUTH_MAX 512

/* The flags of a header name (case-insensitive); 0 for names not in the table. */
unsigned http_hdr_flags(struct slice name);

/*
 * The next token of a comma-separated list such as a Connection or Upgrade
 * value: *list is advanced past it, *tok gets it. Tokens are separated by
 * commas, spaces and tabs, and empty items are skipped: "a,, b" holds a and
 * b. A malformed "a b" yields both words (for the hop-by-hop rule, naming
 * more is the safe side). Returns 1 with a token, 0 at the end.
 */
int http_hdr_list_next(struct slice *list, struct slice *tok);

/* Does the list hold token (case-insensitive)? 1 or 0. */
int http_hdr_list_has(struct slice list, struct slice token);

/* Does any header called name among hdrs hold token in its list? 1 or 0. */
int http_hdr_has_token(const struct http_header *hdrs, size_t n, struct slice name,
		       struct slice token);

/*
 * Whether a hop leaves out the header called name from a message whose
 * headers are hdrs: its flags meet mask, or a Connection header of hdrs
 * names it. Returns 1 to drop, 0 to copy.
 */
int http_hdr_drop(const struct http_header *hdrs, size_t n, struct slice name, unsigned mask);

/* The value of the first header called name (case-insensitive), or SLICE_NULL. */
struct slice http_hdr_get(const struct http_header *hdrs, size_t n, struct slice name);

/*
 * Appends a header to hdrs, which holds *n of cap: 0, or -E2BIG when it is
 * full. The slices are copied, not the bytes they point at.
 */
int http_hdr_append(struct http_header *hdrs, size_t *n, size_t cap, struct slice name,
		    struct slice value);

/* The most cookie bytes (all Cookie headers of a request) a proxy passes to a cluster. */
#define HTTP_HDR_MAX_COOKIE 16384

/*
 * Appends the cookies of one Cookie header value to out ("; " between
 * them, also after what out already holds), leaving out the manager's own:
 * those named lxcm_*, wherever they sit in the value, are credentials for
 * this manager and never go to a cluster. Returns 0, or -E2BIG past out's
 * cap (-ENOMEM when out cannot grow).
 */
int http_hdr_cookies_for_cluster(struct slice value, struct buf *out);

/*
 * The token of an "Authorization: Bearer <token>" value (scheme
 * case-insensitive, one space), or SLICE_NULL when the value is absent,
 * another scheme, has an empty token or is longer than HTTP_HDR_AUTH_MAX.
 */
struct slice http_hdr_bearer(struct slice authorization);

/*
 * The request-path rule of every hop. path is what comes before '?' (the
 * query is never looked at: LXD carries file paths there). Accepted only
 * when all of these hold:
 *   - it starts with '/';
 *   - every byte is visible ASCII (0x21..0x7e): no space, control byte,
 *     NUL or 8-bit byte (clients percent-encode those);
 *   - no backslash;
 *   - every '%' starts two hex digits, and none decodes to '.', '/', '\'
 *     or NUL: %2e, %2f, %5c and %00 are refused in any case wherever they
 *     are (no client encodes the unreserved '.', RFC 3986 section 2.3, and
 *     an encoded separator lets a server that decodes before splitting see
 *     another path than the one checked here);
 *   - no empty segment ("//"); a final '/' is fine ("/1.0/", "/");
 *   - no "." or ".." segment.
 * Returns 0, or -EINVAL with *why (if why is not NULL) set to a short
 * static reason for logs and error messages.
 */
int http_hdr_path_check(struct slice path, const char **why);

/*
 * http_hdr_path_check of "/" + tail, for a caller that holds a path
 * without its first slash (the {*} capture of a route such as
 * /1.0/remote-cluster/{name}/tunnel/{*}). Returns 0 or -EINVAL as above.
 */
int http_hdr_path_tail_check(struct slice tail, const char **why);

/* The path part of a request target: everything before the first '?'. */
struct slice http_hdr_target_path(struct slice target);

#endif
