/*
 * auth_session.c - the auth step for people's session cookies (see oidc.h
 * and docs/security.md, "Sessions").
 *
 * A request with no Authorization header but a __Host-lxcm_session cookie
 * is the session's whose hash the cookie has. Like API tokens, sessions
 * are looked up through the store behind a short cache (o->sessions), and
 * requests of one session share one lookup. A lookup also uses the session
 * (its idle expiry moves on) and, when the provider's access token is
 * about to end, refreshes it with the refresh token and reads the groups
 * and the role again; a refresh the provider refuses ends the session.
 * A session ended or changed anywhere reaches the cache through the change
 * feed (auth_session_on_change).
 *
 * Cookies ride along with every request a browser makes, also those
 * another site makes it send, so a cookie-authenticated request must also
 * show it comes from our own pages (auth_session_csrf): unsafe methods
 * need Sec-Fetch-Site same-origin/none or our Origin, and a body of a
 * type a cross-site form cannot send; every WebSocket needs our Origin.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "server/oidc.h"
#include "server/server.h"
#include "store/store_async.h"
#include "store/store_feed.h"
#include "store/store_session.h"

struct auth_session_lookup {
	struct auth_session_lookup *next;
	struct oidc *o;
	char hash[65];
	char cookie[OIDC_COOKIE_TEXT + 1]; /* the secret: tokens are sealed under it */
	uint64_t gen;
	int rc;
	int refreshed;
	int64_t now;
	struct store_session sess;
	struct oidc_tokens tok;
	char *sealed;	   /* the refreshed tokens, sealed */
	char *groups;	   /* the refreshed groups, JSON */
	char role[16];	   /* the refreshed role */
	struct http_request **waiters;
	size_t nwaiters, cap;
};

/* ---- CSRF ---- */

static int auth_session_same_origin(const struct http_request *req, const char *origin)
{
	struct slice o = http_request_header(req, LIT("Origin"));

	return o.base != NULL && slice_eq(o, slice_cstr(origin));
}

/* The media type of the request's body, without parameters. */
static struct slice auth_session_media_type(const struct http_request *req)
{
	struct slice ct = http_request_header(req, LIT("Content-Type"));
	size_t n = 0;

	while (ct.base != NULL && n < ct.len && ct.base[n] != ';' && ct.base[n] != ' ')
		n++;
	return slice_make(ct.base, n);
}

/*
 * NULL when the cookie-authenticated req may go on, or why not. A request
 * authenticated by a bearer token never comes here (browsers do not add
 * Authorization headers by themselves).
 */
static const char *auth_session_csrf(const struct http_request *req, const char *origin)
{
	struct slice m = req->method, site, type;
	int body = req->content_length > 0 || req->chunked;

	if (req->upgrade || http_request_header(req, LIT("Upgrade")).base != NULL)
		return auth_session_same_origin(req, origin)
			   ? NULL
			   : "a WebSocket opened with the session cookie must come from this "
			     "site's pages (Origin)";
	if (slice_eq(m, LIT("GET")) || slice_eq(m, LIT("HEAD")) || slice_eq(m, LIT("OPTIONS")))
		return NULL;
	site = http_request_header(req, LIT("Sec-Fetch-Site"));
	if (!auth_session_same_origin(req, origin) &&
	    !(site.base != NULL && (slice_eq(site, LIT("same-origin")) || slice_eq(site, LIT("none")))))
		return "a cross-site request with the session cookie is refused (Sec-Fetch-Site, "
		       "Origin)";
	type = auth_session_media_type(req);
	if (body && principal_route_access(req->route) != PRINCIPAL_ACCESS_TUNNEL &&
	    !slice_eq_nocase(type, LIT("application/json")))
		return "a request body sent with the session cookie must be application/json";
	if (body && (type.len == 0 || slice_eq_nocase(type, LIT("text/plain")) ||
		     slice_eq_nocase(type, LIT("application/x-www-form-urlencoded")) ||
		     slice_eq_nocase(type, LIT("multipart/form-data"))))
		return "a request body sent with the session cookie must say its type, and not a "
		       "form's";
	return NULL;
}

