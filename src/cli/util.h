/*
 * util.h - pure helpers of the lxcm CLI: argument parsing (durations,
 * expiries, thresholds, server URLs, fingerprints), URL encoding, and
 * formatting for people (sizes, relative times, terminal-safe text).
 *
 * No I/O here, so tests/unit/test_cli_util.c can include util.c and test
 * every function directly. Functions return 0 or a negative errno code.
 */
#ifndef LXCM_CLI_UTIL_H
#define LXCM_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/duration.h"

/* Longest duration accepted: about 100 years (common/duration.h). */
#define UTIL_DURATION_MAX DURATION_MAX_S

/*
 * Parses a positive duration made of one or more <digits><unit> parts, unit
 * s, m, h, d or w ("90s", "30m", "2h", "7d", "1h30m"). Stores seconds.
 * -EINVAL for anything else, zero, or more than UTIL_DURATION_MAX.
 */
int util_parse_duration(const char *s, int64_t *secs);

/*
 * Turns a user's --expiry into RFC 3339 (UTC, "Z"): either an RFC 3339 time
 * (normalised) or a duration from now. out must hold TIME_RFC3339_LEN bytes.
 * -EINVAL if it is neither, or names a time not after now.
 */
int util_parse_expiry(const char *s, int64_t now, char *out, size_t len);

/* A whole number in 0..100 (a threshold in percent). */
int util_parse_percent(const char *s, int *out);

/*
 * A management server address: "https://HOST[:PORT][/]" or "HOST[:PORT]";
 * HOST is a DNS name, an IPv4 address or an IPv6 address in brackets; PORT
 * defaults to 8443 (lxcm's, like LXD's). -EPROTONOSUPPORT for another
 * scheme, -EINVAL for anything malformed.
 */
struct util_server {
	char host[256]; /* lower case, no brackets: for connecting */
	int port;
	char key[272]; /* "host:port" or "[v6]:port": known_servers key, Host header */
};
int util_parse_server(const char *url, struct util_server *out);

/*
 * Normalises a SHA-256 fingerprint as people paste it: 64 hex digits in
 * either case, optionally separated by ':' (openssl x509 -fingerprint).
 * Writes 64 lowercase digits and a NUL to out.
 */
int util_fingerprint_normalize(const char *in, char out[65]);

/*
 * Percent-encodes s as one URL path segment: every byte but the RFC 3986
 * unreserved ones (A-Z a-z 0-9 - . _ ~) becomes %XX. -EINVAL for "", "." and
 * ".." (dot segments that a proxy may collapse), -ENOSPC if out is too short.
 */
int util_urlencode(const char *s, char *out, size_t len);

/*
 * Formats a byte count with binary units and one decimal: "0B", "512B",
 * "1.5KiB", "7.8GiB". Never fails; out should hold 16 bytes.
 */
void util_human_bytes(uint64_t n, char *out, size_t len);

/*
 * Says how long ago t was, relative to now: "just now", "12s ago", "5m ago",
 * "3h ago", "2d ago", or for future times "in 23h". t <= 0 (unset, or Go's
 * zero time) is "never". out should hold 24 bytes.
 */
void util_reltime(int64_t t, int64_t now, char *out, size_t len);

/*
 * Copies s into out for a terminal: valid UTF-8 is kept, except control
 * characters (C0, DEL and C1, which includes the 8-bit CSI); those and
 * invalid bytes become '?'. Returns the number of characters written (an
 * approximation of the display width). Cut short (on a character boundary)
 * if out is too small; out is always NUL-terminated when len > 0.
 */
size_t util_sanitize(const char *s, char *out, size_t len);

/* Number of characters util_sanitize would write for s (no limit). */
size_t util_display_width(const char *s);

/*
 * Lenient readers of server JSON: NULL / -1 when the key is absent or of
 * another type. util_json_u64 takes a non-negative integer or real, and also
 * a string of digits (cpu loads and some counters arrive as strings).
 */
const char *util_json_str(json_t *obj, const char *key);
int util_json_u64(json_t *obj, const char *key, uint64_t *out);

/*
 * Reads an RFC 3339 field as Unix seconds; 0 when absent, null, empty or
 * unparsable, which util_reltime shows as "never".
 */
int64_t util_json_time(json_t *obj, const char *key);

#endif
