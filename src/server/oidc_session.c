/*
 * oidc_session.c - the session cookie, the provider's tokens as a session
 * keeps them, and a person as lxcm knows them (see oidc.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json_util.h"
#include "common/secret.h"
#include "server/oidc.h"
#include "server/server.h"
#include "store/store_session.h"

/* ---- cookies ---- */

/* Looks name up in one Cookie header value ("a=b; c=d"). */
static int oidc_cookie_in(struct slice h, struct slice name, struct slice *value)
{
	size_t i = 0;

	while (i < h.len) {
		const char *p = h.base + i, *semi = memchr(p, ';', h.len - i);
		size_t len = semi ? (size_t)(semi - p) : h.len - i;
		struct slice pair = slice_make(p, len);

		while (pair.len > 0 && (pair.base[0] == ' ' || pair.base[0] == '\t')) {
			pair.base++;
			pair.len--;
		}
		if (pair.len > name.len && pair.base[name.len] == '=' &&
		    memcmp(pair.base, name.base, name.len) == 0) {
			*value = slice_make(pair.base + name.len + 1, pair.len - name.len - 1);
			return 1;
		}
		i += len + 1;
	}
	return 0;
}

int oidc_cookie_get(const struct http_request *req, struct slice name, struct slice *value)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (slice_eq_nocase(req->headers[i].name, LIT("Cookie")) &&
		    oidc_cookie_in(req->headers[i].value, name, value))
			return 1;
	return 0;
}

static int oidc_b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int oidc_session_cookie(const struct http_request *req, struct slice *value)
{
	if (!oidc_cookie_get(req, LIT(OIDC_SESSION_COOKIE), value))
		return 0;
	if (value->len != OIDC_COOKIE_TEXT)
		return -1;
	for (size_t i = 0; i < value->len; i++)
		if (!oidc_b64url_char(value->base[i]))
			return -1;
	return 1;
}

/* ---- the provider's tokens ---- */

static char *oidc_dup_member(json_t *o, const char *key)
{
	const char *v;

	return json_get_string(o, key, &v) == 0 ? strdup(v) : NULL;
}

int oidc_tokens_parse(struct slice body, int64_t now, struct oidc_tokens *t, char *err,
		      size_t errlen)
{
	json_t *o = NULL;
	long long expires_in = 0;
	const char *type;

	memset(t, 0, sizeof(*t));
	if (json_parse_object(body.base, body.len, &o, err, errlen) < 0)
		return -EINVAL;
	if (json_get_string(o, "token_type", &type) == 0 && strcasecmp(type, "Bearer") != 0) {
		snprintf(err, errlen, "the token answer's token_type is %.32s, not Bearer", type);
		json_decref(o);
		return -EINVAL;
	}
	t->id_token = oidc_dup_member(o, "id_token");
	t->access_token = oidc_dup_member(o, "access_token");
	t->refresh_token = oidc_dup_member(o, "refresh_token");
	if (json_get_int(o, "expires_in", &expires_in) == 0 && expires_in > 0 &&
	    expires_in < 10LL * 365 * 86400)
		t->access_expires_at = now + expires_in;
	json_decref(o);
	if (t->access_token == NULL) {
		snprintf(err, errlen, "the token answer has no access_token");
		oidc_tokens_clear(t);
		return -EINVAL;
	}
	return 0;
}

