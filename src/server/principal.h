/*
 * principal.h - who is calling, what each role may do, and the short-lived
 * cache of API tokens.
 *
 * Every request of the management listener gets at most one struct
 * principal, set once by the auth step (auth.c) before its handler runs
 * and read by everything after it: the route's access check, audit rows,
 * log lines, tunnel v1's per-user identity. Nobody after the auth step
 * reads the Authorization header again.
 *
 * Roles are ordered, viewer < operator < admin (docs/security.md):
 *   viewer    reads the management API; through a tunnel only GET and HEAD,
 *             and no WebSocket but /1.0/events.
 *   operator  anything through a tunnel (exec, console, files, images) and
 *             reads the management API; changes nothing of the manager.
 *   admin     everything: clusters, join tokens, API tokens.
 * Routes declare their access level in the route table (ROUTE_* below,
 * kept in the flag bits the HTTP server leaves to the pre_route hook);
 * a route that declares none is for admins only.
 *
 * Loop thread only, except principal_may and the role and name helpers,
 * which touch no state.
 */
#ifndef LXCM_PRINCIPAL_H
#define LXCM_PRINCIPAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "net/http.h"
#include "store/store.h"

enum principal_kind {
	PRINCIPAL_NONE = 0,	/* no principal: a hash known to be no API token */
	PRINCIPAL_ADMIN_TOKEN,	/* the API token written to admin.token at first start */
	PRINCIPAL_API_TOKEN,	/* any other API token */
	PRINCIPAL_CLUSTER_CERT, /* a cluster's client certificate (connector listener) */
	PRINCIPAL_USER_SESSION, /* a person's OIDC session (the session cookie, auth_session.c) */
};

enum principal_role {
	PRINCIPAL_ROLE_NONE = 0, /* may use public routes only (a cluster on the connector) */
	PRINCIPAL_ROLE_VIEWER,
	PRINCIPAL_ROLE_OPERATOR,
	PRINCIPAL_ROLE_ADMIN,
};

enum principal_access {
	PRINCIPAL_ACCESS_ADMIN = 0, /* the default: a route that says nothing is for admins */
	PRINCIPAL_ACCESS_PUBLIC,    /* anyone, with or without a token */
	PRINCIPAL_ACCESS_VIEWER,
	PRINCIPAL_ACCESS_OPERATOR,
	PRINCIPAL_ACCESS_TUNNEL, /* the tunnel proxy: by method and path, see principal_may */
};

/* Route flags (struct http_route.flags) naming the access a route needs. */
#define ROUTE_ADMIN HTTP_ROUTE_HOOK(PRINCIPAL_ACCESS_ADMIN)
#define ROUTE_PUBLIC HTTP_ROUTE_HOOK(PRINCIPAL_ACCESS_PUBLIC)
#define ROUTE_VIEWER HTTP_ROUTE_HOOK(PRINCIPAL_ACCESS_VIEWER)
#define ROUTE_OPERATOR HTTP_ROUTE_HOOK(PRINCIPAL_ACCESS_OPERATOR)
#define ROUTE_TUNNEL HTTP_ROUTE_HOOK(PRINCIPAL_ACCESS_TUNNEL)

#define PRINCIPAL_ID_MAX 160  /* fits an audit actor (AUDIT_ACTOR_MAX); a person: "<user> (oidc)" */
#define PRINCIPAL_NAME_MAX 96 /* "api-token:" and a name of up to 63 characters */
#define PRINCIPAL_SEAL_LEN 32
#define PRINCIPAL_USER_MAX 128	  /* a person's display name: email, else name, else subject */
#define PRINCIPAL_SUBJECT_MAX 256 /* the provider's subject of a person */
#define PRINCIPAL_GROUPS_MAX 512  /* the person's groups as JSON text, cut to whole entries */

