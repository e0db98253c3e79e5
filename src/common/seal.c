/* seal.c - AES-256-GCM sealed text and HKDF keys (see seal.h). */
#include "common/seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/base64.h"
#include "common/secret.h"

#define SEAL_IV_LEN 12
#define SEAL_TAG_LEN 16

/* One GCM pass: encrypt (enc 1) or decrypt (enc 0) len bytes of in to out. 0 or -EINVAL. */
static int seal_gcm(int enc, const uint8_t *key, const uint8_t *iv, struct slice aad,
		    const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = ctx != NULL && len <= SEAL_MAX_PLAIN && aad.len <= SEAL_MAX_PLAIN &&
	     EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
	     (aad.len == 0 ||
	      EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)aad.base, (int)aad.len) == 1) &&
	     (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EINVAL;
}

int seal_encrypt(const uint8_t key[SEAL_KEY_LEN], struct slice aad, struct slice plain,
		 char **out)
{
	size_t rawlen = SEAL_IV_LEN + plain.len + SEAL_TAG_LEN, tlen;
	uint8_t *raw;
	char *text;
	int rc;

	*out = NULL;
	if (plain.len > SEAL_MAX_PLAIN)
		return -E2BIG;
	raw = malloc(rawlen + 16);
	tlen = base64url_encoded_len(rawlen);
	text = malloc(tlen + 1);
	rc = raw != NULL && text != NULL ? 0 : -ENOMEM;
	if (rc == 0 && RAND_bytes(raw, SEAL_IV_LEN) != 1)
		rc = -EIO;
	if (rc == 0)
		rc = seal_gcm(1, key, raw, aad, (const uint8_t *)plain.base, plain.len,
			      raw + SEAL_IV_LEN, raw + SEAL_IV_LEN + plain.len) < 0 ? -EIO : 0;
	if (rc == 0)
		rc = base64url_encode(raw, rawlen, text);
	if (raw != NULL)
		secret_wipe(raw, rawlen);
	free(raw);
	if (rc < 0) {
		free(text);
		return rc;
	}
	text[tlen] = '\0';
	*out = text;
	return 0;
}

int seal_decrypt(const uint8_t key[SEAL_KEY_LEN], struct slice aad, struct slice text, char **out,
		 size_t *outlen)
{
	size_t rawlen = 0, plen;
	uint8_t *raw;
	char *plain = NULL;
	int rc = -EINVAL;

	*out = NULL;
	*outlen = 0;
	if (text.len > base64url_encoded_len(SEAL_MAX_PLAIN + SEAL_IV_LEN + SEAL_TAG_LEN))
		return -EINVAL;
	raw = malloc(base64_decoded_max(text.len + 3) + 1);
	if (raw == NULL)
		return -ENOMEM;
	if (base64url_decode(text.base, text.len, raw, &rawlen) < 0 ||
	    rawlen < SEAL_IV_LEN + SEAL_TAG_LEN)
		goto out;
	plen = rawlen - SEAL_IV_LEN - SEAL_TAG_LEN;
	plain = malloc(plen + 16 + 1);
	if (plain == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = seal_gcm(0, key, raw, aad, raw + SEAL_IV_LEN, plen, (uint8_t *)plain,
		      raw + SEAL_IV_LEN + plen);
	if (rc == 0) {
		plain[plen] = '\0';
		*out = plain;
		*outlen = plen;
		plain = NULL;
	}
out:
	if (plain != NULL) {
		secret_wipe(plain, plen);
		free(plain);
	}
	secret_wipe(raw, rawlen);
	free(raw);
	return rc;
}

int seal_hkdf(struct slice ikm, const char *info, uint8_t out[SEAL_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];
	int ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm.base, ikm.len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						      strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	ok = ctx != NULL && EVP_KDF_derive(ctx, out, SEAL_KEY_LEN, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
		secret_wipe(out, SEAL_KEY_LEN);
	return ok ? 0 : -EIO;
}
