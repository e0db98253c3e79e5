/* oidc_jwt.c - JWKS keys and ID token verification (see oidc_jwt.h). */
#include "server/oidc_jwt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include "common/base64.h"
#include "common/json_util.h"
#include "common/secret.h"

#define OIDC_JWK_FIELD_MAX 1024 /* bytes of a decoded n, e, x or y: RSA up to 8192 bits */

static void jwt_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void jwt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

enum oidc_jwt_alg oidc_jwt_alg_parse(const char *name)
{
	if (name == NULL)
		return OIDC_ALG_UNKNOWN;
	if (strcmp(name, "RS256") == 0)
		return OIDC_ALG_RS256;
	if (strcmp(name, "ES256") == 0)
		return OIDC_ALG_ES256;
	if (strcmp(name, "EdDSA") == 0)
		return OIDC_ALG_EDDSA;
	return OIDC_ALG_UNKNOWN;
}

/* ---- keys ---- */

/* Decodes the base64url string member name of jwk into out (cap OIDC_JWK_FIELD_MAX). */
static int jwk_bytes(json_t *jwk, const char *name, unsigned char *out, size_t *len)
{
	const char *v;
	size_t vlen;

	if (json_get_string(jwk, name, &v) != 0)
		return -EINVAL;
	vlen = strlen(v);
	if (vlen == 0 || base64_decoded_max(vlen + 3) > OIDC_JWK_FIELD_MAX)
		return -EINVAL;
	return base64url_decode(v, vlen, out, len);
}

static EVP_PKEY *jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *key = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
	unsigned char n[OIDC_JWK_FIELD_MAX], e[OIDC_JWK_FIELD_MAX];
	size_t nlen, elen;
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *key = NULL;

	if (jwk_bytes(jwk, "n", n, &nlen) < 0 || jwk_bytes(jwk, "e", e, &elen) < 0 ||
	    elen > 8)
		return NULL;
	bld = OSSL_PARAM_BLD_new();
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	if (bld != NULL && bn != NULL && be != NULL && BN_num_bits(bn) >= 2048 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		key = jwk_fromdata("RSA", bld);
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	return key;
}

static EVP_PKEY *jwk_ec(json_t *jwk)
{
	unsigned char x[OIDC_JWK_FIELD_MAX], y[OIDC_JWK_FIELD_MAX], pub[65];
	size_t xlen, ylen;
	const char *crv;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *key = NULL;

	if (json_get_string(jwk, "crv", &crv) != 0 || strcmp(crv, "P-256") != 0 ||
	    jwk_bytes(jwk, "x", x, &xlen) < 0 || jwk_bytes(jwk, "y", y, &ylen) < 0 ||
	    xlen != 32 || ylen != 32)
		return NULL;
	pub[0] = 0x04; /* uncompressed point */
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
		key = jwk_fromdata("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return key;
}

static EVP_PKEY *jwk_okp(json_t *jwk)
{
	unsigned char x[OIDC_JWK_FIELD_MAX];
	size_t xlen;
	const char *crv;

	if (json_get_string(jwk, "crv", &crv) != 0 || strcmp(crv, "Ed25519") != 0 ||
	    jwk_bytes(jwk, "x", x, &xlen) < 0 || xlen != 32)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
}

/*
 * One JWKS entry: 0 with *out filled, or -EINVAL for a key lxcm does not
 * use (wrong type, curve, use, or an alg that disagrees with its type).
 */
static int jwk_parse(json_t *jwk, struct oidc_jwk *out)
{
	const char *kty, *use, *alg, *kid = "";
	enum oidc_jwt_alg a;

	if (!json_is_object(jwk) || json_get_string(jwk, "kty", &kty) != 0)
		return -EINVAL;
	if (json_get_string(jwk, "use", &use) == 0 && strcmp(use, "sig") != 0)
		return -EINVAL;
	if (json_object_get(jwk, "kid") != NULL &&
	    (json_get_string(jwk, "kid", &kid) != 0 || strlen(kid) >= OIDC_KID_MAX))
		return -EINVAL;
	if (strcmp(kty, "RSA") == 0)
		a = OIDC_ALG_RS256;
	else if (strcmp(kty, "EC") == 0)
		a = OIDC_ALG_ES256;
	else if (strcmp(kty, "OKP") == 0)
		a = OIDC_ALG_EDDSA;
	else
		return -EINVAL;
	if (json_object_get(jwk, "alg") != NULL &&
	    (json_get_string(jwk, "alg", &alg) != 0 || oidc_jwt_alg_parse(alg) != a))
		return -EINVAL;
	out->key = a == OIDC_ALG_RS256 ? jwk_rsa(jwk) : a == OIDC_ALG_ES256 ? jwk_ec(jwk) : jwk_okp(jwk);
	if (out->key == NULL)
		return -EINVAL;
	out->alg = a;
	snprintf(out->kid, sizeof(out->kid), "%s", kid);
	return 0;
}

int oidc_jwks_parse(struct slice doc, struct oidc_jwks *ks, char *err, size_t errlen)
{
	json_t *root = NULL, *keys;
	size_t i;
	int rc;

	oidc_jwks_clear(ks);
	if (doc.len > OIDC_JWKS_MAX_BYTES) {
		jwt_err(err, errlen, "the JWKS is over %d bytes", OIDC_JWKS_MAX_BYTES);
		return -EINVAL;
	}
	rc = json_parse_object(doc.base, doc.len, &root, err, errlen);
	if (rc < 0)
		return -EINVAL;
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		jwt_err(err, errlen, "the JWKS has no \"keys\" array");
		json_decref(root);
		return -EINVAL;
	}
	for (i = 0; i < json_array_size(keys) && ks->n < OIDC_JWKS_MAX_KEYS; i++)
		if (jwk_parse(json_array_get(keys, i), &ks->keys[ks->n]) == 0)
			ks->n++;
	json_decref(root);
	return 0;
}

