/*
 * store_cluster.c - clusters: reads, settings, heartbeats, removal with its
 * cascade, and the atomic join (the rules of store.h, on any backend).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store/store_tx.h"

#define STORE_DEFAULT_THRESHOLD 80
#define STORE_HASH_HEX_LEN 64 /* lowercase hex SHA-256 */
#define STORE_STATUS_ACTIVE "ACTIVE"

#define CF(field) offsetof(struct store_cluster, field)
/* STORE_CLUSTER_COLUMNS, in order. */
/* clang-format off */
static const struct store_col cluster_cols[] = {
    {SC_INT64, CF(id), 0}, {SC_TEXT, CF(name), 0}, {SC_TEXT, CF(description), 0},
    {SC_TEXT, CF(certificate), 0}, {SC_TEXT, CF(fingerprint), 0}, {SC_TEXT, CF(status), 0},
    {SC_INT64, CF(joined_at), 0}, {SC_INT64, CF(created_at), 0},
    {SC_INT, CF(disk_threshold), 0}, {SC_INT, CF(memory_threshold), 0},
    {SC_INT64, CF(last_status_update_at), 0}, {SC_TEXT, CF(status_json), 0},
};
/* clang-format on */

/* The key columns of a cluster: what removal needs. */
struct cluster_keys {
	int64_t id;
	char *fingerprint;
};
static const struct store_col cluster_key_cols[] = {
    {SC_INT64, offsetof(struct cluster_keys, id), 0},
    {SC_TEXT, offsetof(struct cluster_keys, fingerprint), 0},
};

int store_cluster_list(struct store *s, struct store_cluster **out, size_t *n)
{
	return store_read_list(s, __func__, STORE_SQL_CLUSTER_LIST, SV_NONE, SC_SPEC(cluster_cols),
			       sizeof(**out), (void **)out, n);
}

int store_cluster_get(struct store *s, const char *name, struct store_cluster *out)
{
	memset(out, 0, sizeof(*out));
	return store_read_one(s, __func__, STORE_SQL_CLUSTER_GET, SV_ARGS(SV_TEXT(name)),
			      SC_SPEC(cluster_cols), out);
}

int store_cluster_get_by_fingerprint(struct store *s, const char *fp, struct store_cluster *out)
{
	memset(out, 0, sizeof(*out));
	return store_read_one(s, __func__, STORE_SQL_CLUSTER_GET_BY_FP, SV_ARGS(SV_TEXT(fp)),
			      SC_SPEC(cluster_cols), out);
}

int store_cluster_name_by_fingerprint(struct store *s, const char *fp, char **name)
{
	*name = NULL;
	return store_read_one(s, __func__, STORE_SQL_CLUSTER_NAME_BY_FP, SV_ARGS(SV_TEXT(fp)),
			      SC_ONE(SC_TEXT), name);
}

/* Sets one integer setting of a cluster, as text (the column is text in every dialect). */
static int store_cluster_config_set(struct store_tx *tx, int64_t id, const char *key, int value)
{
	char text[16];

	if ((size_t)snprintf(text, sizeof(text), "%d", value) >= sizeof(text))
		return -EINVAL;
	return store_tx_exec(tx, STORE_SQL_CONFIG_SET,
			     SV_ARGS(SV_INT(id), SV_TEXT(key), SV_TEXT(text)), NULL);
}

/* Applies the parts of u that are set; a NULL description or a negative threshold is left. */
static int store_cluster_apply(struct store_tx *tx, int64_t id,
			       const struct store_cluster_update *u)
{
	int rc = 0;

	if (u->description != NULL)
		rc = store_tx_exec(tx, STORE_SQL_CLUSTER_SET_DESC,
				   SV_ARGS(SV_INT(id), SV_TEXT(u->description)), NULL);
	if (rc == 0 && u->disk_threshold >= 0)
		rc = store_cluster_config_set(tx, id, "disk_threshold", u->disk_threshold);
	if (rc == 0 && u->memory_threshold >= 0)
		rc = store_cluster_config_set(tx, id, "memory_threshold", u->memory_threshold);
	return rc;
}

