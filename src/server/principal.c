/* principal.c - who is calling, what each role may do, the API token cache (see principal.h). */
#include "server/principal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/secret.h"

/* ---- roles and access levels ---- */

static const char *const principal_role_names[] = {
	[PRINCIPAL_ROLE_NONE] = "none",
	[PRINCIPAL_ROLE_VIEWER] = "viewer",
	[PRINCIPAL_ROLE_OPERATOR] = "operator",
	[PRINCIPAL_ROLE_ADMIN] = "admin",
};

const char *principal_role_name(enum principal_role role)
{
	if ((size_t)role >= sizeof(principal_role_names) / sizeof(principal_role_names[0]))
		return "none";
	return principal_role_names[role];
}

enum principal_role principal_role_parse(struct slice name)
{
	if (slice_eq(name, LIT("viewer")))
		return PRINCIPAL_ROLE_VIEWER;
	if (slice_eq(name, LIT("operator")))
		return PRINCIPAL_ROLE_OPERATOR;
	if (slice_eq(name, LIT("admin")))
		return PRINCIPAL_ROLE_ADMIN;
	return PRINCIPAL_ROLE_NONE;
}

const char *principal_access_name(enum principal_access access)
{
	switch (access) {
	case PRINCIPAL_ACCESS_PUBLIC: return "public";
	case PRINCIPAL_ACCESS_VIEWER: return "viewer";
	case PRINCIPAL_ACCESS_OPERATOR: return "operator";
	case PRINCIPAL_ACCESS_TUNNEL: return "tunnel";
	case PRINCIPAL_ACCESS_ADMIN: break;
	}
	return "admin";
}

enum principal_access principal_route_access(const struct http_route *route)
{
	unsigned v = HTTP_ROUTE_HOOK_BITS(route->flags);

	/* An unknown value asks for the most, like no value at all. */
	return v <= PRINCIPAL_ACCESS_TUNNEL ? (enum principal_access)v : PRINCIPAL_ACCESS_ADMIN;
}

/*
 * A viewer reads: GET and HEAD only, and no upgraded connection (exec and
 * console are WebSockets) but the event stream, whose path must be exactly
 * 1.0/events (no other spelling is trusted to mean the same to LXD).
 */
static int principal_viewer_tunnel(struct slice method, struct slice path, int upgrade)
{
	if (!slice_eq(method, LIT("GET")) && !slice_eq(method, LIT("HEAD")))
		return 0;
	return !upgrade || slice_eq(path, LIT("1.0/events"));
}

int principal_may(enum principal_role role, enum principal_access access, struct slice method,
		  struct slice tunnel_path, int upgrade)
{
	switch (access) {
	case PRINCIPAL_ACCESS_PUBLIC:
		return 1;
	case PRINCIPAL_ACCESS_VIEWER:
		return role >= PRINCIPAL_ROLE_VIEWER;
	case PRINCIPAL_ACCESS_OPERATOR:
		return role >= PRINCIPAL_ROLE_OPERATOR;
	case PRINCIPAL_ACCESS_TUNNEL:
		if (role >= PRINCIPAL_ROLE_OPERATOR)
			return 1;
		return role == PRINCIPAL_ROLE_VIEWER &&
		       principal_viewer_tunnel(method, tunnel_path, upgrade);
	case PRINCIPAL_ACCESS_ADMIN:
		break;
	}
	return role >= PRINCIPAL_ROLE_ADMIN;
}

/* ---- principals ---- */

void principal_from_api_token(struct principal *p, const struct store_api_token_info *t,
			      const char *hash, int bootstrap)
{
	memset(p, 0, sizeof(*p));
	p->kind = bootstrap ? PRINCIPAL_ADMIN_TOKEN : PRINCIPAL_API_TOKEN;
	p->role = principal_role_parse(slice_cstr(t->role));
	snprintf(p->id, sizeof(p->id), "token:%.12s", hash);
	snprintf(p->name, sizeof(p->name), "%s:%s", bootstrap ? "admin-token" : "api-token",
		 t->name);
}

void principal_from_cluster_cert(struct principal *p, const char *fingerprint)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_CLUSTER_CERT;
	p->role = PRINCIPAL_ROLE_NONE;
	snprintf(p->id, sizeof(p->id), "cluster:%.12s", fingerprint);
	snprintf(p->name, sizeof(p->name), "cluster-cert:%.16s", fingerprint);
}

/*
 * seal = HMAC-SHA256(key = the secret, "lxcm principal seal"): a keyed
 * derivation, so it cannot be computed from the secret's SHA-256, which
 * the store and the cache hold.
 */
