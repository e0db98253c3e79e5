/*
 * oidc.c - the authorization code flow with PKCE: GET /oidc/login,
 * GET /oidc/callback, POST /oidc/logout (see oidc.h and docs/security.md,
 * "Sessions").
 *
 * The login's state, nonce, PKCE verifier and where to go afterwards
 * travel in a short-lived cookie sealed with AES-256-GCM under a key kept
 * in the store, so whichever replica the provider sends the browser back
 * to can open it; nothing about a login in progress is kept in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/oidc.h"
#include "server/server.h"
#include "store/store_async.h"
#include "store/store_session.h"

#define OIDC_RANDOM_TEXT 44   /* 32 random bytes in base64url and a NUL */
#define OIDC_PARAM_MAX 4096   /* one query parameter of the callback */
#define OIDC_USER_AGENT_MAX 256
#define OIDC_STATE_AAD "lxcm oidc login state v1"
#define OIDC_COOKIE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Lax"

struct oidc_login {
	struct http_request *req;
	struct oidc *o;
	char next[OIDC_URL_MAX];
	char state[OIDC_RANDOM_TEXT];
	char nonce[OIDC_RANDOM_TEXT];
	char verifier[OIDC_RANDOM_TEXT];
	char code[OIDC_PARAM_MAX];
	struct oidc_tokens tok;
	char cookie[OIDC_COOKIE_TEXT + 1];
	struct store_session sess;
	char user[PRINCIPAL_USER_MAX];
	int rc;
};

static struct oidc_login *oidc_login_new(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct oidc_login *l;

	if (srv->oidc == NULL) {
		http_respond_error(req, 404, "OIDC login is not configured (--oidc-issuer)");
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		http_respond_error(req, 500, "out of memory");
		return NULL;
	}
	l->req = req;
	l->o = srv->oidc;
	return l;
}

static void oidc_login_free(struct oidc_login *l)
{
	oidc_tokens_clear(&l->tok);
	free(l->sess.issuer);
	free(l->sess.subject);
	free(l->sess.name);
	free(l->sess.email);
	free(l->sess.groups);
	free(l->sess.user_agent);
	free(l->sess.address);
	if (l->sess.tokens != NULL)
		secret_wipe(l->sess.tokens, strlen(l->sess.tokens));
	free(l->sess.tokens);
	secret_wipe(l, sizeof(*l));
	free(l);
}

/* 32 random bytes as base64url text. 0 or -EIO. */
static int oidc_random(char out[OIDC_RANDOM_TEXT])
{
	unsigned char raw[32];
	int rc = RAND_bytes(raw, sizeof(raw)) == 1 ? base64url_encode(raw, sizeof(raw), out) : -EIO;

	secret_wipe(raw, sizeof(raw));
	out[rc == 0 ? base64url_encoded_len(sizeof(raw)) : 0] = '\0';
	return rc;
}

/* A 303 to location with up to two Set-Cookie headers (NULL: none). */
static void oidc_redirect(struct http_request *req, const char *location, const char *cookie1,
			  const char *cookie2)
{
	struct http_header h[3];
	size_t n = 0;

	h[n++] = (struct http_header){LIT("Location"), slice_cstr(location)};
	if (cookie1 != NULL)
		h[n++] = (struct http_header){LIT("Set-Cookie"), slice_cstr(cookie1)};
	if (cookie2 != NULL)
		h[n++] = (struct http_header){LIT("Set-Cookie"), slice_cstr(cookie2)};
	http_respond(req, 303, h, n, NULL, 0);
}

/* ---- GET /oidc/login ---- */

