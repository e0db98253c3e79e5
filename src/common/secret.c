/* secret.c - random secrets, SHA-256, constant-time comparison, wiping. */
#include "common/secret.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char hexdigits[] = "0123456789abcdef";

/* Writes 2 * len hex digits of in and a NUL; out must hold 2 * len + 1. */
static void secret_hex(const unsigned char *in, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

int secret_random_hex(size_t nbytes, char *out, size_t outlen)
{
	unsigned char raw[256];
	size_t done = 0, n;

	if (nbytes > (SIZE_MAX - 1) / 2 || outlen < 2 * nbytes + 1)
		return -ENOSPC;
	/* Work in chunks so that any nbytes is served from a bounded stack buffer. */
	while (done < nbytes) {
		n = nbytes - done < sizeof(raw) ? nbytes - done : sizeof(raw);
		if (RAND_bytes(raw, (int)n) != 1) {
			secret_wipe(raw, sizeof(raw));
			secret_wipe(out, outlen);
			return -EIO;
		}
		secret_hex(raw, n, out + 2 * done);
		done += n;
	}
	out[2 * nbytes] = '\0';
	secret_wipe(raw, sizeof(raw));
	return 0;
}

void secret_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md)) {
		/* Only on allocation failure inside OpenSSL; never match a real digest. */
		out[0] = '\0';
		return;
	}
	secret_hex(md, sizeof(md), out);
}

int secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	if (alen == 0)
		return 1;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void secret_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

#define SECRET_FILE_MAX 4096

int secret_read_file(const char *path, char **out)
{
	struct stat st;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((st.st_mode & 077) != 0)
		return -EPERM;
	rc = fs_read_file(path, SECRET_FILE_MAX, out, &len);
	if (rc < 0)
		return rc == -E2BIG ? -EINVAL : rc;
	if (len > 0 && (*out)[len - 1] == '\n')
		(*out)[--len] = '\0';
	if (len > 0 && (*out)[len - 1] == '\r')
		(*out)[--len] = '\0';
	if (len == 0 || strlen(*out) != len) { /* empty, or a NUL inside */
		secret_free_text(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

void secret_free_text(char *s)
{
	if (s == NULL)
		return;
	secret_wipe(s, strlen(s));
	free(s);
}
