/*
 * oidc_identify.c - from the provider's token answer to a person: the ID
 * token verified (one JWKS refetch for an unknown kid), the groups from the
 * ID token or else the userinfo endpoint, the role from the role map. One
 * path for the login and for every refresh, so a refresh checks what a
 * login checks (see oidc.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_util.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/oidc.h"
#include "server/server.h"

struct oidc_identify {
	struct oidc *o;
	char *id_token;
	char *access_token;
	char *nonce;	      /* NULL on a refresh */
	char *expect_subject; /* NULL at a login */
	json_t *claims;
	int refetched;
	oidc_identify_cb cb;
	void *arg;
};

static char *oidc_identify_dup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void oidc_identify_free(struct oidc_identify *x)
{
	if (x->id_token != NULL)
		secret_wipe(x->id_token, strlen(x->id_token));
	if (x->access_token != NULL)
		secret_wipe(x->access_token, strlen(x->access_token));
	free(x->id_token);
	free(x->access_token);
	free(x->nonce);
	free(x->expect_subject);
	json_decref(x->claims);
	free(x);
}

static void oidc_identify_fail(struct oidc_identify *x, const char *why)
{
	x->cb(x->arg, -EACCES, why, NULL);
	oidc_identify_free(x);
}

static void oidc_identify_finish(struct oidc_identify *x, json_t *userinfo)
{
	struct oidc_identity id;

	oidc_identity_from_claims(x->o, x->claims, userinfo, &id);
	if (id.subject == NULL || id.groups == NULL) {
		oidc_identity_clear(&id);
		oidc_identify_fail(x, "the provider named no subject");
		return;
	}
	x->cb(x->arg, 0, NULL, &id);
	oidc_identity_clear(&id);
	oidc_identify_free(x);
}

/* The subject the answer must be about: the ID token's, or the session's. */
static const char *oidc_identify_subject(const struct oidc_identify *x)
{
	const char *sub = NULL;

	if (x->claims != NULL && json_get_string(x->claims, "sub", &sub) == 0)
		return sub;
	return x->expect_subject;
}

static void oidc_userinfo_done(struct http_fetch_result *res, void *arg)
{
	struct oidc_identify *x = arg;
	json_t *u = NULL;
	const char *sub = NULL, *want = oidc_identify_subject(x);

	if (res->err != 0 || res->status != 200 ||
	    json_parse_object(res->body, res->body_len, &u, NULL, 0) < 0) {
		oidc_identify_fail(x, "the provider's userinfo endpoint did not answer with JSON");
		return;
	}
	if (json_get_string(u, "sub", &sub) != 0 || want == NULL || strcmp(sub, want) != 0) {
		json_decref(u);
		oidc_identify_fail(x, "the userinfo answer is about another subject");
		return;
	}
	oidc_identify_finish(x, u);
	json_decref(u);
}

static void oidc_identify_userinfo(struct oidc_identify *x)
{
	const struct oidc_provider_meta *m = oidc_provider_meta(x->o->prov);
	struct http_header h[2];
	char auth[OIDC_DOC_MAX / 16];
	int n;

	n = snprintf(auth, sizeof(auth), "Bearer %s", x->access_token ? x->access_token : "");
	if (n < 0 || (size_t)n >= sizeof(auth)) {
		oidc_identify_fail(x, "the access token is too long");
		return;
	}
	h[0] = (struct http_header){LIT("Authorization"), slice_make(auth, (size_t)n)};
	h[1] = (struct http_header){LIT("Accept"), LIT("application/json")};
	if (oidc_provider_fetch(x->o->prov, m->userinfo_endpoint, "GET", h, 2, NULL, 0,
				oidc_userinfo_done, x) < 0)
		oidc_identify_fail(x, "cannot reach the provider's userinfo endpoint");
	secret_wipe(auth, sizeof(auth));
}

/* After the ID token (if any) checked out: groups from it, else from userinfo. */
static void oidc_identify_groups(struct oidc_identify *x)
{
	const char *claim = x->o->srv->cfg.oidc.groups_claim;
	const char *uinfo = oidc_provider_meta(x->o->prov)->userinfo_endpoint;

	if (x->claims != NULL && (json_object_get(x->claims, claim) != NULL || uinfo[0] == '\0')) {
		oidc_identify_finish(x, NULL);
		return;
	}
	if (uinfo[0] == '\0' || x->access_token == NULL) {
		oidc_identify_fail(x, "the answer has no ID token and the provider no userinfo");
		return;
	}
	oidc_identify_userinfo(x);
}

static void oidc_identify_verify(struct oidc_identify *x);

static void oidc_identify_jwks(void *arg, int err, const char *why)
{
	struct oidc_identify *x = arg;
	char msg[600];

	if (err != 0) {
		snprintf(msg, sizeof(msg), "the provider's keys could not be fetched again: %s",
			 why ? why : "error");
		oidc_identify_fail(x, msg);
		return;
	}
	oidc_identify_verify(x);
}

static void oidc_identify_verify(struct oidc_identify *x)
{
	const struct oidc_config *cfg = &x->o->srv->cfg.oidc;
	struct oidc_jwt_expect e = {cfg->issuer, cfg->client_id, x->nonce, time_now()};
	char why[400], msg[500];
	const char *sub;
	int rc;

	rc = oidc_jwt_verify(slice_cstr(x->id_token), oidc_provider_jwks(x->o->prov), &e,
			     &x->claims, why, sizeof(why));
	if (rc == -ENOKEY && !x->refetched) {
		/* Maybe the provider rotated its keys: fetch them once more, if not too soon. */
		x->refetched = 1;
		if (oidc_provider_refetch_jwks(x->o->prov, oidc_identify_jwks, x) == 0)
			return;
	}
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "the ID token was refused: %s", why);
		oidc_identify_fail(x, msg);
		return;
	}
	if (x->expect_subject != NULL && (json_get_string(x->claims, "sub", &sub) != 0 ||
					  strcmp(sub, x->expect_subject) != 0)) {
		oidc_identify_fail(x, "the refreshed ID token is about another subject");
		return;
	}
	oidc_identify_groups(x);
}

int oidc_identify(struct oidc *o, const struct oidc_tokens *t, const char *nonce,
		  const char *expect_subject, oidc_identify_cb cb, void *arg)
{
	struct oidc_identify *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -ENOMEM;
	x->o = o;
	x->cb = cb;
	x->arg = arg;
	x->id_token = oidc_identify_dup(t->id_token);
	x->access_token = oidc_identify_dup(t->access_token);
	x->nonce = oidc_identify_dup(nonce);
	x->expect_subject = oidc_identify_dup(expect_subject);
	if (t->id_token != NULL) {
		oidc_identify_verify(x);
	} else if (nonce != NULL) {
		oidc_identify_fail(x, "the provider's answer has no ID token");
	} else {
		oidc_identify_groups(x);
	}
	return 0;
}
