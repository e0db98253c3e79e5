/*
 * session_cookies.h - LXD's `session` cookie, kept per user for one cluster.
 *
 * MicroCloud's LXD answers a proxied request with a `session` cookie that it
 * wants back on the same user's later requests (MICROCLOUD-PROTOCOL.md,
 * tunnel v1). lxcm keeps it on the manager, never hands it to the user's
 * client, and adds it to that user's requests as a Cookie header.
 *
 * One jar per live tunnel (so the cookies of a cluster die with its tunnel).
 * A jar holds at most SESSION_COOKIES_MAX users; past that the least
 * recently used entry is evicted. Values longer than SESSION_COOKIE_MAX_VALUE
 * are not kept.
 *
 * Encryption: every value is sealed with AES-256-GCM under a key that is
 * derived, per user, from that user's own secret (the principal's seal,
 * which the auth step derives from the credential the request carried,
 * principal.h) and a random key of the jar:
 *     key = HMAC-SHA256(jar key, user secret)
 * with a fresh random 96-bit nonce per encryption and the cluster name and
 * the user id as additional data. Neither the user's secret nor the derived
 * key is stored in the jar, so the table alone (say, in a core dump taken
 * while nobody is making requests) does not open any cookie; the user id
 * used to find an entry is SHA-256(secret).
 *
 * Loop thread only. No function here fires callbacks.
 */
#ifndef LXCM_SESSION_COOKIES_H
#define LXCM_SESSION_COOKIES_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

#define SESSION_COOKIES_MAX 1024      /* users per jar (per cluster tunnel); LRU past it */
#define SESSION_COOKIE_MAX_VALUE 4096 /* bytes of one cookie value */
#define SESSION_COOKIE_KEY_LEN 32

struct session_cookies;

/* A user as the jar sees them during one request; wipe it after use. */
struct session_user {
	uint8_t id[32];			     /* SHA-256 of the user's secret */
	uint8_t key[SESSION_COOKIE_KEY_LEN]; /* the derived AES-256-GCM key */
	int valid;
};

/* A new empty jar bound to scope (the cluster name); NULL when out of memory or entropy. */
struct session_cookies *session_cookies_new(const char *scope);
/* Wipes and frees every entry and the jar key. NULL is fine. */
void session_cookies_free(struct session_cookies *j);
size_t session_cookies_count(const struct session_cookies *j);

/* Derives the user's id and key from their secret. 0 or -EIO. */
int session_cookies_user(const struct session_cookies *j, struct slice secret,
			 struct session_user *u);
void session_user_wipe(struct session_user *u);

/*
 * Stores (or replaces) the user's cookie value. 0; -E2BIG for a value over
 * SESSION_COOKIE_MAX_VALUE (nothing stored, an old value is forgotten);
 * -ENOMEM, -EIO.
 */
int session_cookies_put(struct session_cookies *j, const struct session_user *u,
			struct slice value);

/*
 * Decrypts the user's value into out (no NUL added). 0 with *len set;
 * -ENOENT when there is none; -ENOSPC when outlen is too small; -EBADMSG
 * when it does not authenticate (then the entry is dropped).
 */
int session_cookies_get(struct session_cookies *j, const struct session_user *u, char *out,
			size_t outlen, size_t *len);

/* Forgets the user's cookie (LXD expired or cleared it). */
void session_cookies_forget(struct session_cookies *j, const struct session_user *u);

#endif
