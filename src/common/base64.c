/* base64.c - standard padded base64, table driven. */
#include "common/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	if (n > (SIZE_MAX / 4) * 3 - 2)
		return SIZE_MAX;
	return (n + 2) / 3 * 4;
}

size_t base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

void base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
}

/* The value of one alphabet character, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, void *out, size_t *outlen)
{
	unsigned char *o = out;
	size_t i, n = 0, pad = 0;
	uint32_t v;
	int k, d;

	*outlen = 0;
	if (len % 4 != 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			size_t at = i + (size_t)k;

			d = at >= len - pad ? 0 : b64_value((unsigned char)in[at]);
			if (d < 0)
				return -EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		o[n++] = (unsigned char)(v >> 16);
		o[n++] = (unsigned char)(v >> 8);
		o[n++] = (unsigned char)v;
	}
	*outlen = n - pad;
	return 0;
}

int base64_decode_strict(const char *in, size_t len, void *out, size_t *outlen)
{
	int rc = base64_decode(in, len, out, outlen);

	if (rc < 0 || len == 0 || in[len - 1] != '=')
		return rc;
	/* One '=': the last character's low 2 bits are unused; two: the low 4 bits of the one before. */
	if (in[len - 2] != '=' ? (b64_value((unsigned char)in[len - 2]) & 3) != 0
			       : (b64_value((unsigned char)in[len - 3]) & 15) != 0) {
		*outlen = 0;
		return -EINVAL;
	}
	return 0;
}

/* ---- base64url, unpadded: the standard alphabet with '-' for '+' and '_' for '/' ---- */

size_t base64url_encoded_len(size_t n)
{
	if (n > (SIZE_MAX - 2) / 4)
		return SIZE_MAX;
	return (n * 4 + 2) / 3;
}

int base64url_encode(const void *in, size_t len, char *out)
{
	size_t full = base64_encoded_len(len), n = base64url_encoded_len(len);
	char *tmp;

	if (full == SIZE_MAX || (tmp = malloc(full ? full : 1)) == NULL)
		return -ENOMEM;
	base64_encode(in, len, tmp);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
	free(tmp);
	return 0;
}

int base64url_decode(const char *in, size_t len, void *out, size_t *outlen)
{
	size_t padded = len + (4 - len % 4) % 4, i;
	char *tmp;
	int rc = -EINVAL;

	*outlen = 0;
	if (len % 4 == 1 || len > SIZE_MAX - 4)
		return -EINVAL;
	tmp = malloc(padded ? padded : 1);
	if (tmp == NULL)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '+' || c == '/' || c == '=')
			goto out;
		tmp[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	for (; i < padded; i++)
		tmp[i] = '=';
	rc = base64_decode_strict(tmp, padded, out, outlen);
out:
	free(tmp);
	return rc;
}
