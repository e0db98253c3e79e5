/*
 * secret.h - random secrets, hashing, constant-time comparison and wiping.
 *
 * Secrets (join token secrets, API tokens, session keys) are generated here,
 * stored only as SHA-256 hex digests, compared in constant time and wiped
 * from memory once no longer needed (STYLE.md rule 7).
 */
#ifndef LXCM_SECRET_H
#define LXCM_SECRET_H

#include <stddef.h>

/*
 * Fills out with 2 * nbytes lowercase hex digits of cryptographically random
 * bytes and a NUL. Returns 0, -ENOSPC if outlen < 2 * nbytes + 1 (out is left
 * untouched), -EIO if the random generator fails.
 */
int secret_random_hex(size_t nbytes, char *out, size_t outlen);

/*
 * Writes the lowercase hex SHA-256 of data and a NUL into out. If OpenSSL
 * cannot allocate its digest context, out is the empty string, which never
 * equals a real digest.
 */
void secret_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * Compares two byte strings in time that depends only on their lengths.
 * Returns 1 if equal, 0 if not. Strings of different lengths are unequal;
 * their content is not examined, so only the lengths can leak.
 */
int secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Reads a secret kept in a file (a database password, a client secret):
 * the file must be a regular file that only its owner may read or write
 * (no group or other bits), at most 4096 bytes; one trailing newline is
 * dropped, and the secret must not be empty. 0 and *out (free with
 * secret_free_text), -EPERM for a file others may read, -EINVAL for an
 * empty or oversized one, or -errno.
 */
int secret_read_file(const char *path, char **out);
/* Wipes and frees a string from secret_read_file. NULL ok. */
void secret_free_text(char *s);

/* Zeroes len bytes at p in a way the compiler cannot optimise out. NULL ok. */
void secret_wipe(void *p, size_t len);

#endif