/* The sealed login-state cookie, "name=value; attributes". */
static int oidc_state_cookie(struct oidc_login *l, char **out)
{
	json_t *st = json_pack("{s:s,s:s,s:s,s:s,s:I}", "s", l->state, "n", l->nonce, "v",
			       l->verifier, "r", l->next, "e",
			       (json_int_t)(time_now() + OIDC_STATE_TTL_S));
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL, *sealed = NULL;
	int rc = text ? seal_encrypt(l->o->state_key, LIT(OIDC_STATE_AAD), slice_cstr(text), &sealed)
		      : -ENOMEM;

	json_decref(st);
	if (text != NULL) {
		secret_wipe(text, strlen(text));
		free(text);
	}
	if (rc == 0 && asprintf(out, OIDC_STATE_COOKIE "=%s" OIDC_COOKIE_ATTRS "; Max-Age=%d", sealed,
				OIDC_STATE_TTL_S) < 0)
		rc = -ENOMEM;
	free(sealed);
	return rc;
}

/* The PKCE S256 challenge of the verifier. */
static int oidc_challenge(const char *verifier, char out[OIDC_RANDOM_TEXT])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)verifier, strlen(verifier), d);
	out[base64url_encoded_len(sizeof(d))] = '\0';
	return base64url_encode(d, sizeof(d), out);
}

/* The provider's authorization URL for this login. */
static int oidc_authorize_url(struct oidc_login *l, struct buf *url)
{
	const struct server_config *cfg = &l->o->srv->cfg;
	const char *ep = oidc_provider_meta(l->o->prov)->authorization_endpoint;
	char challenge[OIDC_RANDOM_TEXT], redirect[OIDC_URL_MAX];
	struct buf q;
	int rc;

	buf_init(&q, 2 * OIDC_URL_MAX);
	rc = oidc_challenge(l->verifier, challenge);
	if (rc == 0)
		rc = oidc_redirect_uri(cfg->management_public, redirect, sizeof(redirect));
	if (rc == 0)
		rc = oidc_form_add(&q, "response_type", "code") ||
		     oidc_form_add(&q, "client_id", cfg->oidc.client_id) ||
		     oidc_form_add(&q, "redirect_uri", redirect) ||
		     oidc_form_add(&q, "scope", cfg->oidc.scopes) ||
		     oidc_form_add(&q, "state", l->state) || oidc_form_add(&q, "nonce", l->nonce) ||
		     oidc_form_add(&q, "code_challenge", challenge) ||
		     oidc_form_add(&q, "code_challenge_method", "S256");
	if (rc == 0)
		rc = buf_printf(url, "%s%c%s", ep, strchr(ep, '?') ? '&' : '?', q.data);
	buf_free(&q);
	return rc ? -ENOMEM : 0;
}

static void oidc_login_ready(void *arg, int err, const char *why)
{
	struct oidc_login *l = arg;
	struct buf url;
	char *cookie = NULL;

	buf_init(&url, 4 * OIDC_URL_MAX);
	if (err != 0) {
		http_respond_error(l->req, 502, "the identity provider is not reachable: %s", why);
	} else if (oidc_random(l->state) < 0 || oidc_random(l->nonce) < 0 ||
		   oidc_random(l->verifier) < 0 || oidc_state_cookie(l, &cookie) < 0 ||
		   oidc_authorize_url(l, &url) < 0) {
		http_respond_error(l->req, 500, "could not start the login");
	} else {
		oidc_redirect(l->req, url.data, cookie, NULL);
	}
	free(cookie);
	buf_free(&url);
	oidc_login_free(l);
}

void oidc_login(struct http_request *req)
{
	struct oidc_login *l = oidc_login_new(req);
	int rc;

	if (l == NULL)
		return;
	rc = oidc_query_get(req->query, "next", l->next, sizeof(l->next));
	if (rc < 0 || !oidc_next_is_safe(slice_cstr(l->next)))
		snprintf(l->next, sizeof(l->next), "/"); /* never another site */
	if (oidc_provider_ready(l->o->prov, oidc_login_ready, l) < 0) {
		http_respond_error(req, 500, "out of memory");
		oidc_login_free(l);
	}
}

/* ---- GET /oidc/callback ---- */

static void oidc_refuse(struct oidc_login *l, int status, const char *why)
{
	LOG_INFO("login refused (%s): %s", l->req->peer_addr ? l->req->peer_addr : "?", why);
	http_respond_error(l->req, status, "login refused: %s", why);
	oidc_login_free(l);
}

