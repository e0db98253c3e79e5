/* store_session.c - sessions, identities and shared keys: the rules (see store_session.h). */
#include "store/store_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "store/store_tx.h"

#define SF(field) offsetof(struct store_session, field)
#define SZ(field) sizeof(((struct store_session *)0)->field)
/* STORE_SESSION_COLUMNS */
static const struct store_col session_cols[] = {
    {SC_CHARS, SF(id), SZ(id)},
    {SC_CHARS, SF(hash), SZ(hash)},
    {SC_TEXT, SF(issuer), 0},
    {SC_TEXT, SF(subject), 0},
    {SC_TEXT, SF(name), 0},
    {SC_TEXT, SF(email), 0},
    {SC_TEXT, SF(groups), 0},
    {SC_CHARS, SF(role), SZ(role)},
    {SC_INT64, SF(created_at), 0},
    {SC_INT64, SF(last_seen), 0},
    {SC_INT64, SF(idle_expires_at), 0},
    {SC_INT64, SF(expires_at), 0},
    {SC_TEXT, SF(user_agent), 0},
    {SC_TEXT, SF(address), 0},
    {SC_SECRET, SF(tokens), 0},
    {SC_INT64, SF(access_expires_at), 0},
};

#define IDF(field) offsetof(struct store_identity, field)
/* STORE_SQL_IDENTITY_LIST */
static const struct store_col identity_cols[] = {
    {SC_TEXT, IDF(issuer), 0},
    {SC_TEXT, IDF(subject), 0},
    {SC_TEXT, IDF(name), 0},
    {SC_TEXT, IDF(email), 0},
    {SC_TEXT, IDF(groups), 0},
    {SC_CHARS, IDF(role), sizeof(((struct store_identity *)0)->role)},
    {SC_INT64, IDF(first_seen), 0},
    {SC_INT64, IDF(last_seen), 0},
    {SC_INT64, IDF(sessions), 0},
};

static const char *store_session_str(const char *v)
{
	return v != NULL ? v : "";
}

static int store_identity_upsert(struct store_tx *tx, const struct store_session *x, int64_t now)
{
	return store_tx_exec(tx, STORE_SQL_IDENTITY_UPSERT,
			     SV_ARGS(SV_TEXT(x->issuer), SV_TEXT(x->subject),
				     SV_TEXT(store_session_str(x->name)),
				     SV_TEXT(store_session_str(x->email)),
				     SV_TEXT(x->groups ? x->groups : "[]"), SV_TEXT(x->role),
				     SV_INT(now)),
			     NULL);
}

int store_session_create(struct store *s, const struct store_session *x)
{
	struct store_tx tx;
	int rc;

	if (x->issuer == NULL || x->subject == NULL || strlen(x->hash) != 64 ||
	    strlen(x->id) != STORE_SESSION_ID_LEN)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	if (rc == 0)
		rc = store_tx_exec(
		    &tx, STORE_SQL_SESSION_INSERT,
		    SV_ARGS(SV_TEXT(x->id), SV_TEXT(x->hash), SV_TEXT(x->issuer), SV_TEXT(x->subject),
			    SV_TEXT(store_session_str(x->name)), SV_TEXT(store_session_str(x->email)),
			    SV_TEXT(x->groups ? x->groups : "[]"), SV_TEXT(x->role),
			    SV_INT(x->created_at), SV_INT(x->idle_expires_at), SV_INT(x->expires_at),
			    SV_TEXT(store_session_str(x->user_agent)),
			    SV_TEXT(store_session_str(x->address)), SV_TEXT(store_session_str(x->tokens)),
			    SV_INT(x->access_expires_at)),
		    NULL);
	if (rc == 0)
		rc = store_identity_upsert(&tx, x, x->created_at);
	return store_tx_end(&tx, rc);
}

static int store_session_read(struct store_tx *tx, enum store_sql id, const char *key,
			      struct store_session *out)
{
	memset(out, 0, sizeof(*out));
	return store_tx_one(tx, id, SV_ARGS(SV_TEXT(key)), SC_SPEC(session_cols), out);
}

