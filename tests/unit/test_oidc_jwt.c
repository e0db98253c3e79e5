/*
 * test_oidc_jwt.c - ID token verification (oidc_jwt.c): keys made here
 * with OpenSSL for each accepted algorithm, tokens signed here, and every
 * refusal the issue lists (wrong iss, aud, azp, expired, iat in the
 * future, bad signature, alg none, HS256 keyed with the public key,
 * unknown kid, nonce mismatch).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "common/base64.h"
#include "server/oidc_jwt.h"

#define NOW 1700000000
#define ISS "https://idp.example.com"
#define CID "lxcm"

static char *b64u(const void *p, size_t n)
{
	char *o = calloc(1, base64url_encoded_len(n) + 1);

	assert_non_null(o);
	assert_int_equal(base64url_encode(p, n, o), 0);
	return o;
}

static char *b64u_bn(EVP_PKEY *k, const char *name)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *o;

	assert_true(EVP_PKEY_get_bn_param(k, name, &bn));
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	o = b64u(buf, (size_t)n);
	return o;
}

static EVP_PKEY *keygen(const char *type)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "RSA") == 0)
		k = EVP_RSA_gen(2048);
	else if (strcmp(type, "EC") == 0)
		k = EVP_EC_gen("P-256");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	return k;
}

/* The JWK of k's public half, as a JSON text (malloc'd). */
static char *jwk_of(EVP_PKEY *k, const char *kid)
{
	char *out = NULL, *a = NULL, *b = NULL;
	unsigned char pub[65], raw[32];
	size_t len = sizeof(pub);

	if (EVP_PKEY_is_a(k, "RSA")) {
		a = b64u_bn(k, OSSL_PKEY_PARAM_RSA_N);
		b = b64u_bn(k, OSSL_PKEY_PARAM_RSA_E);
		assert_true(asprintf(&out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kid, a, b) > 0);
	} else if (EVP_PKEY_is_a(k, "EC")) {
		assert_true(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len));
		a = b64u(pub + 1, 32);
		b = b64u(pub + 33, 32);
		assert_true(asprintf(&out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, a, b) > 0);
	} else {
		len = sizeof(raw);
		assert_true(EVP_PKEY_get_raw_public_key(k, raw, &len));
		a = b64u(raw, len);
		assert_true(asprintf(&out, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\",\"x\":\"%s\"}", kid, a) > 0);
	}
	free(a);
	free(b);
	return out;
}

/* "header.payload.signature" signed by k as alg says (NULL k: alg none; hmac key: HS256). */
static char *sign(EVP_PKEY *k, const char *alg, const char *kid, const char *payload,
		  const char *hmac_key)
{
	char hdr[256], *h64, *p64, *s64, *input, *out;
	unsigned char sig[1024], rs[64];
	size_t siglen = sizeof(sig);
	unsigned int hlen = 0;
	EVP_MD_CTX *ctx;

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
	h64 = b64u(hdr, strlen(hdr));
	p64 = b64u(payload, strlen(payload));
	assert_true(asprintf(&input, "%s.%s", h64, p64) > 0);
	if (hmac_key != NULL) {
		HMAC(EVP_sha256(), hmac_key, (int)strlen(hmac_key), (unsigned char *)input,
		     strlen(input), sig, &hlen);
		siglen = hlen;
	} else if (k == NULL) {
		siglen = 0;
	} else {
		ctx = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256(), NULL, k), 1);
		assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(ctx);
		if (EVP_PKEY_is_a(k, "EC")) {
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);

			assert_non_null(es);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
			ECDSA_SIG_free(es);
			memcpy(sig, rs, 64);
			siglen = 64;
		}
	}
	s64 = b64u(sig, siglen);
	assert_true(asprintf(&out, "%s.%s", input, s64) > 0);
	free(h64);
	free(p64);
	free(s64);
	free(input);
	return out;
}

static char *claims(const char *iss, const char *aud, long long exp, long long iat,
		    const char *nonce, const char *extra)
{
	char *out;

	assert_true(asprintf(&out,
			     "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":%s,\"exp\":%lld,\"iat\":%lld,"
			     "\"nonce\":\"%s\",\"email\":\"alice@example.com\"%s}",
			     iss, aud, exp, iat, nonce, extra) > 0);
	return out;
}

struct keys {
	EVP_PKEY *rsa, *ec, *ed;
	struct oidc_jwks ks;
	char *jwks;
};

static int setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	char *a, *b, *c, err[256];

	k->rsa = keygen("RSA");
	k->ec = keygen("EC");
	k->ed = keygen("ED25519");
	a = jwk_of(k->rsa, "r1");
	b = jwk_of(k->ec, "e1");
	c = jwk_of(k->ed, "d1");
	assert_true(asprintf(&k->jwks, "{\"keys\":[%s,%s,%s,{\"kty\":\"oct\",\"k\":\"AAAA\"},"
				       "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
			     a, b, c) > 0);
	free(a);
	free(b);
	free(c);
	assert_int_equal(oidc_jwks_parse(slice_cstr(k->jwks), &k->ks, err, sizeof(err)), 0);
	assert_int_equal(k->ks.n, 3);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct keys *k = *state;

	oidc_jwks_clear(&k->ks);
	EVP_PKEY_free(k->rsa);
	EVP_PKEY_free(k->ec);
	EVP_PKEY_free(k->ed);
	free(k->jwks);
	free(k);
	return 0;
}

static const struct oidc_jwt_expect expect = {ISS, CID, "n0nce", NOW};

