/*
 * seal.h - authenticated encryption of small secrets at rest and in
 * cookies: AES-256-GCM with a random 96-bit nonce, written as base64url
 * text (nonce || ciphertext || tag), and HKDF-SHA256 to derive its keys.
 *
 * Used for the login-state cookie (a key shared by all replicas through
 * the store) and for the provider's tokens of a session (a key derived
 * from the session cookie, which the store never holds).
 */
#ifndef LXCM_SEAL_H
#define LXCM_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

#define SEAL_KEY_LEN 32
#define SEAL_MAX_PLAIN (64 * 1024) /* what may be sealed or opened at once */

/*
 * Seals plain under key, bound to aad (which is not stored: the opener
 * must give the same). *out: malloc'd NUL-terminated base64url text.
 * 0, -E2BIG, -ENOMEM or -EIO.
 */
int seal_encrypt(const uint8_t key[SEAL_KEY_LEN], struct slice aad, struct slice plain,
		 char **out);
/*
 * Opens text sealed by seal_encrypt under the same key and aad. *out:
 * malloc'd, NUL-terminated, *outlen bytes (wipe it when it is a secret).
 * -EINVAL for anything that is not such a text, tampered, or under
 * another key or aad; -ENOMEM, -EIO.
 */
int seal_decrypt(const uint8_t key[SEAL_KEY_LEN], struct slice aad, struct slice text, char **out,
		 size_t *outlen);
/* HKDF-SHA256(ikm, no salt, info) -> SEAL_KEY_LEN bytes. 0 or -EIO. */
int seal_hkdf(struct slice ikm, const char *info, uint8_t out[SEAL_KEY_LEN]);

#endif