/* ---- deciding ---- */

/* Goes on without a session (public routes) or answers 401. 0 or -1. */
static int auth_session_none(struct http_request *req)
{
	if (principal_route_access(req->route) == PRINCIPAL_ACCESS_PUBLIC)
		return 0;
	http_respond_error(req, 401, "the session is unknown, ended or expired: log in again at "
				     "/oidc/login");
	return -1;
}

/* Decides req for a known session principal (kind NONE: no session). 0 or -1. */
static int auth_session_decide(struct http_request *req, const struct principal *p)
{
	struct server *srv = req->server_data;
	char origin[OIDC_URL_MAX];
	const char *why;

	if (p->kind == PRINCIPAL_NONE)
		return auth_session_none(req);
	if (oidc_public_origin(srv->cfg.management_public, origin, sizeof(origin)) < 0)
		origin[0] = '\0';
	why = auth_session_csrf(req, origin);
	if (why != NULL) {
		LOG_INFO("refused %s: %s: %.*s %.*s", p->name, why, (int)req->method.len,
			 req->method.base, (int)req->path.len, req->path.base);
		http_respond_error(req, 403, "%s", why);
		return -1;
	}
	return auth__decide(req, p);
}

/* ---- lookups ---- */

static void auth_session_lookup_free(struct auth_session_lookup *l)
{
	store_session_clear(&l->sess);
	oidc_tokens_clear(&l->tok);
	if (l->sealed != NULL)
		secret_wipe(l->sealed, strlen(l->sealed));
	free(l->sealed);
	free(l->groups);
	free(l->waiters);
	secret_wipe(l, sizeof(*l));
	free(l);
}

static void auth_session_unlink(struct auth_session_lookup *l)
{
	struct auth_session_lookup **pp;

	for (pp = &l->o->lookups; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			l->o->nlookups--;
			return;
		}
	}
}

/*
 * Answers every request waiting on l: with p (kind NONE: no session), or,
 * with status set, an error. Frees l.
 */
static void auth_session_finish(struct auth_session_lookup *l, const struct principal *p,
				int status, const char *why)
{
	auth_session_unlink(l);
	for (size_t i = 0; i < l->nwaiters; i++) {
		struct http_request *req = l->waiters[i];

		if (req->aborted)
			http_request_proceed(req);
		else if (status != 0)
			http_respond_error(req, status, "%s", why);
		else if (auth_session_decide(req, p) == 0)
			http_request_proceed(req);
	}
	auth_session_lookup_free(l);
}

/* The session as it now is: remembered, and the waiters answered. */
static void auth_session_found(struct auth_session_lookup *l)
{
	struct principal p;

	oidc_principal_from_session(&p, &l->sess);
	principal_cache_put(l->o->sessions, l->hash, uv_now(l->o->srv->loop), &p, l->gen);
	auth_session_finish(l, &p, 0, NULL);
}

static void auth_session_gone(struct auth_session_lookup *l)
{
	struct principal none;

	memset(&none, 0, sizeof(none));
	principal_cache_put(l->o->sessions, l->hash, uv_now(l->o->srv->loop), NULL, l->gen);
	auth_session_finish(l, &none, 0, NULL);
}

/* ---- a refresh the provider refused ends the session ---- */

static void auth_session_end_work(struct store *s, void *arg)
{
	struct auth_session_lookup *l = arg;

	l->rc = store_session_end(s, l->hash);
}

static void auth_session_end_done(void *arg)
{
	auth_session_gone(arg);
}

static void auth_session_end(struct auth_session_lookup *l, const char *why)
{
	struct server *srv = l->o->srv;

	LOG_INFO("session %s of %s ended: %s", l->sess.id,
		 l->sess.email && l->sess.email[0] ? l->sess.email : l->sess.subject, why);
	if (store_run(srv->loop, srv->store, auth_session_end_work, auth_session_end_done, l) < 0)
		auth_session_gone(l);
}