/* Opens the login-state cookie into l (state, nonce, verifier, next). NULL or why not. */
static const char *oidc_state_open(struct oidc_login *l)
{
	struct slice c;
	char *text = NULL;
	size_t len = 0;
	json_t *st = NULL;
	const char *s, *n, *v, *r;
	long long e = 0;
	const char *why = NULL;

	if (!oidc_cookie_get(l->req, LIT(OIDC_STATE_COOKIE), &c))
		return "no login in progress in this browser (the login cookie is missing): start "
		       "again at /oidc/login";
	if (seal_decrypt(l->o->state_key, LIT(OIDC_STATE_AAD), c, &text, &len) < 0 ||
	    json_parse_object(text, len, &st, NULL, 0) < 0 || json_get_string(st, "s", &s) ||
	    json_get_string(st, "n", &n) || json_get_string(st, "v", &v) ||
	    json_get_string(st, "r", &r) || json_get_int(st, "e", &e))
		why = "the login cookie is not one of ours";
	else if (e <= time_now())
		why = "the login took too long (the login cookie expired): start again";
	else if (strlen(s) >= sizeof(l->state) || strlen(n) >= sizeof(l->nonce) ||
		 strlen(v) >= sizeof(l->verifier) || strlen(r) >= sizeof(l->next))
		why = "the login cookie is not one of ours";
	if (why == NULL) {
		memcpy(l->state, s, strlen(s) + 1);
		memcpy(l->nonce, n, strlen(n) + 1);
		memcpy(l->verifier, v, strlen(v) + 1);
		memcpy(l->next, r, strlen(r) + 1);
	}
	json_decref(st);
	if (text != NULL) {
		secret_wipe(text, len);
		free(text);
	}
	return why;
}

/* The checks of the callback's query (RFC 6749 4.1.2, RFC 9207). NULL or why not. */
static const char *oidc_callback_check(struct oidc_login *l, char *msg, size_t msglen)
{
	const struct oidc_provider_meta *m = oidc_provider_meta(l->o->prov);
	char state[OIDC_PARAM_MAX], iss[OIDC_URL_MAX], error[256];
	const char *why = oidc_state_open(l);
	int rc;

	if (why != NULL)
		return why;
	if (oidc_query_get(l->req->query, "state", state, sizeof(state)) < 0 ||
	    !secret_equal(state, strlen(state), l->state, strlen(l->state)))
		return "state mismatch: this answer is not for the login this browser started";
	rc = oidc_query_get(l->req->query, "iss", iss, sizeof(iss));
	if ((rc == 0 && strcmp(iss, l->o->srv->cfg.oidc.issuer) != 0) ||
	    (rc == -EINVAL) || (rc == -ENOENT && m->iss_parameter_supported))
		return "the answer's iss is not the configured issuer (RFC 9207)";
	if (oidc_query_get(l->req->query, "error", error, sizeof(error)) == 0) {
		snprintf(msg, msglen, "the provider answered %s", error);
		return msg;
	}
	if (oidc_query_get(l->req->query, "code", l->code, sizeof(l->code)) < 0 || !l->code[0])
		return "the answer has no code";
	return NULL;
}

static void oidc_session_stored(void *arg);
static void oidc_session_store(struct store *s, void *arg);

