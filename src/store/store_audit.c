/*
 * store_audit.c - the audit log of proxied requests. The rules: each
 * request id is written once, so the rows the audit journal replays after
 * a crash (src/server/audit_journal.c) that had already committed are
 * skipped; a query returns at most STORE_AUDIT_QUERY_MAX rows and leads
 * with its most selective filter (the owner of a viewer's rows, a cluster,
 * an actor); old rows are pruned a bounded batch at a time.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/store_tx.h"

/* Inserts one row unless its request id is known; the caller holds a write transaction. */
static int store_audit_insert(struct store_tx *tx, const struct store_audit *a)
{
	int rc = 0;

	if (a->request_id != NULL)
		rc = store_tx_exists(tx, STORE_SQL_AUDIT_SEEN, SV_ARGS(SV_TEXT(a->request_id)));
	if (rc != 0)
		return rc < 0 ? rc : 0;
	return store_tx_exec(tx, STORE_SQL_AUDIT_INSERT,
			     SV_ARGS(SV_INT(a->at), SV_TEXT(a->actor), SV_TEXT(a->cluster),
				     SV_TEXT(a->method), SV_TEXT(a->path), SV_INT(a->status),
				     SV_INT(a->bytes_in), SV_INT(a->bytes_out),
				     SV_INT(a->duration_ms), SV_TEXT(a->request_id),
				     SV_TEXT(a->actor_name), SV_TEXT(a->client)),
			     NULL);
}

int store_audit_append_many(struct store *s, const struct store_audit *a, size_t n)
{
	struct store_tx tx;
	int rc;

	if (n == 0)
		return 0;
	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_audit_insert(&tx, &a[i]);
	return store_tx_end(&tx, rc);
}

int store_audit_append(struct store *s, const struct store_audit *a)
{
	return store_audit_append_many(s, a, 1);
}

int store_audit_count(struct store *s, int64_t *count)
{
	*count = 0;
	return store_read_one(s, __func__, STORE_SQL_AUDIT_COUNT, SV_NONE, SC_ONE(SC_INT64), count);
}

#define QF(field) offsetof(struct store_audit_row, field)
/* STORE_SQL_AUDIT_QUERY and its variants. */
static const struct store_col audit_row_cols[] = {
    {SC_INT64, QF(id), 0},	   {SC_INT64, QF(at), 0},	  {SC_TEXT, QF(request_id), 0},
    {SC_TEXT, QF(actor), 0},	   {SC_TEXT, QF(actor_name), 0},  {SC_TEXT, QF(client), 0},
    {SC_TEXT, QF(cluster), 0},	   {SC_TEXT, QF(method), 0},	  {SC_TEXT, QF(path), 0},
    {SC_INT, QF(status), 0},	   {SC_INT64, QF(bytes_in), 0},	  {SC_INT64, QF(bytes_out), 0},
    {SC_INT64, QF(duration_ms), 0},
};

/*
 * The variant that leads with the filter that narrows most: a viewer's own
 * rows, then a cluster, then an actor; the time order otherwise.
 */
static enum store_sql store_audit_variant(const struct store_audit_filter *f)
{
	if (f->owner != NULL)
		return STORE_SQL_AUDIT_QUERY_OWNER;
	if (f->cluster != NULL)
		return STORE_SQL_AUDIT_QUERY_CLUSTER;
	if (f->actor != NULL)
		return STORE_SQL_AUDIT_QUERY_ACTOR;
	return STORE_SQL_AUDIT_QUERY;
}

int store_audit_query(struct store *s, const struct store_audit_filter *f,
		      struct store_audit_row **out, size_t *n)
{
	int64_t after_at = f->has_after ? f->after_at : INT64_MAX;
	int64_t after_id = f->has_after ? f->after_id : INT64_MAX;

	*out = NULL;
	*n = 0;
	if (f->limit == 0 || f->limit > STORE_AUDIT_QUERY_MAX || f->status_min > f->status_max ||
	    f->since > f->until)
		return -EINVAL;
	return store_read_list(s, __func__, store_audit_variant(f),
			       SV_ARGS(SV_TEXT(f->cluster), SV_TEXT(f->actor), SV_TEXT(f->owner),
				       SV_INT(f->status_min), SV_INT(f->status_max),
				       SV_INT(f->since), SV_INT(f->until), SV_INT(after_at),
				       SV_INT(after_id), SV_INT(f->limit)),
			       SC_SPEC(audit_row_cols), sizeof(**out), (void **)out, n);
}

void store_audit_rows_free(struct store_audit_row *rows, size_t n)
{
	store_cols_list_free(SC_SPEC(audit_row_cols), rows, n, sizeof(*rows));
}

int store_audit_prune(struct store *s, int64_t before, size_t max, int64_t *deleted)
{
	struct store_tx tx;
	int rc;

	*deleted = 0;
	if (max == 0 || max > INT32_MAX)
		return -EINVAL;
	rc = store_tx_begin(s, &tx, STORE_TX_AUTO, __func__);
	if (rc == 0)
		rc = store_tx_exec(&tx, STORE_SQL_AUDIT_PRUNE, SV_ARGS(SV_INT(before), SV_INT(max)),
				   deleted);
	return store_tx_end(&tx, rc);
}
