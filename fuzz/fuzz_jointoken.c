/*
 * fuzz_jointoken.c - join token decoding (src/common/jointoken.c).
 *
 * Tokens come from people and from joining peers. The first input byte
 * picks what the rest is:
 *   'T' (or anything else)  the token text itself, as a peer would send it;
 *   'J'                     the JSON inside a token: it is base64-encoded
 *                           here first, so mutations reach the field checks
 *                           instead of dying in the base64 layer.
 * A token that decodes must encode again and decode to the same fields.
 */
#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "common/jointoken.h"
#include "fuzz.h"

static void fuzz_same_token(const struct join_token *a, const struct join_token *b)
{
	size_t i;

	FUZZ_CHECK(strcmp(a->server_name, b->server_name) == 0);
	FUZZ_CHECK(strcmp(a->fingerprint, b->fingerprint) == 0);
	FUZZ_CHECK(strcmp(a->secret, b->secret) == 0);
	FUZZ_CHECK(a->expires_at == b->expires_at);
	FUZZ_CHECK(a->naddresses == b->naddresses);
	for (i = 0; i < a->naddresses; i++)
		FUZZ_CHECK(strcmp(a->addresses[i], b->addresses[i]) == 0);
}

static void fuzz_check_decoded(const struct join_token *t)
{
	size_t i;

	FUZZ_CHECK(t->server_name && t->server_name[0]);
	FUZZ_CHECK(t->secret && t->secret[0]);
	FUZZ_CHECK(t->fingerprint && strlen(t->fingerprint) == 64);
	for (i = 0; i < 64; i++)
		FUZZ_CHECK(strchr("0123456789abcdef", t->fingerprint[i]) != NULL);
	FUZZ_CHECK(t->naddresses >= 1 && t->naddresses <= JOIN_TOKEN_MAX_ADDRESSES);
	for (i = 0; i < t->naddresses; i++)
		FUZZ_CHECK(t->addresses[i] && t->addresses[i][0]);
}

static void fuzz_decode(const char *text, size_t len)
{
	struct join_token t, again;
	char *enc = NULL;
	int rc;

	rc = join_token_decode(text, len, &t);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc != 0) {
		/* "On error *out is left cleared." */
		FUZZ_CHECK(t.server_name == NULL && t.addresses == NULL && t.secret == NULL);
		return;
	}
	fuzz_check_decoded(&t);
	rc = join_token_encode(&t, &enc);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(join_token_decode(enc, strlen(enc), &again) == 0);
	fuzz_same_token(&t, &again);
	free(enc);
	join_token_clear(&again);
	join_token_clear(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] == 'J') {
		size_t n = size - 1;
		unsigned char *b64 = malloc(4 * ((n + 2) / 3) + 1);
		int len;

		if (b64 == NULL)
			abort();
		len = EVP_EncodeBlock(b64, data + 1, (int)n);
		fuzz_decode((const char *)b64, (size_t)len);
		free(b64);
		return 0;
	}
	fuzz_decode((const char *)data + 1, size - 1);
	return 0;
}