/* The session of a person who just logged in: cookie, row, sealed tokens. */
static int oidc_session_new(struct oidc_login *l, const struct oidc_identity *id)
{
	const struct oidc_config *cfg = &l->o->srv->cfg.oidc;
	struct store_session *x = &l->sess;
	struct slice ua = http_request_header(l->req, LIT("User-Agent"));
	int64_t now = time_now();
	unsigned char raw[OIDC_COOKIE_BYTES];
	int rc;

	if (RAND_bytes(raw, sizeof(raw)) != 1 || base64url_encode(raw, sizeof(raw), l->cookie) < 0 ||
	    secret_random_hex(STORE_SESSION_ID_LEN / 2, x->id, sizeof(x->id)) < 0)
		return -EIO;
	secret_wipe(raw, sizeof(raw));
	l->cookie[OIDC_COOKIE_TEXT] = '\0';
	secret_sha256_hex(l->cookie, OIDC_COOKIE_TEXT, x->hash);
	x->issuer = strdup(cfg->issuer);
	x->subject = strdup(id->subject);
	x->name = strdup(id->name ? id->name : "");
	x->email = strdup(id->email ? id->email : "");
	x->groups = json_dumps(id->groups, JSON_COMPACT);
	snprintf(x->role, sizeof(x->role), "%s", principal_role_name(id->role));
	x->created_at = now;
	x->expires_at = now + cfg->session_max_s;
	x->idle_expires_at = now + cfg->session_idle_s;
	x->user_agent = ua.base ? slice_dup(slice_make(ua.base, ua.len < OIDC_USER_AGENT_MAX
								       ? ua.len
								       : OIDC_USER_AGENT_MAX))
				: strdup("");
	x->address = strdup(l->req->peer_addr ? l->req->peer_addr : "");
	/* Without a refresh token nothing can be refreshed: the session never asks. */
	x->access_expires_at = l->tok.refresh_token ? l->tok.access_expires_at : 0;
	rc = oidc_tokens_seal(slice_make(l->cookie, OIDC_COOKIE_TEXT), x->id, &l->tok, &x->tokens);
	if (rc == 0 && (!x->issuer || !x->subject || !x->name || !x->email || !x->groups ||
			!x->user_agent || !x->address))
		rc = -ENOMEM;
	snprintf(l->user, sizeof(l->user), "%s", oidc_identity_user(id));
	return rc;
}

static void oidc_identified(void *arg, int err, const char *why, struct oidc_identity *id)
{
	struct oidc_login *l = arg;
	struct server *srv = l->o->srv;

	if (err != 0) {
		oidc_refuse(l, 401, why);
		return;
	}
	if (oidc_session_new(l, id) < 0) {
		http_respond_error(l->req, 500, "could not make the session");
		oidc_login_free(l);
		return;
	}
	if (store_run(srv->loop, srv->store, oidc_session_store, oidc_session_stored, l) < 0) {
		http_respond_error(l->req, 503, "the server is busy, try again later");
		oidc_login_free(l);
	}
}

static void oidc_session_store(struct store *s, void *arg)
{
	struct oidc_login *l = arg;

	l->rc = store_session_create(s, &l->sess);
}

static void oidc_session_stored(void *arg)
{
	struct oidc_login *l = arg;
	char *cookie = NULL;

	if (l->rc < 0) {
		http_respond_error(l->req, 503, "could not store the session");
	} else if (asprintf(&cookie, OIDC_SESSION_COOKIE "=%s" OIDC_COOKIE_ATTRS "; Max-Age=%lld",
			    l->cookie, (long long)l->o->srv->cfg.oidc.session_max_s) < 0) {
		http_respond_error(l->req, 500, "out of memory");
	} else {
		LOG_INFO("login: %s (oidc), role %s, session %s, from %s", l->user, l->sess.role,
			 l->sess.id, l->sess.address);
		oidc_redirect(l->req, l->next, cookie,
			      OIDC_STATE_COOKIE "=" OIDC_COOKIE_ATTRS "; Max-Age=0");
	}
	if (cookie != NULL) {
		secret_wipe(cookie, strlen(cookie));
		free(cookie);
	}
	oidc_login_free(l);
}