/* Begins a write transaction on the cluster called name: -ENOENT when there is none. */
static int store_cluster_begin(struct store *s, struct store_tx *tx, const char *name,
			       struct cluster_keys *k, const char *func)
{
	int rc = store_tx_begin(s, tx, STORE_TX_WRITE, func);

	if (rc == 0)
		rc = store_tx_one(tx, STORE_SQL_CLUSTER_KEYS, SV_ARGS(SV_TEXT(name)),
				  SC_SPEC(cluster_key_cols), k);
	return rc;
}

int store_cluster_update(struct store *s, const char *name, const struct store_cluster_update *u)
{
	struct cluster_keys k = {0};
	struct store_tx tx;
	int rc = store_cluster_begin(s, &tx, name, &k, __func__);

	if (rc == 0)
		rc = store_cluster_apply(&tx, k.id, u);
	free(k.fingerprint);
	return store_tx_end(&tx, rc);
}

/*
 * The cascade is written out rather than left to the schema's foreign
 * keys, so it holds on any backend: status, settings and the tunnel row go
 * with the cluster, in the same transaction.
 */
int store_cluster_delete(struct store *s, const char *name)
{
	static const enum store_sql cascade[] = {STORE_SQL_STATUS_DELETE, STORE_SQL_CONFIG_DELETE,
						 STORE_SQL_TUNNEL_DELETE};
	struct cluster_keys k = {0};
	struct store_tx tx;
	int rc = store_cluster_begin(s, &tx, name, &k, __func__);

	for (size_t i = 0; rc == 0 && i < sizeof(cascade) / sizeof(cascade[0]); i++)
		rc = store_tx_exec(&tx, cascade[i], SV_ARGS(SV_INT(k.id)), NULL);
	if (rc == 0)
		rc = store_tx_change(&tx, STORE_SQL_CLUSTER_DELETE, SV_ARGS(SV_INT(k.id)));
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_CLUSTER_REMOVED, name, k.fingerprint);
	free(k.fingerprint);
	return store_tx_end(&tx, rc);
}

static int store_status_write(struct store_tx *tx, const struct store_status_row *r)
{
	return store_tx_change(tx, STORE_SQL_STATUS_SET,
			       SV_ARGS(SV_TEXT(r->name), SV_INT(r->now), SV_TEXT(r->status_json)));
}

int store_cluster_set_status(struct store *s, const char *name, const char *status_json,
			     int64_t now)
{
	struct store_status_row r = {name, status_json, now};
	struct store_tx tx;
	int rc;

	if (status_json == NULL)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);
	if (rc == 0)
		rc = store_status_write(&tx, &r);
	return store_tx_end(&tx, rc);
}

/*
 * Group commit of heartbeats: a row whose cluster is gone gets -ENOENT and
 * does not fail the others; any other failure rolls the whole transaction
 * back and every row reads -EIO (nothing of it was written).
 */
int store_cluster_set_status_many(struct store *s, const struct store_status_row *rows, size_t n,
				  int *rcs)
{
	struct store_tx tx;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		rcs[i] = rows[i].status_json ? 0 : -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	for (i = 0; rc == 0 && i < n; i++) {
		if (rcs[i] != 0)
			continue;
		rc = store_status_write(&tx, &rows[i]);
		if (rc == -ENOENT) {
			rcs[i] = -ENOENT;
			rc = 0;
		}
	}
	rc = store_tx_end(&tx, rc == 0 ? 0 : -EIO);
	if (rc != 0)
		for (i = 0; i < n; i++)
			rcs[i] = rcs[i] == -EINVAL ? -EINVAL : -EIO;
	return rc;
}

/* ---- join ---- */

struct join_token_row {
	char *secret_hash;
	int64_t expires_at;
	char *description;
};
static const struct store_col join_token_cols[] = {
    {SC_SECRET, offsetof(struct join_token_row, secret_hash), 0},
    {SC_INT64, offsetof(struct join_token_row, expires_at), 0},
    {SC_TEXT, offsetof(struct join_token_row, description), 0},
};

/*
 * The secret check of a join: the stored hash and the presented one are
 * compared in constant time (only their lengths, which are public, can
 * leak), and the token must not have expired at now.
 */