/* ---- refresh ---- */

static void auth_session_update_work(struct store *s, void *arg)
{
	struct auth_session_lookup *l = arg;

	l->rc = store_session_update(s, l->hash, l->groups, l->role, l->sealed,
				     l->tok.refresh_token ? l->tok.access_expires_at : 0, l->now);
}

static void auth_session_update_done(void *arg)
{
	struct auth_session_lookup *l = arg;

	if (l->rc == -ENOENT) {
		auth_session_gone(l); /* ended meanwhile */
		return;
	}
	if (l->rc < 0) {
		auth_session_finish(l, NULL, 503, "the database is unavailable");
		return;
	}
	snprintf(l->sess.role, sizeof(l->sess.role), "%s", l->role);
	free(l->sess.groups);
	l->sess.groups = l->groups;
	l->groups = NULL;
	l->sess.access_expires_at = l->tok.refresh_token ? l->tok.access_expires_at : 0;
	auth_session_found(l);
}

static void auth_session_identified(void *arg, int err, const char *why,
				    struct oidc_identity *id)
{
	struct auth_session_lookup *l = arg;
	struct server *srv = l->o->srv;

	if (err != 0) {
		auth_session_end(l, why);
		return;
	}
	snprintf(l->role, sizeof(l->role), "%s", principal_role_name(id->role));
	l->groups = json_dumps(id->groups, JSON_COMPACT);
	if (l->groups == NULL || oidc_tokens_seal(slice_cstr(l->cookie), l->sess.id, &l->tok,
						  &l->sealed) < 0) {
		auth_session_finish(l, NULL, 500, "could not keep the refreshed tokens");
		return;
	}
	if (strcmp(l->role, l->sess.role) != 0)
		LOG_INFO("session %s: role %s -> %s after a refresh", l->sess.id, l->sess.role,
			 l->role);
	if (store_run(srv->loop, srv->store, auth_session_update_work, auth_session_update_done,
		      l) < 0)
		auth_session_finish(l, NULL, 503, "the server is busy, try again later");
}

static void auth_session_refreshed(struct http_fetch_result *res, void *arg)
{
	struct auth_session_lookup *l = arg;
	struct oidc_tokens fresh;
	char why[300];

	if (res->err != 0) {
		/* The provider is unreachable, which says nothing of the session: keep it. */
		auth_session_found(l);
		return;
	}
	if (res->status != 200 ||
	    oidc_tokens_parse(slice_make(res->body, res->body_len), l->now, &fresh, why,
			      sizeof(why)) < 0) {
		auth_session_end(l, "the provider refused to refresh its tokens");
		return;
	}
	/* A provider may keep the refresh token (no rotation) and send no new ID token. */
	if (fresh.refresh_token == NULL) {
		fresh.refresh_token = l->tok.refresh_token;
		l->tok.refresh_token = NULL;
	}
	oidc_tokens_clear(&l->tok);
	l->tok = fresh;
	if (oidc_identify(l->o, &l->tok, NULL, l->sess.subject, auth_session_identified, l) < 0)
		auth_session_finish(l, NULL, 500, "out of memory");
}

static void auth_session_refresh(struct auth_session_lookup *l)
{
	struct buf form;
	int rc;

	if (oidc_tokens_open(slice_cstr(l->cookie), l->sess.id, l->sess.tokens, &l->tok) < 0 ||
	    l->tok.refresh_token == NULL) {
		auth_session_end(l, "its tokens cannot be read or it has no refresh token");
		return;
	}
	l->refreshed = 1;
	buf_init(&form, 16384);
	rc = oidc_form_add(&form, "grant_type", "refresh_token") ||
	     oidc_form_add(&form, "refresh_token", l->tok.refresh_token);
	if (rc == 0)
		rc = oidc_token_request(l->o, &form, auth_session_refreshed, l);
	secret_wipe(form.data, form.len);
	buf_free(&form);
	if (rc != 0)
		auth_session_found(l); /* try again at the next lookup */
}

