/*
 * auth.c - the auth step of the management listener: it sets the request's
 * principal (principal.h) once, then checks the route's access level, once,
 * before any handler runs.
 *
 * Operators present `Authorization: Bearer <API token>`. Only SHA-256
 * hashes of API tokens are stored. A token is found by its hash through the
 * store, with a short-lived cache in front (principal_cache), so any number
 * of tokens works and most requests need no database round trip. On a miss
 * the request waits (HTTP_PRE_ROUTE_PENDING) while the store looks on its
 * threads; requests with the same token share one lookup, and at most
 * AUTH_MAX_LOOKUPS different tokens are looked up at once (past that: 503).
 *
 * Public routes (`GET /1.0`, `GET /1.0/status`) go on without a token, and
 * with one that is not a token (`GET /1.0` then says "untrusted"). Anywhere
 * else: no header is a 401, a bad token a 403, and a role below the
 * route's access level a 403 that is audited with the principal.
 *
 * Revocation: the store's change feed tells auth_on_change of every API
 * token created or revoked, by whatever code path (and, with PostgreSQL,
 * on whatever replica), before the answer to the call that made the
 * change; the cache then forgets that hash, so the next request asks the
 * store again.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "server/audit.h"
#include "server/oidc.h"
#include "server/principal.h"
#include "server/server.h"
#include "store/store_async.h"
#include "store/store_feed.h"

#define AUTH_MAX_LOOKUPS 256 /* distinct tokens looked up in the store at once */

/* One store lookup of a token's hash, and the requests waiting for it. */
struct auth_lookup {
	struct auth_lookup *next;
	struct server *srv;
	char hash[65];
	uint64_t gen; /* the cache's generation when the lookup started */
	int rc;
	struct store_api_token_info info;
	struct http_request **waiters;
	size_t nwaiters, cap;
};

/*
 * The bearer token of the request (http_hdr_bearer). 1 with *secret set; 0
 * when there is no Authorization header; -1 when there is one that carries
 * no usable token. The one place in the server that reads the header.
 */
static int auth_bearer(const struct http_request *req, struct slice *secret)
{
	struct slice h = http_request_header(req, LIT("Authorization"));

	if (h.base == NULL)
		return 0;
	*secret = http_hdr_bearer(h);
	return secret->base != NULL ? 1 : -1;
}

static int auth_is_tunnel(const struct http_request *req)
{
	return principal_route_access(req->route) == PRINCIPAL_ACCESS_TUNNEL && req->nparams >= 2;
}

/* What the request asks for counts as an upgrade (a WebSocket) if it says so at all. */
static int auth_wants_upgrade(const struct http_request *req)
{
	return req->upgrade || http_request_header(req, LIT("Upgrade")).base != NULL;
}

/* The audit row of a refused request: the principal, what it asked, 403. */
static void auth_audit_refusal(struct server *srv, struct http_request *req,
			       const struct principal *p)
{
	struct audit_entry e;
	char cluster[64] = "", method[16], path[512];

	memset(&e, 0, sizeof(e));
	audit_entry_principal(&e, p);
	e.client = req->peer_addr;
	snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
	if (auth_is_tunnel(req)) {
		/* As the proxy writes it: the cluster, and the path the cluster sees. */
		snprintf(cluster, sizeof(cluster), "%.*s", (int)req->params[0].len,
			 req->params[0].base);
		snprintf(path, sizeof(path), "/%.*s%s%.*s", (int)req->params[1].len,
			 req->params[1].base, req->query.base ? "?" : "", (int)req->query.len,
			 req->query.base ? req->query.base : "");
	} else {
		snprintf(path, sizeof(path), "%.*s", (int)req->target.len, req->target.base);
	}
	e.cluster = cluster;
	e.method = method;
	e.path = path;
	e.status = 403;
	e.bytes_in = req->bytes_in;
	e.start_ms = req->start_ms;
	audit_record(srv, &e);
}

/* 403 in the LXD envelope for a principal whose role does not reach the route's access. */
static void auth_refuse_role(struct http_request *req, const struct principal *p,
			     enum principal_access access)
{
	struct server *srv = req->server_data;
	const char *role = principal_role_name(p->role);

	auth_audit_refusal(srv, req, p);
	LOG_INFO("refused %s (%s): %.*s %.*s", p->name, role, (int)req->method.len,
		 req->method.base, (int)req->path.len, req->path.base);
	if (access == PRINCIPAL_ACCESS_TUNNEL)
		http_respond_error(req, 403,
				   "%s has the %s role: through a tunnel it may send only GET and "
				   "HEAD, and open no WebSocket but /1.0/events",
				   p->name, role);
	else
		http_respond_error(req, 403, "%s has the %s role; %.*s %.*s needs %s", p->name,
				   role, (int)req->method.len, req->method.base,
				   (int)req->path.len, req->path.base,
				   principal_access_name(access));
}