/* Begins a write transaction and reads the session whose key (by: hash or id) is key. */
static int store_session_begin(struct store *s, struct store_tx *tx, enum store_sql by,
			       const char *key, struct store_session *cur, const char *func)
{
	int rc = store_tx_begin(s, tx, STORE_TX_WRITE, func);

	memset(cur, 0, sizeof(*cur));
	return rc == 0 ? store_session_read(tx, by, key, cur) : rc;
}

/* Deletes the session of hash (named id in the announcement). */
static int store_session_delete(struct store_tx *tx, const char *id, const char *hash)
{
	int rc = store_tx_change(tx, STORE_SQL_SESSION_DELETE, SV_ARGS(SV_TEXT(hash)));

	if (rc == 0)
		store_tx_announce(tx, STORE_CHANGE_SESSION_CHANGED, id, hash);
	return rc;
}

int store_session_use(struct store *s, const char *hash, int64_t now, int64_t idle_s,
		      struct store_session *out)
{
	struct store_tx tx;
	int64_t idle;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	if (rc == 0)
		rc = store_session_read(&tx, STORE_SQL_SESSION_BY_HASH, hash, out);
	if (rc == 0 && (now >= out->idle_expires_at || now >= out->expires_at)) {
		rc = store_session_delete(&tx, out->id, hash);
		if (rc == 0)
			rc = -ENOENT; /* committed: the delete stays */
		rc = store_tx_end(&tx, rc == -ENOENT ? 0 : rc);
		store_session_clear(out);
		return rc == 0 ? -ENOENT : rc;
	}
	if (rc == 0) {
		idle = now + idle_s < out->expires_at ? now + idle_s : out->expires_at;
		rc = store_tx_exec(&tx, STORE_SQL_SESSION_TOUCH,
				   SV_ARGS(SV_TEXT(hash), SV_INT(now), SV_INT(idle)), NULL);
		out->last_seen = now;
		out->idle_expires_at = idle;
	}
	rc = store_tx_end(&tx, rc);
	if (rc < 0)
		store_session_clear(out);
	return rc;
}

int store_session_update(struct store *s, const char *hash, const char *groups, const char *role,
			 const char *tokens, int64_t access_expires_at, int64_t now)
{
	struct store_session cur;
	struct store_tx tx;
	int rc = store_session_begin(s, &tx, STORE_SQL_SESSION_BY_HASH, hash, &cur, __func__);

	if (rc == 0)
		rc = store_tx_change(&tx, STORE_SQL_SESSION_UPDATE,
				     SV_ARGS(SV_TEXT(hash), SV_TEXT(groups), SV_TEXT(role),
					     SV_TEXT(tokens), SV_INT(access_expires_at)));
	if (rc == 0) {
		/* The person's record follows what the provider now says. */
		free(cur.groups);
		cur.groups = NULL;
		snprintf(cur.role, sizeof(cur.role), "%s", role);
		cur.groups = groups != NULL ? strdup(groups) : NULL;
		rc = store_identity_upsert(&tx, &cur, now);
		store_tx_announce(&tx, STORE_CHANGE_SESSION_CHANGED, cur.id, hash);
	}
	store_session_clear(&cur);
	return store_tx_end(&tx, rc);
}

int store_session_end(struct store *s, const char *hash)
{
	struct store_session cur;
	struct store_tx tx;
	int rc = store_session_begin(s, &tx, STORE_SQL_SESSION_BY_HASH, hash, &cur, __func__);

	if (rc == 0)
		rc = store_session_delete(&tx, cur.id, hash);
	store_session_clear(&cur);
	return store_tx_end(&tx, rc);
}

static int store_session_owned(const struct store_session *x, const char *issuer,
			       const char *subject)
{
	return issuer == NULL || (x->issuer != NULL && x->subject != NULL &&
				  strcmp(x->issuer, issuer) == 0 && strcmp(x->subject, subject) == 0);
}