int principal_seal(struct principal *p, struct slice secret)
{
	static const char label[] = "lxcm principal seal";
	unsigned int len = 0;

	if (secret.len > INT32_MAX ||
	    HMAC(EVP_sha256(), secret.base, (int)secret.len, (const unsigned char *)label,
		 sizeof(label) - 1, p->seal, &len) == NULL ||
	    len != sizeof(p->seal)) {
		secret_wipe(p->seal, sizeof(p->seal));
		p->has_seal = 0;
		return -EIO;
	}
	p->has_seal = 1;
	return 0;
}

int principal_attach(struct http_request *req, const struct principal *p)
{
	struct principal *copy;

	if (req->principal != NULL)
		return -EALREADY;
	copy = malloc(sizeof(*copy));
	if (copy == NULL)
		return -ENOMEM;
	*copy = *p;
	req->principal = copy;
	req->principal_len = sizeof(*copy);
	return 0;
}

const struct principal *principal_of(const struct http_request *req)
{
	return req->principal;
}

/* ---- the cache ---- */

struct principal_cache_entry {
	char hash[65];
	int used;
	uint64_t expires_ms;
	struct principal p; /* kind PRINCIPAL_NONE: no such token */
};

struct principal_cache {
	uint64_t ttl_ms;
	uint64_t gen;
	struct principal_cache_entry e[PRINCIPAL_CACHE_SETS][PRINCIPAL_CACHE_WAYS];
};

struct principal_cache *principal_cache_new(uint64_t ttl_ms)
{
	struct principal_cache *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->ttl_ms = ttl_ms;
	return c;
}

void principal_cache_free(struct principal_cache *c)
{
	free(c);
}

static int principal_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return 0;
}

/*
 * The set of a hash: its first hex digits. The hash is a SHA-256 of the
 * caller's token, so a caller cannot aim many tokens at one set without
 * grinding hashes, and even then only evicts what the store is asked again.
 */
static struct principal_cache_entry *principal_cache_set(struct principal_cache *c,
							 const char *hash)
{
	unsigned i = (unsigned)(principal_hex(hash[0]) << 4 | principal_hex(hash[1]));

	return c->e[i % PRINCIPAL_CACHE_SETS];
}

/* Hashes are compared in full and in constant time, as the old hash list was. */
static int principal_cache_match(const struct principal_cache_entry *x, const char *hash)
{
	return x->used && secret_equal(x->hash, 64, hash, 64);
}

int principal_cache_get(struct principal_cache *c, const char *hash, uint64_t now_ms,
			struct principal *p)
{
	struct principal_cache_entry *set = principal_cache_set(c, hash);
	size_t w;

	for (w = 0; w < PRINCIPAL_CACHE_WAYS; w++) {
		if (!principal_cache_match(&set[w], hash))
			continue;
		if (set[w].expires_ms <= now_ms) {
			set[w].used = 0;
			return 0;
		}
		*p = set[w].p;
		return 1;
	}
	return 0;
}

uint64_t principal_cache_generation(const struct principal_cache *c)
{
	return c->gen;
}

/* Where a new entry for hash goes: its own way, a free one, or the soonest to expire. */
static struct principal_cache_entry *principal_cache_slot(struct principal_cache *c,
							  const char *hash)
{
	struct principal_cache_entry *set = principal_cache_set(c, hash), *victim = &set[0];
	size_t w;

	for (w = 0; w < PRINCIPAL_CACHE_WAYS; w++)
		if (principal_cache_match(&set[w], hash))
			return &set[w];
	for (w = 0; w < PRINCIPAL_CACHE_WAYS; w++) {
		if (!set[w].used)
			return &set[w];
		if (set[w].expires_ms < victim->expires_ms)
			victim = &set[w];
	}
	return victim;
}

void principal_cache_put(struct principal_cache *c, const char *hash, uint64_t now_ms,
			 const struct principal *p, uint64_t gen)
{
	struct principal_cache_entry *x;

	if (gen != c->gen || strlen(hash) != 64)
		return; /* the answer may predate a revoke */
	x = principal_cache_slot(c, hash);
	memset(x, 0, sizeof(*x));
	memcpy(x->hash, hash, 65);
	x->used = 1;
	x->expires_ms = now_ms + c->ttl_ms;
	if (p != NULL) {
		x->p = *p;
		secret_wipe(x->p.seal, sizeof(x->p.seal));
		x->p.has_seal = 0;
	}
}

void principal_cache_forget(struct principal_cache *c, const char *hash)
{
	struct principal_cache_entry *set = principal_cache_set(c, hash);
	size_t w;

	c->gen++;
	for (w = 0; w < PRINCIPAL_CACHE_WAYS; w++)
		if (principal_cache_match(&set[w], hash))
			memset(&set[w], 0, sizeof(set[w]));
}

void principal_cache_flush(struct principal_cache *c)
{
	c->gen++;
	memset(c->e, 0, sizeof(c->e));
}