static void oidc_token_done(struct http_fetch_result *res, void *arg)
{
	struct oidc_login *l = arg;
	char why[300], msg[400];
	json_t *e = NULL;
	const char *code = "?";

	if (res->err != 0) {
		snprintf(msg, sizeof(msg), "the provider's token endpoint is not reachable: %s",
			 strerror(-res->err));
		oidc_refuse(l, 502, msg);
		return;
	}
	if (res->status != 200) {
		if (json_parse_object(res->body, res->body_len, &e, NULL, 0) == 0)
			json_get_string(e, "error", &code);
		snprintf(msg, sizeof(msg), "the provider refused the code (%d %.64s)", res->status,
			 code);
		json_decref(e);
		oidc_refuse(l, 401, msg);
		return;
	}
	if (oidc_tokens_parse(slice_make(res->body, res->body_len), time_now(), &l->tok, why,
			      sizeof(why)) < 0) {
		oidc_refuse(l, 401, why);
		return;
	}
	if (l->tok.id_token == NULL) {
		oidc_refuse(l, 401, "the provider's answer has no ID token");
		return;
	}
	if (oidc_identify(l->o, &l->tok, l->nonce, NULL, oidc_identified, l) < 0) {
		http_respond_error(l->req, 500, "out of memory");
		oidc_login_free(l);
	}
}

/* RFC 6749 2.3.1: Basic with both parts form-encoded (oidc_form_add's "=v", cut). */
int oidc_token_request(struct oidc *o, struct buf *form, http_fetch_cb cb, void *arg)
{
	const struct oidc_config *cfg = &o->srv->cfg.oidc;
	struct http_header h[3];
	struct buf cred, basic;
	size_t n = 0;
	char *b64 = NULL;
	int rc = 0;

	buf_init(&cred, 4096);
	buf_init(&basic, 8192);
	h[n++] = (struct http_header){LIT("Content-Type"), LIT("application/x-www-form-urlencoded")};
	h[n++] = (struct http_header){LIT("Accept"), LIT("application/json")};
	if (o->client_secret == NULL) {
		rc = oidc_form_add(form, "client_id", cfg->client_id);
	} else {
		/* user:password, each form-encoded: oidc_form_add's "a=b" with ':' for '='. */
		rc = oidc_form_add(&cred, "", cfg->client_id);
		if (rc == 0) {
			struct buf pw;

			buf_init(&pw, 4096);
			rc = oidc_form_add(&pw, "", o->client_secret);
			if (rc == 0)
				rc = buf_printf(&basic, "%s:%s", cred.data + 1, pw.data + 1);
			secret_wipe(pw.data, pw.len);
			buf_free(&pw);
		}
		b64 = rc == 0 ? malloc(6 + base64_encoded_len(basic.len) + 1) : NULL;
		if (b64 == NULL) {
			rc = -ENOMEM;
		} else {
			memcpy(b64, "Basic ", 6);
			base64_encode(basic.data, basic.len, b64 + 6);
		}
		if (rc == 0)
			h[n++] = (struct http_header){LIT("Authorization"),
						      slice_make(b64, 6 + base64_encoded_len(basic.len))};
	}
	if (rc == 0)
		rc = oidc_provider_fetch(o->prov, oidc_provider_meta(o->prov)->token_endpoint, "POST",
					 h, n, form->data, form->len, cb, arg);
	if (basic.data)
		secret_wipe(basic.data, basic.len);
	buf_free(&basic);
	buf_free(&cred);
	if (b64 != NULL) {
		secret_wipe(b64, 6 + base64_encoded_len(basic.len));
		free(b64);
	}
	return rc;
}

static void oidc_callback_ready(void *arg, int err, const char *why)
{
	struct oidc_login *l = arg;
	char msg[400], redirect[OIDC_URL_MAX];
	const char *bad;
	struct buf form;
	int rc;

	if (err != 0) {
		snprintf(msg, sizeof(msg), "the identity provider is not reachable: %s", why);
		oidc_refuse(l, 502, msg);
		return;
	}
	bad = oidc_callback_check(l, msg, sizeof(msg));
	if (bad != NULL) {
		oidc_refuse(l, 401, bad);
		return;
	}
	buf_init(&form, 3 * OIDC_PARAM_MAX);
	rc = oidc_redirect_uri(l->o->srv->cfg.management_public, redirect, sizeof(redirect));
	if (rc == 0)
		rc = oidc_form_add(&form, "grant_type", "authorization_code") ||
		     oidc_form_add(&form, "code", l->code) ||
		     oidc_form_add(&form, "redirect_uri", redirect) ||
		     oidc_form_add(&form, "code_verifier", l->verifier);
	if (rc == 0)
		rc = oidc_token_request(l->o, &form, oidc_token_done, l);
	secret_wipe(form.data, form.len);
	buf_free(&form);
	if (rc != 0)
		oidc_refuse(l, 502, "cannot reach the provider's token endpoint");
}

