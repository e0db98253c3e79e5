/*
 * fuzz_cert_pem.c - PEM certificates as joining clusters send them
 * (cert_fingerprint_pem, src/common/cert.c).
 *
 * The first input byte picks what the rest is:
 *   'P' (or anything else)  PEM text as a peer sends it;
 *   'D'                     DER bytes, wrapped here in one well-formed
 *                           CERTIFICATE block, so mutations reach the
 *                           "one whole X.509 certificate" checks.
 * A fingerprint is always 64 lowercase hex digits.
 */
#include <errno.h>

#include <openssl/evp.h>

#include "common/cert.h"
#include "fuzz.h"

static void fuzz_fingerprint(const char *pem, size_t len)
{
	char fp[65];
	int rc, i;

	memset(fp, 'x', sizeof(fp));
	rc = cert_fingerprint_pem(pem, len, fp);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM || rc == -EIO);
	if (rc != 0)
		return;
	FUZZ_CHECK(fp[64] == '\0');
	for (i = 0; i < 64; i++)
		FUZZ_CHECK(strchr("0123456789abcdef", fp[i]) != NULL && fp[i] != '\0');
	FUZZ_CHECK(len <= CERT_PEM_MAX);
}

static void fuzz_der(const uint8_t *der, size_t n)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	static const char tail[] = "\n-----END CERTIFICATE-----\n";
	size_t cap = sizeof(head) + 4 * ((n + 2) / 3) + sizeof(tail) + 1;
	char *pem = malloc(cap);
	int len;

	if (pem == NULL)
		abort();
	memcpy(pem, head, sizeof(head) - 1);
	len = EVP_EncodeBlock((unsigned char *)pem + sizeof(head) - 1, der, (int)n);
	memcpy(pem + sizeof(head) - 1 + len, tail, sizeof(tail) - 1);
	fuzz_fingerprint(pem, sizeof(head) - 1 + (size_t)len + sizeof(tail) - 1);
	free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	if (size == 0)
		return 0;
	if (data[0] == 'D') {
		fuzz_der(data + 1, size - 1);
		return 0;
	}
	/* An exact-size heap copy, so a read past the end is caught. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data + 1, size - 1);
	fuzz_fingerprint(copy, size - 1);
	free(copy);
	return 0;
}
