/*
 * oidc.h - people log in with the OpenID provider (issue 11): the login
 * and callback handlers (oidc.c), the sessions they make and the session
 * cookie (oidc_session.c), and the auth step for that cookie
 * (auth_session.c). docs/security.md, "Sessions", has the whole design.
 *
 * One struct oidc lives in struct server when --oidc-issuer is set (NULL
 * otherwise: the /oidc routes answer 404 and cookies are ignored). Loop
 * thread only.
 */
#ifndef LXCM_OIDC_H
#define LXCM_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/seal.h"
#include "net/http.h"
#include "server/oidc_provider.h"
#include "server/principal.h"

#define OIDC_SESSION_COOKIE "__Host-lxcm_session"
#define OIDC_STATE_COOKIE "__Host-lxcm_oidc"
#define OIDC_STATE_TTL_S 600	   /* a login must come back within this */
#define OIDC_COOKIE_BYTES 32	   /* random bytes of a session cookie */
#define OIDC_COOKIE_TEXT 43	   /* their base64url length */
#define OIDC_REFRESH_MARGIN_S 60   /* refresh this long before the access token ends */
#define OIDC_MAX_LOOKUPS 256	   /* distinct sessions looked up (or refreshed) at once */
#define OIDC_TOKENS_INFO "lxcm session tokens v1" /* HKDF info of the tokens' key */
#define OIDC_PURGE_MS (10 * 60 * 1000) /* expired sessions are deleted this often */

struct server;
struct auth_session_lookup;

struct oidc {
	struct server *srv;
	struct oidc_provider *prov;
	char *client_secret; /* NULL: a public client (PKCE only) */
	uint8_t state_key[SEAL_KEY_LEN]; /* seals the login-state cookie; shared through the store */
	char redirect_uri[OIDC_URL_MAX];
	struct principal_cache *sessions; /* session principals by cookie hash */
	struct auth_session_lookup *lookups;
	size_t nlookups;
	uv_timer_t purge; /* deletes sessions nobody used past their expiry */
	int purging;	  /* a purge is running on the store */
};

/* What the provider's token endpoint answered. */
struct oidc_tokens {
	char *id_token;
	char *access_token;
	char *refresh_token;
	int64_t access_expires_at; /* 0: not said */
};

/* What lxcm knows of a person after a login or a refresh. */
struct oidc_identity {
	char *subject;
	char *name;
	char *email;
	json_t *groups; /* a JSON array, never NULL once filled */
	enum principal_role role;
};

/*
 * Sets srv->oidc up when --oidc-issuer is set: reads the client secret,
 * gets the shared state key from the store, starts the discovery. Before
 * the loop runs. 0 or a negative code (logged).
 */
int oidc_start(struct server *srv);
/* Closes the purge timer, before the loop's last run (main.c). */
void oidc_close(struct server *srv);
/* After the loop has run dry and oidc_close's handle is closed. */
void oidc_stop(struct server *srv);

/* Route handlers (api.c's table; public routes). */
void oidc_login(struct http_request *req);
void oidc_callback(struct http_request *req);
void oidc_logout(struct http_request *req);

/*
 * A request to the token endpoint with form (the grant and its values;
 * client_id is added for a public client): a confidential client
 * authenticates with HTTP Basic. 0 or a negative code (cb will not run).
 */
struct buf;
int oidc_token_request(struct oidc *o, struct buf *form, http_fetch_cb cb, void *arg);

/* ---- oidc_session.c ---- */

/*
 * The session cookie of req (a Cookie header's OIDC_SESSION_COOKIE): 1 with
 * *value set (pointing into the request), 0 when there is none, -1 when
 * there is one that cannot be a session cookie.
 */
int oidc_session_cookie(const struct http_request *req, struct slice *value);
/* A cookie's value of req by name: 1 with *value, 0 when absent. */
int oidc_cookie_get(const struct http_request *req, struct slice name, struct slice *value);
/* Parses a token endpoint's JSON answer. 0, or -EINVAL with why in err. */
int oidc_tokens_parse(struct slice body, int64_t now, struct oidc_tokens *out, char *err,
		      size_t errlen);
void oidc_tokens_clear(struct oidc_tokens *t);
/* Seals tokens under the key derived from the cookie; aad: the session id. */
int oidc_tokens_seal(struct slice cookie, const char *session_id, const struct oidc_tokens *t,
		     char **out);
int oidc_tokens_open(struct slice cookie, const char *session_id, const char *sealed,
		     struct oidc_tokens *out);
void oidc_identity_clear(struct oidc_identity *id);
/*
 * Fills the identity from ID token claims (and userinfo, when the groups
 * claim was not in them). The role from the role map.
 */
void oidc_identity_from_claims(const struct oidc *o, json_t *claims, json_t *userinfo,
			       struct oidc_identity *id);
/* The display name of a person: email, else name, else subject. */
const char *oidc_identity_user(const struct oidc_identity *id);
/* Fills p for a session row (store_session.h). */
struct store_session;
void oidc_principal_from_session(struct principal *p, const struct store_session *x);

/* ---- oidc_identify.c: token answer -> identity, shared by login and refresh ---- */

struct oidc_identify;
/* err 0: *id is filled (the callee owns it until done returns). */
typedef void (*oidc_identify_cb)(void *arg, int err, const char *why, struct oidc_identity *id);
/*
 * Verifies the ID token of t (with nonce, or none on a refresh: then
 * expect_subject must match), reads the groups (ID token, else userinfo
 * with the access token) and maps the role. A refresh answer without an
 * ID token goes to userinfo alone. cb runs once, later or at once.
 * 0 or -ENOMEM (cb will not run).
 */
int oidc_identify(struct oidc *o, const struct oidc_tokens *t, const char *nonce,
		  const char *expect_subject, oidc_identify_cb cb, void *arg);

/* ---- auth_session.c ---- */

/*
 * The auth step for requests without an Authorization header: 0 when req
 * carries no session cookie (the caller goes on as before); otherwise what
 * the pre_route hook answers (0, -1 or HTTP_PRE_ROUTE_PENDING).
 */
int auth_session_pre_route(struct http_request *req);
/* Change feed subscriber: a session ended or changed is forgotten by the cache. */
struct store_change;
void auth_session_on_change(const struct store_change *c, void *data);

/* ---- api_auth.c ---- */

/* Adds who the caller is to GET /1.0's metadata. */
void api_auth_describe(struct http_request *req, json_t *m);
void api_auth_sessions(struct http_request *req);
void api_auth_session_delete(struct http_request *req);
void api_auth_identities(struct http_request *req);

#endif