/*
 * Decides a request once its token is known (p of kind PRINCIPAL_NONE: no
 * such token): sets the principal and checks the route's access. 0 to go
 * on; -1 when it answered.
 */
int auth__decide(struct http_request *req, const struct principal *known)
{
	enum principal_access access = principal_route_access(req->route);
	struct slice secret = SLICE_NULL;
	struct principal p = *known;
	const struct principal *mine;
	int rc;

	if (p.kind == PRINCIPAL_NONE) {
		if (access == PRINCIPAL_ACCESS_PUBLIC)
			return 0;
		http_respond_error(req, 403, "invalid API token");
		return -1;
	}
	/* Only a proxied request can need the seal (tunnel v1's cookie jar). */
	rc = 0;
	if (access == PRINCIPAL_ACCESS_TUNNEL)
		rc = (p.kind == PRINCIPAL_USER_SESSION ? oidc_session_cookie(req, &secret)
						       : auth_bearer(req, &secret)) == 1
			 ? principal_seal(&p, secret)
			 : -EINVAL;
	if (rc == 0)
		rc = principal_attach(req, &p);
	secret_wipe(&p, sizeof(p));
	if (rc < 0) {
		http_respond_error(req, 500, "could not set up the request's identity");
		return -1;
	}
	mine = principal_of(req);
	if (principal_may(mine->role, access, req->method,
			  auth_is_tunnel(req) ? req->params[1] : SLICE_NULL,
			  auth_wants_upgrade(req)))
		return 0;
	auth_refuse_role(req, mine, access);
	return -1;
}

/*
 * The change feed's subscriber (changes.c). A revoked token is forgotten,
 * and so is a created one: the cache may hold "no such token" for its hash
 * (a token made again with a known secret, or put in by hand).
 */
void auth_on_change(const struct store_change *c, void *data)
{
	struct server *srv = data;

	if (srv->principals == NULL || c->key == NULL || strlen(c->key) != 64)
		return;
	if (c->kind == STORE_CHANGE_API_TOKEN_REVOKED || c->kind == STORE_CHANGE_API_TOKEN_CREATED)
		principal_cache_forget(srv->principals, c->key);
}

/* ---- store lookups ---- */

static void auth_lookup_work(struct store *s, void *arg)
{
	struct auth_lookup *l = arg;

	l->rc = store_api_token_lookup(s, l->hash, &l->info);
}

static void auth_lookup_unlink(struct auth_lookup *l)
{
	struct server *srv = l->srv;
	struct auth_lookup **pp;

	for (pp = &srv->auth_lookups; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			srv->auth_nlookups--;
			return;
		}
	}
}

/* Answers one waiting request: it may have been aborted meanwhile (then it is only freed). */
static void auth_lookup_answer(struct auth_lookup *l, struct http_request *req,
			       const struct principal *p)
{
	if (req->aborted) {
		http_request_proceed(req);
	} else if (l->rc < 0 && l->rc != -ENOENT) {
		http_respond_error(req, 503, "the database is unavailable");
	} else if (auth__decide(req, p) == 0) {
		http_request_proceed(req);
	}
}

static void auth_lookup_done(void *arg)
{
	struct auth_lookup *l = arg;
	struct server *srv = l->srv;
	struct principal p;
	size_t i;

	auth_lookup_unlink(l);
	memset(&p, 0, sizeof(p));
	if (l->rc == 0)
		principal_from_api_token(&p, &l->info, l->hash,
					 secret_equal(l->hash, 64, srv->admin_token_hash,
						      strlen(srv->admin_token_hash)));
	else if (l->rc != -ENOENT)
		LOG_WARN("could not look an API token up: %s", strerror(-l->rc));
	if (l->rc == 0 || l->rc == -ENOENT)
		principal_cache_put(srv->principals, l->hash, uv_now(srv->loop),
				    l->rc == 0 ? &p : NULL, l->gen);
	for (i = 0; i < l->nwaiters; i++)
		auth_lookup_answer(l, l->waiters[i], &p);
	free(l->waiters);
	free(l);
}

int auth__wait(struct http_request ***waiters, size_t *n, size_t *cap,
	       struct http_request *req)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4;
		struct http_request **w = realloc(*waiters, c * sizeof(*w));

		if (w == NULL)
			return -ENOMEM;
		*waiters = w;
		*cap = c;
	}
	(*waiters)[(*n)++] = req;
	return 0;
}

void *auth__find(void *head, size_t next_off, size_t hash_off, const char *hash)
{
	char *l, *found = NULL;
	int ok = 0, before;

	for (l = head; l != NULL; l = *(char **)(void *)(l + next_off)) {
		before = ok;
		ok |= secret_equal(l + hash_off, 64, hash, 64);
		if (ok && !before)
			found = l;
	}
	return found;
}

/*
 * The lookup in flight for hash, or NULL. Like every comparison of token
 * hashes, in constant time, and with every entry (auth__find): how long it
 * takes does not tell whether (or which) another caller's token is being
 * looked up.
 */
