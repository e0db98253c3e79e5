/*
 * store_audit.c - the audit log of proxied requests. The rule: each
 * request id is written once, so the rows the audit journal replays after
 * a crash (src/server/audit_journal.c) that had already committed are
 * skipped.
 */
#include <errno.h>
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
				     SV_INT(a->duration_ms), SV_TEXT(a->request_id)),
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
