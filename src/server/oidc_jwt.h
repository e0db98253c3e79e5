/*
 * oidc_jwt.h - the provider's signing keys (a JWKS) and the ID tokens they
 * sign: pure functions over bytes, no loop, no I/O (fuzz/fuzz_jwt.c).
 *
 * Only asymmetric signatures are accepted, each bound to the key type it
 * needs: RS256 (RSA, at least 2048 bits), ES256 (EC P-256) and EdDSA
 * (Ed25519). The algorithm a token names must be the one of the key its
 * `kid` names, so "alg: none" and HS256 keyed with a public key (the
 * classic confusions) find no key to verify with. A JWKS entry of another
 * type, use or curve is skipped, not an error.
 */
#ifndef LXCM_OIDC_JWT_H
#define LXCM_OIDC_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/slice.h"

#define OIDC_JWKS_MAX_KEYS 32
#define OIDC_JWKS_MAX_BYTES (256 * 1024) /* the JWKS document */
#define OIDC_JWT_MAX_BYTES (32 * 1024)	 /* one token */
#define OIDC_KID_MAX 128
#define OIDC_JWT_LEEWAY_S 60 /* clock skew allowed on exp, iat, nbf */

enum oidc_jwt_alg {
	OIDC_ALG_UNKNOWN = 0,
	OIDC_ALG_RS256,
	OIDC_ALG_ES256,
	OIDC_ALG_EDDSA,
};

struct oidc_jwk {
	char kid[OIDC_KID_MAX]; /* "" when the key has none */
	enum oidc_jwt_alg alg;
	EVP_PKEY *key;
};

struct oidc_jwks {
	struct oidc_jwk keys[OIDC_JWKS_MAX_KEYS];
	size_t n;
};

/*
 * Parses a JWKS document ({"keys": [...]}) into ks (which it clears first).
 * Keys lxcm cannot use are skipped; past OIDC_JWKS_MAX_KEYS usable keys the
 * rest are too. 0 (possibly with no key), or -EINVAL with why in err.
 */
int oidc_jwks_parse(struct slice doc, struct oidc_jwks *ks, char *err, size_t errlen);
/* Frees the keys; ks may be reused. */
void oidc_jwks_clear(struct oidc_jwks *ks);

/* What an ID token must say. */
struct oidc_jwt_expect {
	const char *issuer;    /* iss, exactly */
	const char *client_id; /* in aud; azp, when present or aud has several */
	const char *nonce;     /* nonce, exactly; NULL: not checked (a refresh) */
	int64_t now;	       /* Unix seconds */
};

/*
 * Verifies a compact JWS ID token against ks and x. 0 with *claims (a new
 * reference) set; -ENOKEY when no key of ks has the token's kid and
 * algorithm (the caller may fetch the JWKS again, once); -EINVAL for every
 * other refusal. err gets a one-line reason fit for a log and a 401
 * ("token expired at ...", "iss is ..., expected ...").
 */
int oidc_jwt_verify(struct slice token, const struct oidc_jwks *ks,
		    const struct oidc_jwt_expect *x, json_t **claims, char *err, size_t errlen);

/* "RS256", "ES256", "EdDSA", or OIDC_ALG_UNKNOWN. */
enum oidc_jwt_alg oidc_jwt_alg_parse(const char *name);

#endif