static struct auth_lookup *auth_lookup_find(struct server *srv, const char *hash)
{
	return auth__find(srv->auth_lookups, offsetof(struct auth_lookup, next),
			  offsetof(struct auth_lookup, hash), hash);
}

/*
 * Makes req wait for the store's answer about hash, joining a lookup in
 * flight if there is one. HTTP_PRE_ROUTE_PENDING, or -1 after answering.
 */
static int auth_lookup_start(struct server *srv, struct http_request *req, const char *hash)
{
	struct auth_lookup *l = auth_lookup_find(srv, hash);

	if (l == NULL && srv->auth_nlookups < AUTH_MAX_LOOKUPS) {
		l = calloc(1, sizeof(*l));
		if (l != NULL) {
			l->srv = srv;
			memcpy(l->hash, hash, sizeof(l->hash));
			l->gen = principal_cache_generation(srv->principals);
			if (store_run(srv->loop, srv->store, auth_lookup_work, auth_lookup_done,
				      l) < 0) {
				free(l);
				l = NULL;
			} else {
				l->next = srv->auth_lookups;
				srv->auth_lookups = l;
				srv->auth_nlookups++;
			}
		}
	}
	if (l == NULL || auth__wait(&l->waiters, &l->nwaiters, &l->cap, req) < 0) {
		http_respond_error(req, 503, "the server is busy, try again later");
		return -1;
	}
	return HTTP_PRE_ROUTE_PENDING;
}

int auth_management_pre_route(struct http_request *req)
{
	struct server *srv = req->server_data;
	int public = principal_route_access(req->route) == PRINCIPAL_ACCESS_PUBLIC;
	struct slice secret = SLICE_NULL;
	struct principal p;
	char hash[65];
	int rc = auth_bearer(req, &secret);

	if (rc == 0) {
		int session_rc = auth_session_pre_route(req);

		if (session_rc != -ENOENT)
			return session_rc; /* a person's session cookie (auth_session.c) */
	}
	if (rc <= 0) {
		if (public)
			return 0;
		if (rc == 0)
			http_respond_error(req, 401, "authentication required: send "
						     "Authorization: Bearer <API token>");
		else
			http_respond_error(req, 403, "invalid API token");
		return -1;
	}
	secret_sha256_hex(secret.base, secret.len, hash);
	if (principal_cache_get(srv->principals, hash, uv_now(srv->loop), &p))
		return auth__decide(req, &p);
	return auth_lookup_start(srv, req, hash);
}

/* ---- first start ---- */

int auth_admin_file_hash(const char *data_dir, char hash[65])
{
	char path[4200], *text = NULL;
	size_t len = 0;

	if (snprintf(path, sizeof(path), "%s/admin.token", data_dir) >= (int)sizeof(path) ||
	    fs_read_file(path, 4096, &text, &len) != 0)
		return -ENOENT;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	secret_sha256_hex(text, len, hash);
	secret_wipe(text, len);
	free(text);
	return 0;
}

/*
 * On first start (no API token in the store) makes the admin token, stores
 * its hash (role admin) and writes it to DATA_DIR/admin.token (0600). Sets
 * up the token cache. Runs before the loop starts.
 */
int auth_bootstrap(struct server *srv)
{
	char token[80], secret[65], hash[65], path[4200];
	int64_t count = 0;
	int rc;

	srv->principals = principal_cache_new(PRINCIPAL_CACHE_TTL_MS);
	if (srv->principals == NULL)
		return -ENOMEM;
	rc = store_api_token_count(srv->store, &count);
	if (rc < 0)
		return rc;
	if (snprintf(path, sizeof(path), "%s/admin.token", srv->cfg.data_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (count == 0) {
		rc = secret_random_hex(32, secret, sizeof(secret));
		if (rc < 0)
			return rc;
		if (snprintf(token, sizeof(token), "lxcm_%s", secret) >= (int)sizeof(token))
			return -ENOSPC;
		secret_sha256_hex(token, strlen(token), hash);
		rc = fs_write_file(path, token, strlen(token), 0600);
		if (rc == 0)
			rc = store_api_token_create_role(srv->store, "admin", hash,
								    "admin", time_now());
		secret_wipe(token, sizeof(token));
		secret_wipe(secret, sizeof(secret));
		if (rc < 0)
			return rc;
		LOG_INFO("created the admin API token in %s (mode 0600)", path);
	} else {
		LOG_INFO("admin API token: %s", path);
	}
	/* Requests with the token of admin.token are the admin token's (principal kind). */
	if (auth_admin_file_hash(srv->cfg.data_dir, srv->admin_token_hash) != 0)
		srv->admin_token_hash[0] = '\0';
	return 0;
}

void auth_free(struct server *srv)
{
	principal_cache_free(srv->principals);
	srv->principals = NULL;
}