void oidc_jwks_clear(struct oidc_jwks *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].key);
	memset(ks, 0, sizeof(*ks));
}

/* ---- signatures ---- */

/* ES256 signs r || s (32 bytes each); OpenSSL verifies DER. A malloc'd DER, or NULL. */
static unsigned char *jwt_es256_der(const unsigned char *sig, size_t len, size_t *derlen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	int n;

	if (len != 64 || es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	n = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return NULL;
	*derlen = (size_t)n;
	return der;
}

/* 1 when sig is key's signature of data by the key's algorithm, 0 otherwise. */
static int jwt_sig_ok(const struct oidc_jwk *k, struct slice data, const unsigned char *sig,
		      size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = k->alg == OIDC_ALG_EDDSA ? NULL : EVP_sha256();
	unsigned char *der = NULL;
	int ok = 0;

	if (k->alg == OIDC_ALG_ES256) {
		der = jwt_es256_der(sig, siglen, &siglen);
		sig = der;
	}
	if (ctx != NULL && sig != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->key) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)data.base,
				      data.len) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---- tokens ---- */

/* Decodes one base64url part of a token into a JSON object. */
static json_t *jwt_part_json(struct slice part, const char *what, char *err, size_t errlen)
{
	unsigned char *raw = malloc(base64_decoded_max(part.len + 3) + 1);
	json_t *obj = NULL;
	size_t len = 0;

	if (raw == NULL)
		return NULL;
	if (base64url_decode(part.base, part.len, raw, &len) < 0 ||
	    json_parse_object((const char *)raw, len, &obj, NULL, 0) < 0)
		jwt_err(err, errlen, "the token's %s is not base64url JSON", what);
	free(raw);
	return obj;
}

/* The key for the header's kid and alg, or NULL. */
static const struct oidc_jwk *jwt_key(const struct oidc_jwks *ks, const char *kid,
				      enum oidc_jwt_alg alg)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->keys[i].alg == alg && strcmp(ks->keys[i].kid, kid) == 0)
			return &ks->keys[i];
	return NULL;
}

/* Checks the header; *key is the key to verify with. 0, -ENOKEY or -EINVAL. */
static int jwt_header(json_t *h, const struct oidc_jwks *ks, const struct oidc_jwk **key,
		      char *err, size_t errlen)
{
	const char *alg = NULL, *kid = "";
	enum oidc_jwt_alg a;

	if (json_get_string(h, "alg", &alg) != 0) {
		jwt_err(err, errlen, "the token's header has no alg");
		return -EINVAL;
	}
	a = oidc_jwt_alg_parse(alg);
	if (a == OIDC_ALG_UNKNOWN) {
		jwt_err(err, errlen, "the token's algorithm %.32s is not accepted (RS256, ES256 "
				     "and EdDSA only)", alg);
		return -EINVAL;
	}
	if (json_object_get(h, "crit") != NULL) {
		jwt_err(err, errlen, "the token's header has crit, which lxcm does not support");
		return -EINVAL;
	}
	if (json_object_get(h, "kid") != NULL &&
	    (json_get_string(h, "kid", &kid) != 0 || strlen(kid) >= OIDC_KID_MAX)) {
		jwt_err(err, errlen, "the token's kid is not a short string");
		return -EINVAL;
	}
	*key = jwt_key(ks, kid, a);
	if (*key == NULL) {
		jwt_err(err, errlen, "no %s key with kid \"%.64s\" in the provider's JWKS", alg, kid);
		return -ENOKEY;
	}
	return 0;
}

/* Integer claim name, required or not: 1 present, 0 absent, -1 not an integer. */
static int jwt_int_claim(json_t *c, const char *name, long long *out)
{
	json_t *v = json_object_get(c, name);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 1;
}

static int jwt_str_eq(json_t *c, const char *name, const char *want)
{
	const char *v;

	return json_get_string(c, name, &v) == 0 && strcmp(v, want) == 0;
}