static void oidc_free_secret(char **s)
{
	if (*s != NULL) {
		secret_wipe(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void oidc_tokens_clear(struct oidc_tokens *t)
{
	oidc_free_secret(&t->id_token);
	oidc_free_secret(&t->access_token);
	oidc_free_secret(&t->refresh_token);
	t->access_expires_at = 0;
}

/* The key of a session's tokens: HKDF of the cookie's value, which the store never sees. */
static int oidc_tokens_key(struct slice cookie, uint8_t key[SEAL_KEY_LEN])
{
	return seal_hkdf(cookie, OIDC_TOKENS_INFO, key);
}

int oidc_tokens_seal(struct slice cookie, const char *session_id, const struct oidc_tokens *t,
		     char **out)
{
	uint8_t key[SEAL_KEY_LEN];
	json_t *o = json_object();
	char *text = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (o != NULL) {
		if (t->id_token)
			json_object_set_new(o, "id_token", json_string(t->id_token));
		if (t->access_token)
			json_object_set_new(o, "access_token", json_string(t->access_token));
		if (t->refresh_token)
			json_object_set_new(o, "refresh_token", json_string(t->refresh_token));
		json_object_set_new(o, "access_expires_at", json_integer(t->access_expires_at));
		text = json_dumps(o, JSON_COMPACT);
	}
	if (text != NULL)
		rc = oidc_tokens_key(cookie, key);
	if (text != NULL && rc == 0)
		rc = seal_encrypt(key, slice_cstr(session_id), slice_cstr(text), out);
	secret_wipe(key, sizeof(key));
	if (text != NULL) {
		secret_wipe(text, strlen(text));
		free(text);
	}
	json_decref(o); /* the token copies in o are not wiped: jansson owns them */
	return rc;
}

int oidc_tokens_open(struct slice cookie, const char *session_id, const char *sealed,
		     struct oidc_tokens *t)
{
	uint8_t key[SEAL_KEY_LEN];
	char *text = NULL, err[64];
	size_t len = 0;
	int rc = oidc_tokens_key(cookie, key);

	memset(t, 0, sizeof(*t));
	if (rc == 0)
		rc = seal_decrypt(key, slice_cstr(session_id), slice_cstr(sealed), &text, &len);
	secret_wipe(key, sizeof(key));
	if (rc == 0) {
		rc = oidc_tokens_parse(slice_make(text, len), 0, t, err, sizeof(err));
		if (rc == 0) {
			json_t *o = NULL;
			long long at = 0;

			if (json_parse_object(text, len, &o, NULL, 0) == 0 &&
			    json_get_int(o, "access_expires_at", &at) == 0)
				t->access_expires_at = at;
			json_decref(o);
		}
	}
	if (text != NULL) {
		secret_wipe(text, len);
		free(text);
	}
	return rc;
}

/* ---- a person ---- */

void oidc_identity_clear(struct oidc_identity *id)
{
	free(id->subject);
	free(id->name);
	free(id->email);
	json_decref(id->groups);
	memset(id, 0, sizeof(*id));
}

/* The groups claim: an array of strings (others dropped) or one string. */
static json_t *oidc_groups_of(json_t *claims, const char *claim)
{
	json_t *g = claims ? json_object_get(claims, claim) : NULL, *out = json_array();
	size_t i;

	if (out == NULL)
		return NULL;
	if (json_is_string(g))
		json_array_append(out, g);
	for (i = 0; json_is_array(g) && i < json_array_size(g) && i < OIDC_GROUPS_MAX; i++)
		if (json_is_string(json_array_get(g, i)))
			json_array_append(out, json_array_get(g, i));
	return out;
}

void oidc_identity_from_claims(const struct oidc *o, json_t *claims, json_t *userinfo,
			       struct oidc_identity *id)
{
	const struct oidc_config *cfg = &o->srv->cfg.oidc;
	json_t *src = claims;

	memset(id, 0, sizeof(*id));
	if (src == NULL || (json_object_get(src, cfg->groups_claim) == NULL && userinfo != NULL))
		src = userinfo;
	id->subject = oidc_dup_member(claims ? claims : userinfo, "sub");
	id->email = oidc_dup_member(claims ? claims : userinfo, "email");
	if (id->email == NULL && userinfo != NULL)
		id->email = oidc_dup_member(userinfo, "email");
	id->name = oidc_dup_member(claims ? claims : userinfo, "name");
	if (id->name == NULL)
		id->name = oidc_dup_member(claims ? claims : userinfo, "preferred_username");
	id->groups = oidc_groups_of(src, cfg->groups_claim);
	id->role = oidc_rolemap_role(cfg, id->groups);
}

const char *oidc_identity_user(const struct oidc_identity *id)
{
	if (id->email != NULL && id->email[0])
		return id->email;
	if (id->name != NULL && id->name[0])
		return id->name;
	return id->subject != NULL ? id->subject : "";
}

/* The groups as JSON text cut to whole entries that fit out. */
static void oidc_groups_fit(const char *groups, char *out, size_t outlen)
{
	json_t *g = NULL, *fit = json_array();
	char *text;
	size_t i;

	snprintf(out, outlen, "[]");
	if (fit == NULL || groups == NULL ||
	    (g = json_loads(groups, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_array(g)) {
		json_decref(g);
		json_decref(fit);
		return;
	}
	for (i = 0; i < json_array_size(g); i++) {
		json_array_append(fit, json_array_get(g, i));
		text = json_dumps(fit, JSON_COMPACT);
		if (text == NULL || strlen(text) >= outlen) {
			free(text);
			break;
		}
		memcpy(out, text, strlen(text) + 1);
		free(text);
	}
	json_decref(g);
	json_decref(fit);
}

static const char *oidc_session_user(const struct store_session *x)
{
	if (x->email != NULL && x->email[0])
		return x->email;
	if (x->name != NULL && x->name[0])
		return x->name;
	return x->subject != NULL ? x->subject : "";
}

void oidc_principal_from_session(struct principal *p, const struct store_session *x)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_USER_SESSION;
	p->role = principal_role_parse(slice_cstr(x->role));
	snprintf(p->user, sizeof(p->user), "%s", oidc_session_user(x));
	/* It goes into log lines, audit rows and a header to the agent: printable only. */
	for (char *c = p->user; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	snprintf(p->id, sizeof(p->id), "%s (oidc)", p->user);
	snprintf(p->name, sizeof(p->name), "%.80s (oidc)", p->user);
	snprintf(p->subject, sizeof(p->subject), "%s", x->subject ? x->subject : "");
	snprintf(p->session_id, sizeof(p->session_id), "%s", x->id);
	oidc_groups_fit(x->groups, p->groups, sizeof(p->groups));
	p->expires_at = x->idle_expires_at < x->expires_at ? x->idle_expires_at : x->expires_at;
	p->refresh_at = x->access_expires_at ? x->access_expires_at - OIDC_REFRESH_MARGIN_S : 0;
}
