/*
 * store_join_token.c - join tokens: at most one live token per cluster
 * name, never for a name a cluster has. Using a token is part of the join
 * (store_cluster_join).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_tx.h"

#define TF(field) offsetof(struct store_join_token, field)
static const struct store_col join_token_cols[] = {
    {SC_TEXT, TF(cluster_name), 0}, {SC_TEXT, TF(description), 0}, {SC_SECRET, TF(secret_hash), 0},
    {SC_INT64, TF(expires_at), 0},  {SC_INT64, TF(created_at), 0},
};

/* An expired token no longer holds its name: a new one replaces it. */
static int store_join_token_insert(struct store_tx *tx, const struct store_join_token *t)
{
	int rc;

	rc = store_tx_exec(tx, STORE_SQL_JOIN_TOKEN_DELETE_EXPIRED,
			   SV_ARGS(SV_TEXT(t->cluster_name), SV_INT(t->created_at)), NULL);
	if (rc == 0)
		rc = store_tx_exists(tx, STORE_SQL_JOIN_TOKEN_NAME_TAKEN,
				     SV_ARGS(SV_TEXT(t->cluster_name)));
	if (rc == 1)
		return -EEXIST;
	if (rc == 0)
		rc = store_tx_exec(
		    tx, STORE_SQL_JOIN_TOKEN_INSERT,
		    SV_ARGS(SV_TEXT(t->cluster_name), SV_TEXT(t->description ? t->description : ""),
			    SV_TEXT(t->secret_hash), SV_INT(t->expires_at), SV_INT(t->created_at)),
		    NULL);
	return rc;
}

int store_join_token_create(struct store *s, const struct store_join_token *t)
{
	struct store_tx tx;
	int rc;

	if (t->cluster_name == NULL || t->secret_hash == NULL)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	if (rc == 0)
		rc = store_join_token_insert(&tx, t);
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_JOIN_TOKEN_CREATED, t->cluster_name, NULL);
	return store_tx_end(&tx, rc);
}

int store_join_token_list(struct store *s, struct store_join_token **out, size_t *n)
{
	return store_read_list(s, __func__, STORE_SQL_JOIN_TOKEN_LIST, SV_NONE,
			       SC_SPEC(join_token_cols), sizeof(**out), (void **)out, n);
}

int store_join_token_delete(struct store *s, const char *cluster_name)
{
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);

	if (rc == 0)
		rc = store_tx_change(&tx, STORE_SQL_JOIN_TOKEN_DELETE,
				     SV_ARGS(SV_TEXT(cluster_name)));
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_JOIN_TOKEN_REVOKED, cluster_name, NULL);
	return store_tx_end(&tx, rc);
}

/* The hash is wiped (SC_SECRET): only a hash, but no reason to leave it in freed memory. */
void store_join_token_clear(struct store_join_token *t)
{
	store_cols_reset(SC_SPEC(join_token_cols), t, sizeof(*t));
}

void store_join_token_list_free(struct store_join_token *list, size_t n)
{
	store_cols_list_free(SC_SPEC(join_token_cols), list, n, sizeof(*list));
}
