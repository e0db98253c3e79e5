/*
 * store_api_token.c - API tokens of the management API, kept as SHA-256
 * hashes, each with a role (viewer, operator, admin). The rule: the last
 * admin token cannot be revoked, or nobody could manage tokens any more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_tx.h"

#define STORE_HASH_HEX_LEN 64

#define AF(field) offsetof(struct store_api_token, field)
/* STORE_SQL_API_TOKEN_LIST: the hash is cut to its prefix as it is read. */
static const struct store_col api_token_cols[] = {
    {SC_TEXT, AF(name), 0},
    {SC_INT64, AF(created_at), 0},
    {SC_CHARS, AF(hash_prefix), sizeof(((struct store_api_token *)0)->hash_prefix)},
    {SC_CHARS, AF(role), sizeof(((struct store_api_token *)0)->role)},
};

#define IF(field) offsetof(struct store_api_token_info, field)
/* STORE_SQL_API_TOKEN_LOOKUP */
static const struct store_col api_token_info_cols[] = {
    {SC_INT64, IF(id), 0},
    {SC_CHARS, IF(name), sizeof(((struct store_api_token_info *)0)->name)},
    {SC_CHARS, IF(role), sizeof(((struct store_api_token_info *)0)->role)},
};

int store_api_token_create(struct store *s, const char *name, const char *hash, int64_t now)
{
	struct store_tx tx;
	int rc;

	if (name == NULL || hash == NULL)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);
	if (rc == 0)
		rc = store_tx_exec(&tx, STORE_SQL_API_TOKEN_INSERT,
				   SV_ARGS(SV_TEXT(name), SV_TEXT(hash), SV_INT(now)), NULL);
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_API_TOKEN_CREATED, name, hash);
	return store_tx_end(&tx, rc);
}

/*
 * The lookup by hash goes through the index and is not constant time; that
 * is fine because the hash is of a high-entropy random token, so learning
 * hash prefixes tells nothing about other tokens.
 */
int store_api_token_check(struct store *s, const char *hash, char **name_out)
{
	char *name = NULL;
	int rc = store_read_one(s, __func__, STORE_SQL_API_TOKEN_BY_HASH, SV_ARGS(SV_TEXT(hash)),
				SC_ONE(SC_TEXT), &name);

	if (name_out != NULL)
		*name_out = name;
	else
		free(name);
	return rc;
}

int store_api_token_count(struct store *s, int64_t *count)
{
	*count = 0;
	return store_read_one(s, __func__, STORE_SQL_API_TOKEN_COUNT, SV_NONE, SC_ONE(SC_INT64),
			      count);
}

int store_api_token_list(struct store *s, struct store_api_token **out, size_t *n)
{
	return store_read_list(s, __func__, STORE_SQL_API_TOKEN_LIST, SV_NONE,
			       SC_SPEC(api_token_cols), sizeof(**out), (void **)out, n);
}

/* The checks and the delete of a revocation, inside a write transaction. */
static int store_api_token_revoke(struct store_tx *tx, const char *name, char **hash)
{
	int64_t count = 0;
	int rc;

	rc = store_tx_one(tx, STORE_SQL_API_TOKEN_HASH_BY_NAME, SV_ARGS(SV_TEXT(name)),
			  SC_ONE(SC_TEXT), hash);
	if (rc == 0)
		rc = store_tx_change(tx, STORE_SQL_API_TOKEN_DELETE, SV_ARGS(SV_TEXT(name)));
	/* Counted after the delete: none left means it was the last admin. */
	if (rc == 0)
		rc = store_tx_one(tx, STORE_SQL_API_TOKEN_ADMIN_COUNT, SV_NONE, SC_ONE(SC_INT64),
				  &count);
	if (rc == 0 && count == 0)
		rc = -EBUSY; /* rolled back by store_tx_end */
	return rc;
}

int store_api_token_delete(struct store *s, const char *name)
{
	struct store_tx tx;
	char *hash = NULL;
	int rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);

	if (rc == 0)
		rc = store_api_token_revoke(&tx, name, &hash);
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_API_TOKEN_REVOKED, name, hash);
	free(hash);
	return store_tx_end(&tx, rc);
}

struct api_token_hashes {
	char (*out)[65];
	size_t max, n;
};

/* Keeps well-formed hashes only, up to max. */
static int store_api_token_hash_row(void *arg, const struct store_val *cols, size_t ncols)
{
	struct api_token_hashes *h = arg;

	if (ncols < 1 || cols[0].type != STORE_TEXT || cols[0].len != STORE_HASH_HEX_LEN ||
	    h->n >= h->max)
		return 0;
	memcpy(h->out[h->n], cols[0].text, STORE_HASH_HEX_LEN);
	h->out[h->n][STORE_HASH_HEX_LEN] = '\0';
	h->n++;
	return 0;
}

int store_api_token_hashes(struct store *s, char (*out)[65], size_t max, size_t *n)
{
	struct api_token_hashes h = {out, max, 0};
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);

	if (rc == 0)
		rc = store_tx_rows(&tx, STORE_SQL_API_TOKEN_HASHES, SV_NONE,
				   store_api_token_hash_row, &h);
	*n = rc == 0 ? h.n : 0;
	return store_tx_end(&tx, rc);
}

static int store_api_token_role_valid(const char *role)
{
	return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
				strcmp(role, "viewer") == 0);
}

int store_api_token_create_role(struct store *s, const char *name, const char *hash,
				const char *role, int64_t now)
{
	struct store_tx tx;
	int rc;

	if (name == NULL || hash == NULL || !store_api_token_role_valid(role))
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);
	if (rc == 0)
		rc = store_tx_exec(&tx, STORE_SQL_API_TOKEN_INSERT_ROLE,
				   SV_ARGS(SV_TEXT(name), SV_TEXT(hash), SV_INT(now), SV_TEXT(role)),
				   NULL);
	if (rc == 0)
		store_tx_announce(&tx, STORE_CHANGE_API_TOKEN_CREATED, name, hash);
	return store_tx_end(&tx, rc);
}

/* Not constant time, for the reason store_api_token_check gives. */
int store_api_token_lookup(struct store *s, const char *hash, struct store_api_token_info *out)
{
	memset(out, 0, sizeof(*out));
	return store_read_one(s, __func__, STORE_SQL_API_TOKEN_LOOKUP, SV_ARGS(SV_TEXT(hash)),
			      SC_SPEC(api_token_info_cols), out);
}

void store_api_token_list_free(struct store_api_token *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}
