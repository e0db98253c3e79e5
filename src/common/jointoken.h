/*
 * jointoken.h - the MicroCloud join token (MICROCLOUD-PROTOCOL.md).
 *
 * A token is standard padded base64 of the compact JSON object
 *   {"server_name":..,"fingerprint":..,"addresses":[..],"secret":..,
 *    "expires_at":"<RFC 3339>"}
 * Tokens arrive from people and peers, so decoding is a strict parser of
 * hostile input with a fixed size cap.
 */
#ifndef LXCM_JOINTOKEN_H
#define LXCM_JOINTOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Largest encoded token accepted, surrounding whitespace included. */
#define JOIN_TOKEN_MAX (16 * 1024)
/* Most addresses a token may list. */
#define JOIN_TOKEN_MAX_ADDRESSES 32

struct join_token {
	char *server_name;
	char *fingerprint; /* 64 lowercase hex digits */
	char **addresses;  /* "host:port", naddresses of them */
	size_t naddresses;
	char *secret;
	int64_t expires_at; /* Unix seconds */
};

/*
 * Encodes t into a malloc'd NUL-terminated token (caller frees; it holds the
 * secret). The fingerprint may be in either case and is written in lower
 * case. Returns 0, -EINVAL if a string is NULL or empty, the fingerprint is
 * not 64 hex digits, naddresses is not 1..JOIN_TOKEN_MAX_ADDRESSES or
 * expires_at is outside years 0000..9999, or -ENOMEM.
 */
int join_token_encode(const struct join_token *t, char **out);

/*
 * Decodes len bytes of token (not NUL-terminated; surrounding ASCII
 * whitespace ignored) into *out, which the caller releases with
 * join_token_clear. Unknown JSON fields are ignored. Returns 0, -ENOMEM, or
 * -EINVAL for anything malformed: longer than JOIN_TOKEN_MAX, bad base64 or
 * padding, not a JSON object, a field missing, of the wrong type or empty, a
 * string with a NUL byte, a fingerprint that is not 64 hex digits (upper case
 * is accepted and stored lower), addresses not 1..JOIN_TOKEN_MAX_ADDRESSES
 * strings, or expires_at not RFC 3339. On error *out is left cleared.
 */
int join_token_decode(const char *data, size_t len, struct join_token *out);

/* Frees every field (wiping the secret) and zeroes t. NULL is fine. */
void join_token_clear(struct join_token *t);

#endif
