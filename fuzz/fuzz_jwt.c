/*
 * fuzz_jwt.c - ID tokens and JWKS documents from the identity provider
 * (oidc_jwks_parse, oidc_jwt_verify, src/server/oidc_jwt.c).
 *
 * Input: a JWKS document, a NUL byte, then a compact JWT. The seeds
 * (fuzz/make_jwt_corpus.py) hold real keys of each accepted type and
 * tokens they signed, so mutations reach the claim checks. A token that
 * verifies must carry the claims the expectations demand.
 */
#include <errno.h>

#include "fuzz.h"
#include "server/oidc_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct oidc_jwt_expect x = {"https://idp.example.com", "lxcm", "n0nce",
						 1700000000};
	const uint8_t *nul = memchr(data, 0, size);
	size_t klen = nul ? (size_t)(nul - data) : size;
	struct oidc_jwks ks;
	json_t *claims = NULL;
	char err[256], *keys = malloc(klen ? klen : 1), *tok;
	size_t tlen = nul ? size - klen - 1 : 0;
	int rc;

	tok = malloc(tlen ? tlen : 1);
	if (keys == NULL || tok == NULL)
		abort();
	memcpy(keys, data, klen); /* exact sizes: no NUL to lean on */
	if (tlen)
		memcpy(tok, nul + 1, tlen);
	memset(&ks, 0, sizeof(ks));
	rc = oidc_jwks_parse(slice_make(keys, klen), &ks, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	FUZZ_CHECK(ks.n <= OIDC_JWKS_MAX_KEYS);
	rc = oidc_jwt_verify(slice_make(tok, tlen), &ks, &x, &claims, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOKEY);
	FUZZ_CHECK((rc == 0) == (claims != NULL));
	if (rc == 0) {
		FUZZ_CHECK(strcmp(json_string_value(json_object_get(claims, "iss")), x.issuer) == 0);
		FUZZ_CHECK(strcmp(json_string_value(json_object_get(claims, "nonce")), x.nonce) == 0);
	}
	json_decref(claims);
	oidc_jwks_clear(&ks);
	free(keys);
	free(tok);
	return 0;
}