int store_session_revoke(struct store *s, const char *id, const char *owner_issuer,
			 const char *owner_subject)
{
	struct store_session cur;
	struct store_tx tx;
	int rc = store_session_begin(s, &tx, STORE_SQL_SESSION_BY_ID, id, &cur, __func__);

	if (rc == 0 && !store_session_owned(&cur, owner_issuer, owner_subject))
		rc = -ENOENT; /* someone else's is as unknown as none */
	if (rc == 0)
		rc = store_session_delete(&tx, cur.id, cur.hash);
	store_session_clear(&cur);
	return store_tx_end(&tx, rc);
}

int store_session_list(struct store *s, const char *issuer, const char *subject,
		       struct store_session **out, size_t *n)
{
	if (issuer == NULL)
		return store_read_list(s, __func__, STORE_SQL_SESSION_LIST, SV_NONE,
				       SC_SPEC(session_cols), sizeof(**out), (void **)out, n);
	return store_read_list(s, __func__, STORE_SQL_SESSION_LIST_USER,
			       SV_ARGS(SV_TEXT(issuer), SV_TEXT(subject)), SC_SPEC(session_cols),
			       sizeof(**out), (void **)out, n);
}

struct store_session_expired {
	char (*hashes)[65];
	size_t n, cap;
};

static int store_session_expired_row(void *arg, const struct store_val *cols, size_t ncols)
{
	struct store_session_expired *e = arg;

	if (ncols < 1 || cols[0].type != STORE_TEXT || cols[0].len != 64)
		return 0;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		char(*h)[65] = realloc(e->hashes, cap * sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		e->hashes = h;
		e->cap = cap;
	}
	memcpy(e->hashes[e->n], cols[0].text, 65);
	e->n++;
	return 0;
}

int store_session_purge(struct store *s, int64_t now, size_t *n)
{
	struct store_session_expired e = {NULL, 0, 0};
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);

	*n = 0;
	if (rc == 0)
		rc = store_tx_rows(&tx, STORE_SQL_SESSION_EXPIRED, SV_ARGS(SV_INT(now)),
				   store_session_expired_row, &e);
	for (size_t i = 0; rc == 0 && i < e.n; i++)
		rc = store_session_delete(&tx, "", e.hashes[i]);
	if (rc == 0)
		*n = e.n;
	free(e.hashes);
	return store_tx_end(&tx, rc);
}

void store_session_clear(struct store_session *x)
{
	store_cols_reset(SC_SPEC(session_cols), x, sizeof(*x));
}

void store_session_list_free(struct store_session *list, size_t n)
{
	store_cols_list_free(SC_SPEC(session_cols), list, n, sizeof(*list));
}

int store_identity_list(struct store *s, struct store_identity **out, size_t *n)
{
	return store_read_list(s, __func__, STORE_SQL_IDENTITY_LIST, SV_NONE,
			       SC_SPEC(identity_cols), sizeof(**out), (void **)out, n);
}

void store_identity_list_free(struct store_identity *list, size_t n)
{
	store_cols_list_free(SC_SPEC(identity_cols), list, n, sizeof(*list));
}

int store_key_get(struct store *s, const char *name, const char *candidate, int64_t now,
		  char *out, size_t outlen)
{
	struct store_tx tx;
	char *value = NULL;
	int rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);

	if (rc == 0)
		rc = store_tx_exec(&tx, STORE_SQL_KEY_INSERT,
				   SV_ARGS(SV_TEXT(name), SV_TEXT(candidate), SV_INT(now)), NULL);
	if (rc == 0)
		rc = store_tx_one(&tx, STORE_SQL_KEY_GET, SV_ARGS(SV_TEXT(name)), SC_ONE(SC_SECRET),
				  &value);
	rc = store_tx_end(&tx, rc);
	if (rc == 0 && strlen(value) >= outlen)
		rc = -E2BIG;
	if (rc == 0)
		memcpy(out, value, strlen(value) + 1);
	if (value != NULL) {
		secret_wipe(value, strlen(value));
		free(value);
	}
	return rc;
}