static int store_join_secret_ok(const struct join_token_row *t, const char *secret_hash,
				int64_t now)
{
	const char *stored = t->secret_hash;
	int match = stored != NULL && strlen(stored) == STORE_HASH_HEX_LEN && secret_hash != NULL &&
		    strnlen(secret_hash, STORE_HASH_HEX_LEN + 1) == STORE_HASH_HEX_LEN &&
		    CRYPTO_memcmp(stored, secret_hash, STORE_HASH_HEX_LEN) == 0;

	return match && t->expires_at > now;
}

/* A join without a description takes the token's (the operator's words). */
static const char *store_join_description(const struct store_cluster *c,
					  const struct join_token_row *t)
{
	if (c->description != NULL && c->description[0] != '\0')
		return c->description;
	return t->description != NULL ? t->description : "";
}

/* Inserts the cluster row and its default settings. */
static int store_join_insert(struct store_tx *tx, const struct store_cluster *c,
			     const struct join_token_row *t, int64_t now)
{
	const char *desc = store_join_description(c, t);
	int64_t id = 0;
	int rc;

	rc = store_tx_one(tx, STORE_SQL_CLUSTER_INSERT,
			  SV_ARGS(SV_TEXT(c->name), SV_TEXT(desc), SV_TEXT(c->certificate),
				  SV_TEXT(c->fingerprint), SV_TEXT(STORE_STATUS_ACTIVE),
				  SV_INT(now)),
			  SC_ONE(SC_INT64), &id);
	if (rc == -ENOENT)
		rc = -EIO; /* an insert that returns no id: the backend broke its contract */
	if (rc == 0)
		rc = store_cluster_config_set(tx, id, "disk_threshold", STORE_DEFAULT_THRESHOLD);
	if (rc == 0)
		rc = store_cluster_config_set(tx, id, "memory_threshold", STORE_DEFAULT_THRESHOLD);
	return rc;
}

/* The checks and writes of a join, inside the caller's write transaction. */
static int store_join_tx(struct store_tx *tx, const struct store_cluster *c,
			 const char *secret_hash, int64_t now)
{
	struct join_token_row t = {0};
	int rc;

	rc = store_tx_one(tx, STORE_SQL_JOIN_TOKEN_GET, SV_ARGS(SV_TEXT(c->name)),
			  SC_SPEC(join_token_cols), &t);
	if (rc == 0 && !store_join_secret_ok(&t, secret_hash, now))
		rc = -EACCES;
	if (rc == 0)
		rc = store_tx_exists(tx, STORE_SQL_CLUSTER_TAKEN,
				     SV_ARGS(SV_TEXT(c->name), SV_TEXT(c->fingerprint)));
	if (rc == 1)
		rc = -EEXIST;
	if (rc == 0)
		rc = store_join_insert(tx, c, &t, now);
	/* Single use: the token goes, and a token someone else used meanwhile fails the join. */
	if (rc == 0)
		rc = store_tx_change(tx, STORE_SQL_JOIN_TOKEN_DELETE, SV_ARGS(SV_TEXT(c->name)));
	store_cols_clear(SC_SPEC(join_token_cols), &t);
	return rc;
}

/*
 * Uses c->name, description, certificate and fingerprint; the cluster gets
 * status ACTIVE, joined_at = created_at = now and both thresholds at their
 * default, whatever else c holds. Nothing is written unless all checks pass:
 * a wrong secret leaves the token in place.
 */
int store_cluster_join(struct store *s, const struct store_cluster *c, const char *secret_hash,
		       int64_t now)
{
	struct store_tx tx;
	int rc;

	if (c->name == NULL || c->certificate == NULL || c->fingerprint == NULL)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	if (rc == 0)
		rc = store_join_tx(&tx, c, secret_hash, now);
	if (rc == 0) {
		store_tx_announce(&tx, STORE_CHANGE_JOIN_TOKEN_USED, c->name, NULL);
		store_tx_announce(&tx, STORE_CHANGE_CLUSTER_ADDED, c->name, c->fingerprint);
	}
	return store_tx_end(&tx, rc);
}

/* ---- records ---- */

void store_cluster_clear(struct store_cluster *c)
{
	store_cols_reset(SC_SPEC(cluster_cols), c, sizeof(*c));
}

void store_cluster_list_free(struct store_cluster *list, size_t n)
{
	store_cols_list_free(SC_SPEC(cluster_cols), list, n, sizeof(*list));
}