/* ---- the store lookup ---- */

static void auth_session_use_work(struct store *s, void *arg)
{
	struct auth_session_lookup *l = arg;

	l->rc = store_session_use(s, l->hash, l->now, l->o->srv->cfg.oidc.session_idle_s,
				  &l->sess);
}

static void auth_session_use_done(void *arg)
{
	struct auth_session_lookup *l = arg;

	if (l->rc == -ENOENT) {
		auth_session_gone(l);
	} else if (l->rc < 0) {
		LOG_WARN("could not look a session up: %s", strerror(-l->rc));
		auth_session_finish(l, NULL, 503, "the database is unavailable");
	} else if (l->sess.access_expires_at != 0 &&
		   l->now >= l->sess.access_expires_at - OIDC_REFRESH_MARGIN_S) {
		auth_session_refresh(l);
	} else {
		auth_session_found(l);
	}
}

/* The lookup in flight for hash, or NULL; in constant time (auth__find). */
static struct auth_session_lookup *auth_session_find(struct oidc *o, const char *hash)
{
	return auth__find(o->lookups, offsetof(struct auth_session_lookup, next),
			  offsetof(struct auth_session_lookup, hash), hash);
}

static struct auth_session_lookup *auth_session_start(struct oidc *o, const char *hash,
						      struct slice cookie)
{
	struct server *srv = o->srv;
	struct auth_session_lookup *l;

	if (o->nlookups >= OIDC_MAX_LOOKUPS || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->o = o;
	memcpy(l->hash, hash, sizeof(l->hash));
	memcpy(l->cookie, cookie.base, OIDC_COOKIE_TEXT);
	l->gen = principal_cache_generation(o->sessions);
	l->now = time_now();
	if (store_run(srv->loop, srv->store, auth_session_use_work, auth_session_use_done, l) < 0) {
		free(l);
		return NULL;
	}
	l->next = o->lookups;
	o->lookups = l;
	o->nlookups++;
	return l;
}

/*
 * Whether a cached session may answer without the store: not when its
 * expiry is near (only a use through the store moves the idle expiry on, so
 * a session in use must reach the store before it would lapse), nor when
 * its access token is due for a refresh.
 */
static int auth_session_cached_ok(const struct principal *p, int64_t now)
{
	if (p->kind == PRINCIPAL_NONE)
		return 1;
	return now + PRINCIPAL_CACHE_TTL_MS / 1000 < p->expires_at &&
	       (p->refresh_at == 0 || now < p->refresh_at);
}

int auth_session_pre_route(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct oidc *o = srv->oidc;
	struct auth_session_lookup *l;
	struct slice cookie;
	struct principal p;
	char hash[65];
	int rc;

	if (o == NULL)
		return -ENOENT;
	rc = oidc_session_cookie(req, &cookie);
	if (rc == 0)
		return -ENOENT;
	if (rc < 0)
		return auth_session_none(req); /* a cookie that can be no session's: tampered */
	secret_sha256_hex(cookie.base, cookie.len, hash);
	if (principal_cache_get(o->sessions, hash, uv_now(srv->loop), &p) &&
	    auth_session_cached_ok(&p, time_now()))
		return auth_session_decide(req, &p);
	l = auth_session_find(o, hash);
	if (l == NULL)
		l = auth_session_start(o, hash, cookie);
	if (l == NULL || auth__wait(&l->waiters, &l->nwaiters, &l->cap, req) < 0) {
		http_respond_error(req, 503, "the server is busy, try again later");
		return -1;
	}
	return HTTP_PRE_ROUTE_PENDING;
}

void auth_session_on_change(const struct store_change *c, void *data)
{
	struct server *srv = data;

	if (srv->oidc == NULL || c->key == NULL || strlen(c->key) != 64)
		return;
	if (c->kind == STORE_CHANGE_SESSION_CHANGED)
		principal_cache_forget(srv->oidc->sessions, c->key);
}