/* aud holds client_id; azp is client_id when present, and present when aud has several. */
static int jwt_audience(json_t *c, const char *client_id, char *err, size_t errlen)
{
	json_t *aud = json_object_get(c, "aud");
	int found = 0, many = 0;
	size_t i;

	if (json_is_string(aud)) {
		found = strcmp(json_string_value(aud), client_id) == 0;
	} else if (json_is_array(aud)) {
		many = json_array_size(aud) > 1;
		for (i = 0; i < json_array_size(aud); i++) {
			json_t *a = json_array_get(aud, i);

			found |= json_is_string(a) && strcmp(json_string_value(a), client_id) == 0;
		}
	}
	if (!found) {
		jwt_err(err, errlen, "the token's aud does not name this client (%.64s)", client_id);
		return -EINVAL;
	}
	if ((many || json_object_get(c, "azp") != NULL) && !jwt_str_eq(c, "azp", client_id)) {
		jwt_err(err, errlen, "the token's azp is not this client (%.64s)", client_id);
		return -EINVAL;
	}
	return 0;
}

static int jwt_times(json_t *c, int64_t now, char *err, size_t errlen)
{
	long long exp = 0, iat = 0, nbf = 0;

	if (jwt_int_claim(c, "exp", &exp) != 1 || jwt_int_claim(c, "iat", &iat) != 1) {
		jwt_err(err, errlen, "the token lacks an integer exp or iat");
		return -EINVAL;
	}
	if (now >= exp + OIDC_JWT_LEEWAY_S) {
		jwt_err(err, errlen, "the token expired at %lld (now %lld)", exp, (long long)now);
		return -EINVAL;
	}
	if (iat > now + OIDC_JWT_LEEWAY_S) {
		jwt_err(err, errlen, "the token was issued in the future (iat %lld, now %lld)", iat,
			(long long)now);
		return -EINVAL;
	}
	if (jwt_int_claim(c, "nbf", &nbf) < 0 ||
	    (json_object_get(c, "nbf") != NULL && nbf > now + OIDC_JWT_LEEWAY_S)) {
		jwt_err(err, errlen, "the token is not valid yet (nbf)");
		return -EINVAL;
	}
	return 0;
}

static int jwt_claims(json_t *c, const struct oidc_jwt_expect *x, char *err, size_t errlen)
{
	const char *v = NULL;
	int rc;

	if (!jwt_str_eq(c, "iss", x->issuer)) {
		json_get_string(c, "iss", &v);
		jwt_err(err, errlen, "the token's iss is %.128s, expected %.128s", v ? v : "(none)",
			x->issuer);
		return -EINVAL;
	}
	if (json_get_string(c, "sub", &v) != 0 || *v == '\0') {
		jwt_err(err, errlen, "the token has no sub");
		return -EINVAL;
	}
	rc = jwt_audience(c, x->client_id, err, errlen);
	if (rc == 0)
		rc = jwt_times(c, x->now, err, errlen);
	if (rc == 0 && x->nonce != NULL &&
	    (json_get_string(c, "nonce", &v) != 0 ||
	     !secret_equal(v, strlen(v), x->nonce, strlen(x->nonce)))) {
		jwt_err(err, errlen, "the token's nonce is not the one of this login");
		rc = -EINVAL;
	}
	return rc;
}

/* Splits a compact JWS into its three parts. 0 or -EINVAL. */
static int jwt_split(struct slice t, struct slice part[3])
{
	size_t start = 0, n = 0;

	for (size_t i = 0; i <= t.len; i++) {
		if (i < t.len && t.base[i] != '.')
			continue;
		if (n == 3)
			return -EINVAL;
		part[n++] = slice_make(t.base + start, i - start);
		start = i + 1;
	}
	return n == 3 && part[0].len > 0 && part[1].len > 0 ? 0 : -EINVAL;
}

int oidc_jwt_verify(struct slice token, const struct oidc_jwks *ks,
		    const struct oidc_jwt_expect *x, json_t **claims, char *err, size_t errlen)
{
	struct slice part[3];
	const struct oidc_jwk *key = NULL;
	json_t *h = NULL, *c = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc = -EINVAL;

	*claims = NULL;
	if (token.len > OIDC_JWT_MAX_BYTES || jwt_split(token, part) < 0) {
		jwt_err(err, errlen, "not a signed JWT (three base64url parts)");
		return -EINVAL;
	}
	h = jwt_part_json(part[0], "header", err, errlen);
	if (h == NULL)
		goto out;
	rc = jwt_header(h, ks, &key, err, errlen);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	sig = malloc(base64_decoded_max(part[2].len + 3) + 1);
	if (sig == NULL || base64url_decode(part[2].base, part[2].len, sig, &siglen) < 0 ||
	    !jwt_sig_ok(key, slice_make(token.base, part[0].len + 1 + part[1].len), sig, siglen)) {
		jwt_err(err, errlen, "the token's signature does not verify with the provider's key");
		goto out;
	}
	c = jwt_part_json(part[1], "payload", err, errlen);
	if (c == NULL)
		goto out;
	rc = jwt_claims(c, x, err, errlen);
	if (rc == 0) {
		*claims = c;
		c = NULL;
	}
out:
	free(sig);
	json_decref(h);
	json_decref(c);
	return rc;
}
