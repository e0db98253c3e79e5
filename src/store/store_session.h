/*
 * store_session.h - sessions of people logged in with OIDC, the identities
 * seen, and the keys every replica shares (store_session.c; migration
 * 005_sessions.sql). Kept out of store.h so the people feature reads as
 * one piece.
 *
 * The rules:
 *   - a session is found by the SHA-256 of its cookie (hash); its id is a
 *     separate random name, shown in lists and used to revoke it;
 *   - a session past its idle or its absolute expiry does not exist: using
 *     it deletes it (-ENOENT), and each use moves its idle expiry on, never
 *     past its absolute one;
 *   - ending a session (logout, revoke, expiry) and changing its role or
 *     groups announce STORE_CHANGE_SESSION_CHANGED with its hash, so every
 *     cache of sessions forgets it at once;
 *   - a person may revoke only their own sessions (owner given), an admin
 *     any (owner NULL);
 *   - a shared key is made once: the first value stored under a name wins
 *     and every later caller reads that one.
 */
#ifndef LXCM_STORE_SESSION_H
#define LXCM_STORE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_SESSION_ID_LEN 32 /* hex digits of a session id */

struct store_session {
	char id[STORE_SESSION_ID_LEN + 1];
	char hash[65];
	char *issuer;
	char *subject;
	char *name;
	char *email;
	char *groups; /* JSON array text */
	char role[16]; /* "admin", "operator", "viewer" or "none" */
	int64_t created_at;
	int64_t last_seen;
	int64_t idle_expires_at;
	int64_t expires_at;
	char *user_agent;
	char *address;
	char *tokens; /* sealed (base64url), wiped when cleared */
	int64_t access_expires_at;
};

struct store_identity {
	char *issuer;
	char *subject;
	char *name;
	char *email;
	char *groups;
	char role[16];
	int64_t first_seen;
	int64_t last_seen;
	int64_t sessions;
};

/* Stores a new session (last_seen = created_at) and records its person. -EEXIST, -EINVAL. */
int store_session_create(struct store *s, const struct store_session *in);
/*
 * The session of a cookie hash, used now: its idle expiry becomes
 * min(now + idle_s, expires_at). -ENOENT when there is none, or it had
 * expired (it is deleted then).
 */
int store_session_use(struct store *s, const char *hash, int64_t now, int64_t idle_s,
		      struct store_session *out);
/* After a token refresh: new groups, role, sealed tokens; the person too. -ENOENT. */
int store_session_update(struct store *s, const char *hash, const char *groups, const char *role,
			 const char *tokens, int64_t access_expires_at, int64_t now);
/* Logout: ends the session of a cookie hash. -ENOENT. */
int store_session_end(struct store *s, const char *hash);
/*
 * Revokes a session by id. With owner_issuer/owner_subject, only when it
 * is theirs (-ENOENT otherwise, as for an unknown id); NULL: any.
 */
int store_session_revoke(struct store *s, const char *id, const char *owner_issuer,
			 const char *owner_subject);
/* Sessions of one person, or all (issuer NULL), by creation. */
int store_session_list(struct store *s, const char *issuer, const char *subject,
		       struct store_session **out, size_t *n);
/* Deletes every session past an expiry, announcing each. *n: how many. */
int store_session_purge(struct store *s, int64_t now, size_t *n);
void store_session_clear(struct store_session *x);
void store_session_list_free(struct store_session *list, size_t n);

int store_identity_list(struct store *s, struct store_identity **out, size_t *n);
void store_identity_list_free(struct store_identity *list, size_t n);

/*
 * The shared key called name: candidate is stored if there is none yet;
 * out gets the stored value (up to outlen - 1 bytes). 0, -EIO, -E2BIG.
 */
int store_key_get(struct store *s, const char *name, const char *candidate, int64_t now,
		  char *out, size_t outlen);

#endif
