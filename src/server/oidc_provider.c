/* oidc_provider.c - discovery, JWKS and requests to the provider (see oidc_provider.h). */
#include "server/oidc_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/json_util.h"
#include "common/log.h"

struct oidc_waiter {
	struct oidc_waiter *next;
	oidc_provider_cb cb;
	void *arg;
};

struct oidc_provider {
	uv_loop_t *loop;
	const struct oidc_config *cfg;
	SSL_CTX *tls;
	struct oidc_provider_meta meta;
	struct oidc_jwks jwks;
	int loaded;	      /* meta and jwks are in */
	int busy;	      /* a discovery or JWKS fetch is in flight */
	int freed;	      /* oidc_provider_free ran while busy: the fetch's end frees */
	uint64_t jwks_at_ms;  /* when the JWKS was last asked for */
	uint64_t failed_at_ms;
	char why[512];
	struct oidc_waiter *waiters;
};

static SSL_CTX *oidc_tls_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	ok = ca_file[0] ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1
			: SSL_CTX_set_default_verify_paths(ctx) == 1;
	if (!ok) {
		snprintf(err, errlen, "cannot load the CA file %s", ca_file[0] ? ca_file : "(system)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* conn.c checks the host name when the context verifies the peer. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

struct oidc_provider *oidc_provider_new(uv_loop_t *loop, const struct oidc_config *cfg,
					char *err, size_t errlen)
{
	struct oidc_provider *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->loop = loop;
	p->cfg = cfg;
	p->tls = oidc_tls_new(cfg->ca_file, err, errlen);
	if (p->tls == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

static void oidc_waiters_free(struct oidc_waiter *w)
{
	while (w != NULL) {
		struct oidc_waiter *next = w->next;

		free(w);
		w = next;
	}
}

static void oidc_provider_destroy(struct oidc_provider *p)
{
	oidc_waiters_free(p->waiters);
	oidc_jwks_clear(&p->jwks);
	SSL_CTX_free(p->tls);
	free(p);
}

/*
 * A fetch cannot be cancelled through http_fetch, so a provider freed
 * while one is in flight is destroyed when it ends, without calling its
 * waiters (whose owners are gone).
 */
void oidc_provider_free(struct oidc_provider *p)
{
	if (p == NULL)
		return;
	if (p->busy)
		p->freed = 1;
	else
		oidc_provider_destroy(p);
}

const struct oidc_provider_meta *oidc_provider_meta(const struct oidc_provider *p)
{
	return &p->meta;
}

const struct oidc_jwks *oidc_provider_jwks(const struct oidc_provider *p)
{
	return &p->jwks;
}

/* ---- requests ---- */

int oidc_provider_fetch(struct oidc_provider *p, const char *url, const char *method,
			const struct http_header *hdrs, size_t n, const void *body, size_t len,
			http_fetch_cb cb, void *arg)
{
	struct http_client_opts o;
	struct oidc_url u;
	char why[256];

	if (oidc_issuer_check(url, why, sizeof(why)) < 0 || oidc_url_parse(url, &u) < 0)
		return -EINVAL;
	memset(&o, 0, sizeof(o));
	o.host = u.host;
	o.port = u.port;
	o.tls = u.tls ? p->tls : NULL;
	o.connect_timeout_ms = OIDC_FETCH_TIMEOUT_MS;
	o.response_timeout_ms = OIDC_FETCH_TIMEOUT_MS;
	o.idle_timeout_ms = OIDC_FETCH_TIMEOUT_MS;
	return http_fetch(p->loop, &o, method, u.target, hdrs, n, body, len, OIDC_DOC_MAX, cb, arg);
}

/* ---- discovery ---- */

static int oidc_meta_url(json_t *doc, const char *key, int required, char *out, size_t outlen,
			 char *err, size_t errlen)
{
	const char *v;
	char why[256];

	if (json_get_string(doc, key, &v) != 0) {
		if (!required)
			return 0;
		snprintf(err, errlen, "the discovery document has no %s", key);
		return -EINVAL;
	}
	if (strlen(v) >= outlen || oidc_issuer_check(v, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "the discovery document's %s is not usable: %.200s", key, v);
		return -EINVAL;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int oidc_provider_meta_parse(struct slice doc, const char *expect_issuer,
			     struct oidc_provider_meta *m, char *err, size_t errlen)
{
	json_t *d = NULL;
	const char *iss;
	int rc;

	memset(m, 0, sizeof(*m));
	if (json_parse_object(doc.base, doc.len, &d, err, errlen) < 0)
		return -EINVAL;
	if (json_get_string(d, "issuer", &iss) != 0 || strcmp(iss, expect_issuer) != 0) {
		snprintf(err, errlen, "the discovery document's issuer is not %.200s",
			 expect_issuer);
		json_decref(d);
		return -EINVAL;
	}
	snprintf(m->issuer, sizeof(m->issuer), "%s", iss);
	rc = oidc_meta_url(d, "authorization_endpoint", 1, m->authorization_endpoint,
			   sizeof(m->authorization_endpoint), err, errlen);
	if (rc == 0)
		rc = oidc_meta_url(d, "token_endpoint", 1, m->token_endpoint,
				   sizeof(m->token_endpoint), err, errlen);
	if (rc == 0)
		rc = oidc_meta_url(d, "jwks_uri", 1, m->jwks_uri, sizeof(m->jwks_uri), err, errlen);
	if (rc == 0)
		rc = oidc_meta_url(d, "userinfo_endpoint", 0, m->userinfo_endpoint,
				   sizeof(m->userinfo_endpoint), err, errlen);
	if (rc == 0)
		rc = oidc_meta_url(d, "end_session_endpoint", 0, m->end_session_endpoint,
				   sizeof(m->end_session_endpoint), err, errlen);
	if (rc == 0)
		rc = oidc_meta_url(d, "device_authorization_endpoint", 0,
				   m->device_authorization_endpoint,
				   sizeof(m->device_authorization_endpoint), err, errlen);
	m->iss_parameter_supported =
	    json_is_true(json_object_get(d, "authorization_response_iss_parameter_supported"));
	json_decref(d);
	return rc;
}

/* Calls and frees every waiter (the list is taken first: a callback may add one). */
static void oidc_provider_settle(struct oidc_provider *p, int err)
{
	struct oidc_waiter *w = p->waiters, *next;

	if (p->freed) {
		oidc_provider_destroy(p);
		return;
	}
	p->waiters = NULL;
	p->busy = 0;
	if (err) {
		p->failed_at_ms = uv_now(p->loop);
		LOG_WARN("identity provider %s: %s", p->cfg->issuer, p->why);
	}
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, err, err ? p->why : NULL);
		free(w);
	}
}

/* 0, or -EIO with p->why set, for an answer that is no 200. */
static int oidc_provider_answer(struct oidc_provider *p, const struct http_fetch_result *res,
				const char *what)
{
	if (res->err != 0) {
		snprintf(p->why, sizeof(p->why), "cannot fetch its %s: %s", what,
			 strerror(-res->err));
		return -EIO;
	}
	if (res->status != 200) {
		snprintf(p->why, sizeof(p->why), "its %s answered %d", what, res->status);
		return -EIO;
	}
	return 0;
}

static void oidc_jwks_done(struct http_fetch_result *res, void *arg)
{
	struct oidc_provider *p = arg;
	struct oidc_jwks ks;
	char why[256];
	int rc;

	memset(&ks, 0, sizeof(ks));
	rc = oidc_provider_answer(p, res, "JWKS");
	if (rc == 0 && oidc_jwks_parse(slice_make(res->body, res->body_len), &ks, why,
				       sizeof(why)) < 0) {
		snprintf(p->why, sizeof(p->why), "its JWKS is not usable: %s", why);
		rc = -EIO;
	}
	if (rc == 0) {
		oidc_jwks_clear(&p->jwks);
		p->jwks = ks;
		p->loaded = 1;
		LOG_INFO("identity provider %s: %zu signing keys", p->cfg->issuer, ks.n);
	}
	oidc_provider_settle(p, rc);
}

static int oidc_jwks_start(struct oidc_provider *p)
{
	int rc;

	rc = oidc_provider_fetch(p, p->meta.jwks_uri, "GET", NULL, 0, NULL, 0, oidc_jwks_done, p);
	if (rc < 0)
		snprintf(p->why, sizeof(p->why), "cannot fetch its JWKS: %s", strerror(-rc));
	return rc;
}

static void oidc_discovery_done(struct http_fetch_result *res, void *arg)
{
	struct oidc_provider *p = arg;
	char why[400];
	int rc = oidc_provider_answer(p, res, "discovery document");

	if (rc == 0 && oidc_provider_meta_parse(slice_make(res->body, res->body_len),
						p->cfg->issuer, &p->meta, why, sizeof(why)) < 0) {
		snprintf(p->why, sizeof(p->why), "%s", why);
		rc = -EIO;
	}
	if (rc == 0)
		rc = oidc_jwks_start(p);
	if (rc < 0)
		oidc_provider_settle(p, rc);
}

static int oidc_discovery_start(struct oidc_provider *p)
{
	char url[OIDC_URL_MAX + 64];
	size_t len = strlen(p->cfg->issuer);
	int rc;

	while (len > 0 && p->cfg->issuer[len - 1] == '/')
		len--;
	if (snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)len,
		     p->cfg->issuer) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	rc = oidc_provider_fetch(p, url, "GET", NULL, 0, NULL, 0, oidc_discovery_done, p);
	if (rc < 0)
		snprintf(p->why, sizeof(p->why), "cannot fetch its discovery document: %s",
			 strerror(-rc));
	return rc;
}

static int oidc_provider_wait(struct oidc_provider *p, oidc_provider_cb cb, void *arg)
{
	struct oidc_waiter *w = calloc(1, sizeof(*w)), **pp = &p->waiters;

	if (w == NULL)
		return -ENOMEM;
	w->cb = cb;
	w->arg = arg;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = w;
	return 0;
}

int oidc_provider_ready(struct oidc_provider *p, oidc_provider_cb cb, void *arg)
{
	int rc;

	if (p->loaded && !p->busy) {
		cb(arg, 0, NULL);
		return 0;
	}
	rc = oidc_provider_wait(p, cb, arg);
	if (rc < 0 || p->busy)
		return rc;
	p->busy = 1;
	rc = p->loaded ? oidc_jwks_start(p) : oidc_discovery_start(p);
	if (rc < 0)
		oidc_provider_settle(p, rc); /* calls cb */
	return 0;
}

int oidc_provider_refetch_jwks(struct oidc_provider *p, oidc_provider_cb cb, void *arg)
{
	if (!p->busy && p->jwks_at_ms != 0 && uv_now(p->loop) - p->jwks_at_ms < OIDC_JWKS_REFETCH_MS)
		return -EAGAIN;
	p->loaded = p->loaded && p->meta.jwks_uri[0] != '\0';
	if (p->busy)
		return oidc_provider_wait(p, cb, arg);
	if (!p->loaded)
		return oidc_provider_ready(p, cb, arg);
	p->busy = 1;
	p->jwks_at_ms = uv_now(p->loop); /* only refetches count: a first load is always due */
	if (oidc_provider_wait(p, cb, arg) < 0 || oidc_jwks_start(p) < 0)
		oidc_provider_settle(p, -EIO);
	return 0;
}
