/*
 * oidc_provider.h - the identity provider as lxcm sees it: its discovery
 * document, its signing keys (JWKS), and requests to its endpoints, all
 * over the non-blocking HTTP client (never blocking the loop), with TLS
 * verified against --oidc-ca-file or the system's trust store.
 *
 * The discovery document and the JWKS are fetched at start and, if that
 * failed, again when a login needs them. A token signed by a key the JWKS
 * does not have makes one refetch of the JWKS (a provider that rotated its
 * keys), at most once every OIDC_JWKS_REFETCH_MS, so tokens with made-up
 * kids cannot make lxcm hammer the provider.
 *
 * Loop thread only.
 */
#ifndef LXCM_OIDC_PROVIDER_H
#define LXCM_OIDC_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "net/http_client.h"
#include "server/oidc_config.h"
#include "server/oidc_jwt.h"

#define OIDC_DOC_MAX (256 * 1024)      /* discovery, token, userinfo answers */
#define OIDC_JWKS_REFETCH_MS 10000     /* at most one JWKS refetch per this */
#define OIDC_FETCH_TIMEOUT_MS 10000    /* connect, and answer, per request */

struct oidc_provider_meta {
	char issuer[OIDC_URL_MAX];
	char authorization_endpoint[OIDC_URL_MAX];
	char token_endpoint[OIDC_URL_MAX];
	char jwks_uri[OIDC_URL_MAX];
	char userinfo_endpoint[OIDC_URL_MAX];		  /* "" when none */
	char end_session_endpoint[OIDC_URL_MAX];	  /* "" when none */
	char device_authorization_endpoint[OIDC_URL_MAX]; /* "" when none */
	int iss_parameter_supported;			  /* RFC 9207 */
};

/* err 0: ready (or refetched); otherwise why says what went wrong. */
typedef void (*oidc_provider_cb)(void *arg, int err, const char *why);

struct oidc_provider;

/* A provider for cfg (kept by pointer). NULL with why in err (the CA file). */
struct oidc_provider *oidc_provider_new(uv_loop_t *loop, const struct oidc_config *cfg,
					char *err, size_t errlen);
/* Cancels what is in flight (waiters are not called) and frees. NULL ok. */
void oidc_provider_free(struct oidc_provider *p);
/*
 * Calls cb(arg, 0, NULL) once the discovery document and the JWKS are in,
 * at once if they are; cb(arg, err, why) if they cannot be had. 0, or
 * -ENOMEM (cb will not run).
 */
int oidc_provider_ready(struct oidc_provider *p, oidc_provider_cb cb, void *arg);
/*
 * Fetches the JWKS again: cb(arg, 0, NULL) when the new keys are in;
 * -EAGAIN at once (cb will not run) when the last fetch is too recent.
 */
int oidc_provider_refetch_jwks(struct oidc_provider *p, oidc_provider_cb cb, void *arg);
const struct oidc_provider_meta *oidc_provider_meta(const struct oidc_provider *p);
const struct oidc_jwks *oidc_provider_jwks(const struct oidc_provider *p);
/*
 * A request to url (one of the provider's endpoints: https, or http on
 * loopback), answered through http_fetch's callback with at most
 * OIDC_DOC_MAX bytes. 0, -EINVAL (url), or http_fetch's code.
 */
int oidc_provider_fetch(struct oidc_provider *p, const char *url, const char *method,
			const struct http_header *hdrs, size_t n, const void *body, size_t len,
			http_fetch_cb cb, void *arg);

/*
 * Parses a discovery document (pure; test_oidc.c). The issuer in it must be
 * exactly expect_issuer and every endpoint must pass oidc_issuer_check.
 * 0, or -EINVAL with why in err.
 */
int oidc_provider_meta_parse(struct slice doc, const char *expect_issuer,
			     struct oidc_provider_meta *out, char *err, size_t errlen);

#endif