/* verify(token) with the fixture's keys: the return code, and err in *why. */
static int verify(struct keys *k, char *token, char *why, size_t len)
{
	json_t *c = NULL;
	int rc = oidc_jwt_verify(slice_cstr(token), &k->ks, &expect, &c, why, len);

	if (rc == 0) {
		assert_non_null(c);
		assert_string_equal(json_string_value(json_object_get(c, "sub")), "alice");
	} else {
		assert_null(c);
	}
	json_decref(c);
	free(token);
	return rc;
}

static void test_good_tokens(void **state)
{
	struct keys *k = *state;
	char why[256];
	char *p = claims(ISS, "\"" CID "\"", NOW + 300, NOW, "n0nce", "");

	assert_int_equal(verify(k, sign(k->rsa, "RS256", "r1", p, NULL), why, sizeof(why)), 0);
	assert_int_equal(verify(k, sign(k->ec, "ES256", "e1", p, NULL), why, sizeof(why)), 0);
	assert_int_equal(verify(k, sign(k->ed, "EdDSA", "d1", p, NULL), why, sizeof(why)), 0);
	free(p);
	/* aud as an array with azp, and skew within the leeway. */
	p = claims(ISS, "[\"" CID "\",\"other\"]", NOW - 30, NOW + 30, "n0nce", ",\"azp\":\"" CID "\"");
	assert_int_equal(verify(k, sign(k->rsa, "RS256", "r1", p, NULL), why, sizeof(why)), 0);
	free(p);
}

static void refused(struct keys *k, char *token, int want, const char *reason)
{
	char why[256] = "";

	assert_int_equal(verify(k, token, why, sizeof(why)), want);
	if (strstr(why, reason) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, reason);
}

static void test_refusals(void **state)
{
	struct keys *k = *state;
	char *good = claims(ISS, "\"" CID "\"", NOW + 300, NOW, "n0nce", ""), *p, *t;

	p = claims("https://evil.example", "\"" CID "\"", NOW + 300, NOW, "n0nce", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "iss is https://evil.example");
	free(p);
	p = claims(ISS, "\"someone-else\"", NOW + 300, NOW, "n0nce", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "aud");
	free(p);
	p = claims(ISS, "[\"" CID "\",\"other\"]", NOW + 300, NOW, "n0nce", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "azp");
	free(p);
	p = claims(ISS, "\"" CID "\"", NOW + 300, NOW, "n0nce", ",\"azp\":\"other\"");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "azp");
	free(p);
	p = claims(ISS, "\"" CID "\"", NOW - 61, NOW - 600, "n0nce", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "expired");
	free(p);
	p = claims(ISS, "\"" CID "\"", NOW + 900, NOW + 300, "n0nce", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "future");
	free(p);
	p = claims(ISS, "\"" CID "\"", NOW + 300, NOW, "other", "");
	refused(k, sign(k->rsa, "RS256", "r1", p, NULL), -EINVAL, "nonce");
	free(p);
	/* Signed by another key under a known kid. */
	EVP_PKEY *other = keygen("RSA");
	refused(k, sign(other, "RS256", "r1", good, NULL), -EINVAL, "signature");
	EVP_PKEY_free(other);
	/* A payload changed after signing. */
	t = sign(k->ec, "ES256", "e1", good, NULL);
	{
		char *dot = strchr(t, '.') + 1;
		*dot = *dot == 'e' ? 'f' : 'e';
	}
	refused(k, t, -EINVAL, "");
	refused(k, sign(NULL, "none", "r1", good, NULL), -EINVAL, "not accepted");
	/* HS256 keyed with the RSA key's public JWK text: refused by algorithm. */
	refused(k, sign(NULL, "HS256", "r1", good, k->jwks), -EINVAL, "not accepted");
	/* An algorithm that is not the key's. */
	refused(k, sign(k->rsa, "ES256", "r1", good, NULL), -ENOKEY, "no ES256 key");
	refused(k, sign(k->rsa, "RS256", "rotated", good, NULL), -ENOKEY, "rotated");
	free(good);
	refused(k, strdup("a.b"), -EINVAL, "three");
	refused(k, strdup("a.b.c.d"), -EINVAL, "three");
	refused(k, strdup("!!.e30.AA"), -EINVAL, "header");
}

static void test_jwks_bad(void **state)
{
	struct oidc_jwks ks;
	char err[256];

	(void)state;
	memset(&ks, 0, sizeof(ks));
	assert_int_equal(oidc_jwks_parse(LIT("[]"), &ks, err, sizeof(err)), -EINVAL);
	assert_int_equal(oidc_jwks_parse(LIT("{}"), &ks, err, sizeof(err)), -EINVAL);
	assert_int_equal(oidc_jwks_parse(LIT("{\"keys\":[1,\"x\",{\"kty\":\"RSA\"}]}"), &ks, err,
					 sizeof(err)), 0);
	assert_int_equal(ks.n, 0);
	/* An RSA key under 2048 bits is skipped. */
	assert_int_equal(oidc_jwks_parse(LIT("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"),
					 &ks, err, sizeof(err)), 0);
	assert_int_equal(ks.n, 0);
	oidc_jwks_clear(&ks);
}

static void test_base64url(void **state)
{
	unsigned char out[16];
	size_t n;
	char enc[8];

	(void)state;
	assert_int_equal(base64url_decode("-_8", 3, out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(base64url_decode("-_8=", 4, out, &n), -EINVAL);
	assert_int_equal(base64url_decode("+/8", 3, out, &n), -EINVAL);
	assert_int_equal(base64url_decode("-_9", 3, out, &n), -EINVAL); /* unused bits */
	assert_int_equal(base64url_decode("A", 1, out, &n), -EINVAL);
	assert_int_equal(base64url_encoded_len(2), 3);
	assert_int_equal(base64url_encode("\xfb\xff", 2, enc), 0);
	assert_memory_equal(enc, "-_8", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test(test_jwks_bad),
	    cmocka_unit_test(test_base64url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