struct principal {
	enum principal_kind kind;
	enum principal_role role;
	/*
	 * Stable and secret-free, the audit rows' actor: "token:" and the
	 * first 12 hex digits of the token's SHA-256 (what `lxcm api-token
	 * list` shows as AUDIT ACTOR; a name can be revoked and given to
	 * another token, this cannot), "cluster:" and 12 of a certificate's,
	 * and for a person's session "alice@example.com (oidc)" (the email,
	 * else the name, else the provider's subject).
	 */
	char id[PRINCIPAL_ID_MAX];
	/* For log lines and messages: "api-token:ci-bot", "admin-token:admin". */
	char name[PRINCIPAL_NAME_MAX];
	/*
	 * Key material derived from the credential's secret (never stored, and
	 * not derivable from the hash the store and the cache hold): tunnel v1
	 * seals the user's LXD session cookie under it (session_cookies.h).
	 * Only in the copy of a proxied request (the auth step derives it for
	 * tunnel routes only), wiped with the request.
	 */
	uint8_t seal[PRINCIPAL_SEAL_LEN];
	int has_seal;
	/*
	 * PRINCIPAL_USER_SESSION only: who the person is, the session's id
	 * (what lists and revocations name), when it ends (the sooner of its
	 * idle and absolute expiry, as last read from the store) and when its
	 * access token needs a refresh (0: never).
	 */
	char user[PRINCIPAL_USER_MAX];
	char subject[PRINCIPAL_SUBJECT_MAX];
	char groups[PRINCIPAL_GROUPS_MAX];
	char session_id[33];
	int64_t expires_at;
	int64_t refresh_at;
};

/* "viewer", "operator", "admin" ("none" otherwise). */
const char *principal_role_name(enum principal_role role);
/* The role a name stands for, or PRINCIPAL_ROLE_NONE for anything else. */
enum principal_role principal_role_parse(struct slice name);
/* "public", "viewer", "operator", "admin" or "tunnel". */
const char *principal_access_name(enum principal_access access);
/* The access level a route declares. */
enum principal_access principal_route_access(const struct http_route *route);

/*
 * 1 when a caller with this role may make the request, 0 otherwise. For
 * PRINCIPAL_ACCESS_TUNNEL, tunnel_path is the cluster-side path without its
 * leading slash (the route's final capture) and upgrade says whether the
 * request asks for an upgraded connection (a WebSocket): operators and
 * admins may do anything; viewers only GET and HEAD, with no upgrade but
 * to exactly "1.0/events".
 */
int principal_may(enum principal_role role, enum principal_access access, struct slice method,
		  struct slice tunnel_path, int upgrade);

/*
 * Fills p for an API token found by its SHA-256 (hex). bootstrap says
 * whether it is the token written to admin.token.
 */
void principal_from_api_token(struct principal *p, const struct store_api_token_info *t,
			      const char *hash, int bootstrap);
/* Fills p for a cluster's client certificate (SHA-256 fingerprint, hex). */
void principal_from_cluster_cert(struct principal *p, const char *fingerprint);
/* Derives p->seal from the credential's secret. 0 or -EIO. */
int principal_seal(struct principal *p, struct slice secret);

/*
 * Gives req a copy of p (once: -EALREADY if it has one; -ENOMEM). The HTTP
 * server wipes and frees it with the request.
 */
int principal_attach(struct http_request *req, const struct principal *p);
/* The request's principal, or NULL for an anonymous caller. */
const struct principal *principal_of(const struct http_request *req);

/*
 * The cache of API tokens by hash, in front of the store: positive and
 * negative entries (a flood of one bad token costs one lookup per TTL),
 * bounded (PRINCIPAL_CACHE_SETS x PRINCIPAL_CACHE_WAYS entries, the
 * soonest to expire evicted first), each kept ttl_ms. Entries hold no seal.
 *
 * A revoke must be seen at once: principal_cache_forget / _flush drop
 * entries and move the generation on, and principal_cache_put ignores a
 * result whose lookup began under an older generation (it may predate the
 * revoke). The store's change feed calls them; see auth.c.
 */
#define PRINCIPAL_CACHE_TTL_MS 5000
#define PRINCIPAL_CACHE_SETS 256
#define PRINCIPAL_CACHE_WAYS 4

struct principal_cache;

struct principal_cache *principal_cache_new(uint64_t ttl_ms);
void principal_cache_free(struct principal_cache *c);
/*
 * 1 when a live entry holds hash (64 hex digits): *p is its principal, of
 * kind PRINCIPAL_NONE when the hash is known to be no token. 0 on a miss.
 */
int principal_cache_get(struct principal_cache *c, const char *hash, uint64_t now_ms,
			struct principal *p);
/* The generation to pass to principal_cache_put when a lookup starts. */
uint64_t principal_cache_generation(const struct principal_cache *c);
/* Remembers what the store said about hash (p NULL: no such token), unless gen is stale. */
void principal_cache_put(struct principal_cache *c, const char *hash, uint64_t now_ms,
			 const struct principal *p, uint64_t gen);
/* Drops what is known about one hash. */
void principal_cache_forget(struct principal_cache *c, const char *hash);
/* Drops everything (a token was revoked by name). */
void principal_cache_flush(struct principal_cache *c);

#endif