void oidc_callback(struct http_request *req)
{
	struct oidc_login *l = oidc_login_new(req);

	if (l == NULL)
		return;
	if (oidc_provider_ready(l->o->prov, oidc_callback_ready, l) < 0) {
		http_respond_error(req, 500, "out of memory");
		oidc_login_free(l);
	}
}

/* ---- POST /oidc/logout ---- */

struct oidc_logout {
	struct http_request *req;
	char hash[65];
	char url[OIDC_URL_MAX + 512];
	int rc;
};

static void oidc_logout_work(struct store *s, void *arg)
{
	struct oidc_logout *x = arg;

	x->rc = store_session_end(s, x->hash);
}

static void oidc_logout_answer(struct http_request *req, const char *url)
{
	struct http_header h = {LIT("Set-Cookie"),
				LIT(OIDC_SESSION_COOKIE "=" OIDC_COOKIE_ATTRS "; Max-Age=0")};
	json_t *m = json_pack("{s:s?}", "logout_url", url && url[0] ? url : NULL);
	char *body = NULL;

	if (m != NULL) {
		json_t *env = json_pack("{s:s,s:s,s:i,s:s,s:i,s:s,s:o}", "type", "sync", "status",
					"Success", "status_code", 200, "operation", "",
					"error_code", 0, "error", "", "metadata", m);

		body = env ? json_dumps(env, JSON_COMPACT) : NULL;
		json_decref(env);
	}
	if (body == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	struct http_header hs[2] = {h, {LIT("Content-Type"), LIT("application/json")}};
	http_respond(req, 200, hs, 2, body, strlen(body));
	free(body);
}

static void oidc_logout_done(void *arg)
{
	struct oidc_logout *x = arg;

	if (x->rc < 0 && x->rc != -ENOENT)
		http_respond_error(x->req, 503, "the database is unavailable");
	else
		oidc_logout_answer(x->req, x->url);
	free(x);
}

void oidc_logout(struct http_request *req)
{
	struct server *srv = req->server_data;
	const struct principal *p = principal_of(req);
	struct oidc_logout *x;
	struct slice cookie;

	if (srv->oidc == NULL) {
		http_respond_error(req, 404, "OIDC login is not configured (--oidc-issuer)");
		return;
	}
	if (p == NULL || p->kind != PRINCIPAL_USER_SESSION ||
	    oidc_session_cookie(req, &cookie) != 1) {
		oidc_logout_answer(req, NULL); /* nothing to end; the cookie is cleared anyway */
		return;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	x->req = req;
	secret_sha256_hex(cookie.base, cookie.len, x->hash);
	{
		const char *ep = oidc_provider_meta(srv->oidc->prov)->end_session_endpoint;

		if (ep[0] != '\0')
			snprintf(x->url, sizeof(x->url), "%s%cclient_id=%s", ep,
				 strchr(ep, '?') ? '&' : '?', srv->cfg.oidc.client_id);
	}
	LOG_INFO("logout: %s, session %s", p->name, p->session_id);
	if (store_run(srv->loop, srv->store, oidc_logout_work, oidc_logout_done, x) < 0) {
		http_respond_error(req, 503, "the server is busy, try again later");
		free(x);
	}
}

/* ---- start and stop ---- */

/*
 * A session is deleted when it is next seen past its expiry; the ones
 * nobody sends again (a browser thrown away) are deleted here, so the
 * table holds live sessions only.
 */
static void oidc_purge_work(struct store *s, void *arg)
{
	size_t n = 0;

	(void)arg;
	if (store_session_purge(s, time_now(), &n) == 0 && n > 0)
		LOG_INFO("deleted %zu expired sessions", n);
}

static void oidc_purge_done(void *arg)
{
	struct oidc *o = arg;

	o->purging = 0;
}

static void oidc_purge_tick(uv_timer_t *t)
{
	struct oidc *o = t->data;

	if (o->purging)
		return;
	o->purging = 1;
	if (store_run(o->srv->loop, o->srv->store, oidc_purge_work, oidc_purge_done, o) < 0)
		o->purging = 0;
}

static void oidc_discovered(void *arg, int err, const char *why)
{
	struct oidc *o = arg;

	if (err == 0)
		LOG_INFO("OIDC: provider %s ready", o->srv->cfg.oidc.issuer);
	else
		LOG_WARN("OIDC: provider %s not ready yet (%s); logins will try again",
			 o->srv->cfg.oidc.issuer, why);
}

/* The login-state key every replica shares: made once, kept in the store. */
static int oidc_state_key(struct oidc *o)
{
	char cand[2 * SEAL_KEY_LEN + 1], hex[2 * SEAL_KEY_LEN + 1];
	int rc = secret_random_hex(SEAL_KEY_LEN, cand, sizeof(cand));

	if (rc == 0)
		rc = store_key_get(o->srv->store, "oidc-state-v1", cand, time_now(), hex, sizeof(hex));
	if (rc == 0 && strlen(hex) != 2 * SEAL_KEY_LEN)
		rc = -EINVAL;
	for (size_t i = 0; rc == 0 && i < SEAL_KEY_LEN; i++) {
		int hi = slice_hexval(hex[2 * i]), lo = slice_hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			rc = -EINVAL;
		else
			o->state_key[i] = (uint8_t)(hi << 4 | lo);
	}
	secret_wipe(cand, sizeof(cand));
	secret_wipe(hex, sizeof(hex));
	return rc;
}

int oidc_start(struct server *srv)
{
	const struct oidc_config *cfg = &srv->cfg.oidc;
	char err[512];
	struct oidc *o;

	if (cfg->issuer[0] == '\0')
		return 0;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->srv = srv;
	srv->oidc = o;
	if (cfg->secret_file[0] && oidc_secret_read(cfg->secret_file, &o->client_secret, err,
						     sizeof(err)) < 0) {
		LOG_ERROR("%s", err);
		return -EPERM;
	}
	o->prov = oidc_provider_new(srv->loop, cfg, err, sizeof(err));
	o->sessions = principal_cache_new(PRINCIPAL_CACHE_TTL_MS);
	if (o->prov == NULL || o->sessions == NULL) {
		LOG_ERROR("OIDC: %s", o->prov == NULL ? err : "out of memory");
		return -ENOMEM;
	}
	if (oidc_state_key(o) < 0) {
		LOG_ERROR("OIDC: cannot read or make the shared login key in the store");
		return -EIO;
	}
	LOG_INFO("OIDC: logins with %s as client %s (%s client)", cfg->issuer, cfg->client_id,
		 o->client_secret ? "confidential" : "public, PKCE");
	uv_timer_init(srv->loop, &o->purge);
	o->purge.data = o;
	uv_timer_start(&o->purge, oidc_purge_tick, OIDC_PURGE_MS, OIDC_PURGE_MS);
	uv_unref((uv_handle_t *)&o->purge); /* never keeps the loop alive */
	return oidc_provider_ready(o->prov, oidc_discovered, o);
}

/* Before the loop's last run: the purge timer's handle is closed there. */
void oidc_close(struct server *srv)
{
	if (srv->oidc != NULL && srv->oidc->purge.loop != NULL &&
	    !uv_is_closing((uv_handle_t *)&srv->oidc->purge))
		uv_close((uv_handle_t *)&srv->oidc->purge, NULL);
}

void oidc_stop(struct server *srv)
{
	struct oidc *o = srv->oidc;

	if (o == NULL)
		return;
	oidc_provider_free(o->prov);
	principal_cache_free(o->sessions);
	if (o->client_secret != NULL) {
		secret_wipe(o->client_secret, strlen(o->client_secret));
		free(o->client_secret);
	}
	secret_wipe(o, sizeof(*o));
	free(o);
	srv->oidc = NULL;
}
