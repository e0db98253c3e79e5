/*
 * session_cookies.c - per-user LXD session cookies of one cluster, sealed
 * with AES-256-GCM (see session_cookies.h for the key scheme).
 *
 * Entries sit in a list in most-recently-used order: lookups move the entry
 * to the front, inserts past SESSION_COOKIES_MAX drop the last one. The
 * list is short (one entry per user of one cluster), so a linear scan is
 * cheaper than keeping a hash in step.
 */
#include "server/session_cookies.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/secret.h"

#define SC_NONCE_LEN 12
#define SC_TAG_LEN 16
#define SC_MAX_SCOPE 64

struct sc_entry {
	struct sc_entry *next;
	uint8_t id[32];
	uint8_t nonce[SC_NONCE_LEN];
	uint8_t tag[SC_TAG_LEN];
	size_t len;
	uint8_t ct[]; /* len bytes of ciphertext */
};

struct session_cookies {
	uint8_t key[SESSION_COOKIE_KEY_LEN]; /* the jar's random key */
	char scope[SC_MAX_SCOPE];
	size_t scope_len;
	struct sc_entry *head;
	size_t count;
};

struct session_cookies *session_cookies_new(const char *scope)
{
	struct session_cookies *j = calloc(1, sizeof(*j));
	int n;

	if (j == NULL)
		return NULL;
	n = snprintf(j->scope, sizeof(j->scope), "%s", scope);
	if (n < 0 || (size_t)n >= sizeof(j->scope) || RAND_bytes(j->key, sizeof(j->key)) != 1) {
		free(j);
		return NULL;
	}
	j->scope_len = (size_t)n;
	return j;
}

static void sc_entry_free(struct sc_entry *e)
{
	if (e == NULL)
		return;
	secret_wipe(e, sizeof(*e) + e->len);
	free(e);
}

void session_cookies_free(struct session_cookies *j)
{
	struct sc_entry *e, *next;

	if (j == NULL)
		return;
	for (e = j->head; e; e = next) {
		next = e->next;
		sc_entry_free(e);
	}
	secret_wipe(j, sizeof(*j));
	free(j);
}

size_t session_cookies_count(const struct session_cookies *j)
{
	return j ? j->count : 0;
}

int session_cookies_user(const struct session_cookies *j, struct slice secret,
			 struct session_user *u)
{
	unsigned int len = 0;

	memset(u, 0, sizeof(*u));
	if (EVP_Digest(secret.base, secret.len, u->id, &len, EVP_sha256(), NULL) != 1 ||
	    len != sizeof(u->id))
		return -EIO;
	if (HMAC(EVP_sha256(), j->key, (int)sizeof(j->key), (const unsigned char *)secret.base,
		 secret.len, u->key, &len) == NULL ||
	    len != sizeof(u->key)) {
		session_user_wipe(u);
		return -EIO;
	}
	u->valid = 1;
	return 0;
}

void session_user_wipe(struct session_user *u)
{
	secret_wipe(u, sizeof(*u));
}

/* Unlinks and returns the user's entry, or NULL. */
static struct sc_entry *sc_take(struct session_cookies *j, const uint8_t id[32])
{
	struct sc_entry **pp, *e;

	for (pp = &j->head; (e = *pp) != NULL; pp = &e->next) {
		if (secret_equal(e->id, sizeof(e->id), id, 32)) {
			*pp = e->next;
			e->next = NULL;
			j->count--;
			return e;
		}
	}
	return NULL;
}

static void sc_push_front(struct session_cookies *j, struct sc_entry *e)
{
	e->next = j->head;
	j->head = e;
	j->count++;
}

/* Drops the least recently used entry (the last one). */
static void sc_evict_last(struct session_cookies *j)
{
	struct sc_entry **pp = &j->head;

	if (*pp == NULL)
		return;
	while ((*pp)->next)
		pp = &(*pp)->next;
	sc_entry_free(*pp);
	*pp = NULL;
	j->count--;
}

/*
 * One AES-256-GCM pass. enc 1: in -> out and tag written; enc 0: in -> out
 * and tag checked. The additional data is the scope and the user id.
 */
static int sc_gcm(const struct session_cookies *j, const struct session_user *u, int enc,
		  const uint8_t nonce[SC_NONCE_LEN], const uint8_t *in, size_t len, uint8_t *out,
		  uint8_t tag[SC_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fl = 0, rc = -EIO;

	if (ctx == NULL || len > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, u->key, nonce, enc) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)j->scope, (int)j->scope_len) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, u->id, sizeof(u->id)) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SC_TAG_LEN, tag) != 1)
		goto out;
	/* GCM writes nothing at the end; out + len is just a valid pointer. */
	if (EVP_CipherFinal_ex(ctx, out + len, &fl) != 1) {
		rc = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SC_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int session_cookies_put(struct session_cookies *j, const struct session_user *u, struct slice value)
{
	struct sc_entry *e;

	if (!u->valid)
		return -EINVAL;
	sc_entry_free(sc_take(j, u->id));
	if (value.len > SESSION_COOKIE_MAX_VALUE)
		return -E2BIG;
	e = calloc(1, sizeof(*e) + value.len);
	if (e == NULL)
		return -ENOMEM;
	memcpy(e->id, u->id, sizeof(e->id));
	e->len = value.len;
	if (RAND_bytes(e->nonce, sizeof(e->nonce)) != 1 ||
	    sc_gcm(j, u, 1, e->nonce, (const uint8_t *)value.base, value.len, e->ct, e->tag) != 0) {
		sc_entry_free(e);
		return -EIO;
	}
	while (j->count >= SESSION_COOKIES_MAX)
		sc_evict_last(j);
	sc_push_front(j, e);
	return 0;
}

int session_cookies_get(struct session_cookies *j, const struct session_user *u, char *out,
			size_t outlen, size_t *len)
{
	struct sc_entry *e;
	int rc;

	if (!u->valid)
		return -ENOENT;
	e = sc_take(j, u->id);
	if (e == NULL)
		return -ENOENT;
	if (e->len > outlen) {
		sc_push_front(j, e);
		return -ENOSPC;
	}
	rc = sc_gcm(j, u, 0, e->nonce, e->ct, e->len, (uint8_t *)out, e->tag);
	if (rc != 0) {
		secret_wipe(out, e->len);
		sc_entry_free(e);
		LOG_WARN("a session cookie for cluster %s did not authenticate; dropped", j->scope);
		return rc;
	}
	*len = e->len;
	sc_push_front(j, e);
	return 0;
}

void session_cookies_forget(struct session_cookies *j, const struct session_user *u)
{
	if (u->valid)
		sc_entry_free(sc_take(j, u->id));
}
