/*
 * base64.h - standard base64 (RFC 4648 section 4, "+/" and '=' padding).
 *
 * The encoder writes into a caller's buffer of base64_encoded_len(n) bytes,
 * so that big payloads (tunnel v1 bodies) are encoded in place inside a
 * larger message without another copy. The decoder reads pointer + length
 * (peer data, STYLE.md rule 5); it accepts exactly what Go's
 * base64.StdEncoding accepts apart from line breaks: padded groups of four,
 * '=' only at the end, and nonzero bits before the padding are ignored.
 * base64_decode_strict also refuses those bits, so that each byte string
 * has exactly one encoding (join tokens, whose text is compared).
 *
 * The only base64 of the tree: the WebSocket keys (ws.c) and join tokens
 * (jointoken.c) use it too.
 */
#ifndef LXCM_BASE64_H
#define LXCM_BASE64_H

#include <stddef.h>

/* Bytes of the padded encoding of n input bytes (no NUL); SIZE_MAX on overflow. */
size_t base64_encoded_len(size_t n);

/* Largest number of bytes that len encoded characters can decode to. */
size_t base64_decoded_max(size_t len);

/* Writes base64_encoded_len(len) characters to out; no NUL is added. */
void base64_encode(const void *in, size_t len, char *out);

/*
 * Decodes len characters into out, which must hold base64_decoded_max(len)
 * bytes; *outlen gets the decoded length. An empty input decodes to nothing.
 * Returns 0, or -EINVAL for a length that is not a multiple of four, a
 * character outside the alphabet, or misplaced padding.
 */
int base64_decode(const char *in, size_t len, void *out, size_t *outlen);

/*
 * base64_decode, and also -EINVAL when the bits that the padding discards
 * are not zero (a second encoding of the same bytes).
 */
int base64_decode_strict(const char *in, size_t len, void *out, size_t *outlen);

/*
 * base64url without padding (RFC 4648 section 5), as JWTs, JWKs and PKCE
 * write it. base64url_encode writes base64url_encoded_len(len) characters
 * (no NUL) and returns 0 or -ENOMEM. base64url_decode refuses padding, the
 * standard alphabet's '+' and '/', a length that cannot be, and nonzero
 * unused bits (one encoding per byte string); out must hold
 * base64_decoded_max(len + 3) bytes. 0, -EINVAL or -ENOMEM.
 */
size_t base64url_encoded_len(size_t n);
int base64url_encode(const void *in, size_t len, char *out);
int base64url_decode(const char *in, size_t len, void *out, size_t *outlen);

#endif
