/*
 * oidc_config.h - what lxcm-server is told about the identity provider
 * (--oidc-* and --session-* flags) and the small pure rules around it:
 * which issuer URLs are acceptable, the role map, the redirect URI and
 * where a login may send the browser back to.
 *
 * Pure functions over their arguments, no loop, no I/O but the client
 * secret file (read once at start): unit-tested in test_oidc.c.
 */
#ifndef LXCM_OIDC_CONFIG_H
#define LXCM_OIDC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/slice.h"
#include "server/principal.h"

#define OIDC_DEFAULT_SCOPES "openid email profile offline_access"
#define OIDC_DEFAULT_GROUPS_CLAIM "groups"
#define OIDC_DEFAULT_SESSION_IDLE_S (12 * 3600)
#define OIDC_DEFAULT_SESSION_MAX_S (7 * 86400)
#define OIDC_ROLEMAP_MAX 64   /* groups named by --oidc-role-map */
#define OIDC_GROUP_MAX 256    /* bytes of one group name */
#define OIDC_URL_MAX 2048     /* an issuer or endpoint URL */
#define OIDC_SECRET_MAX 1024  /* the client secret file */
#define OIDC_GROUPS_MAX 256   /* groups of one user that are looked at */

struct oidc_rolemap_entry {
	enum principal_role role;
	char group[OIDC_GROUP_MAX];
};

struct oidc_config {
	char issuer[OIDC_URL_MAX]; /* "" when OIDC is off */
	char client_id[256];
	char secret_file[4096]; /* "" for a public client (PKCE only) */
	char scopes[512];
	char groups_claim[128];
	struct oidc_rolemap_entry map[OIDC_ROLEMAP_MAX];
	size_t nmap;
	char ca_file[4096]; /* "" for the system's trust store */
	int64_t session_idle_s;
	int64_t session_max_s;
};

/* An http(s) URL cut into what a client connection needs. */
struct oidc_url {
	int tls;
	char host[256];
	int port;
	char target[OIDC_URL_MAX]; /* path and query, at least "/" */
};

/* Fills the defaults (scopes, groups claim, session lifetimes). */
void oidc_config_defaults(struct oidc_config *c);

/*
 * Cuts url into scheme, host, port and target. Only "https://" and
 * "http://"; no user info, no fragment; IPv6 hosts in brackets. 0 or -EINVAL.
 */
int oidc_url_parse(const char *url, struct oidc_url *out);
/*
 * Appends "name=value" to an application/x-www-form-urlencoded body or a
 * query (with '&' first when b is not empty), percent-encoding all but
 * RFC 3986's unreserved characters. 0 or buf_append's code.
 */
struct buf;
int oidc_form_add(struct buf *b, const char *name, const char *value);
/*
 * The value of name in a query or form body (first occurrence), with '+'
 * as a space and %XX decoded, into out. 0, -ENOENT, or -EINVAL (a bad
 * escape, a NUL, or longer than outlen - 1).
 */
int oidc_query_get(struct slice query, const char *name, char *out, size_t outlen);
/* 1 for 127.0.0.0/8, ::1 and "localhost". */
int oidc_host_is_loopback(const char *host);
/*
 * Whether url may be an issuer (or any endpoint of it): https, or plain
 * http on a loopback host (development only). 0, or -EINVAL with why in err.
 */
int oidc_issuer_check(const char *url, char *err, size_t errlen);

/*
 * Parses --oidc-role-map "admin=G1,G2,operator=G3,viewer=G4" into c->map
 * (appending: the flag may be given more than once). A word with '=' starts
 * a role; a word without one is one more group of the role before it.
 * 0, or -EINVAL (unknown role, a group before any role, an empty group, too
 * many, too long).
 */
int oidc_rolemap_parse(struct oidc_config *c, const char *text);
/*
 * The highest role that any of groups (a JSON array of strings, or one
 * string; anything else is no group) maps to; PRINCIPAL_ROLE_NONE when none.
 */
enum principal_role oidc_rolemap_role(const struct oidc_config *c, const json_t *groups);

/*
 * The redirect URI: public_url (--management-public-url) without a final
 * slash, and "/oidc/callback". 0 or -ENAMETOOLONG.
 */
int oidc_redirect_uri(const char *public_url, char *out, size_t outlen);
/*
 * The origin (scheme://host[:port]) of public_url, for the CSRF checks.
 * 0 or -EINVAL.
 */
int oidc_public_origin(const char *public_url, char *out, size_t outlen);

/*
 * 1 when next (already percent-decoded) is a safe place to send the browser
 * after login: a path on this site. It starts with one '/', is not "//host"
 * or "/\host" (which browsers read as another host), has no backslash, no
 * control byte, space or byte above 0x7e, and fits OIDC_URL_MAX. 0 otherwise
 * (the caller then uses "/").
 */
int oidc_next_is_safe(struct slice next);

/*
 * Reads the client secret: the file must be a regular file no one but its
 * owner can read or write (mode 0600 or stricter), its content is the
 * secret (one final newline is dropped). 0 with *out malloc'd (wipe it),
 * or a negative code with why in err.
 */
int oidc_secret_read(const char *path, char **out, char *err, size_t errlen);

/*
 * Sets one flag by its long name ("oidc-issuer", "session-idle", ...);
 * the names are listed in OIDC_CONFIG_FLAGS_HELP. 0, -EINVAL for a bad
 * value, -ENOENT for a name that is not ours.
 */
int oidc_config_set(struct oidc_config *c, const char *flag, const char *value);
/*
 * The checks across flags, after all were read: an issuer needs a client
 * id and must pass oidc_issuer_check; --session-idle is at most
 * --session-max; no other --oidc-* flag without an issuer. 0 or -EINVAL
 * with why in err.
 */
int oidc_config_finish(const struct oidc_config *c, char *err, size_t errlen);
#endif
