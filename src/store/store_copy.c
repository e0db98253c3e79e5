/*
 * store_copy.c - copies everything a store knows into another, empty one
 * (`lxcm-server migrate-db`: SQLite to PostgreSQL).
 *
 * One write transaction on the destination: it gets all of the source or
 * nothing. Rows stream from the source's READ statement straight into the
 * destination's WRITE statement (the columns of one are the values of the
 * other), keeping ids, so the references between tables (status and
 * settings to their cluster) hold. Then the destination's id generators
 * are moved past the copied ids. Runtime state (tunnel ownership,
 * replicas) is not copied: it belongs to running servers.
 */
#include <errno.h>

#include "common/log.h"
#include "store/store.h"
#include "store/store_tx.h"

struct copy_step {
	const char *what;
	enum store_sql read, write;
};

/* In an order that satisfies the foreign keys. */
static const struct copy_step copy_steps[] = {
    {"clusters", STORE_SQL_COPY_READ_CLUSTERS, STORE_SQL_COPY_WRITE_CLUSTERS},
    {"cluster status", STORE_SQL_COPY_READ_STATUS, STORE_SQL_COPY_WRITE_STATUS},
    {"cluster settings", STORE_SQL_COPY_READ_CONFIG, STORE_SQL_COPY_WRITE_CONFIG},
    {"join tokens", STORE_SQL_COPY_READ_JOIN_TOKENS, STORE_SQL_COPY_WRITE_JOIN_TOKENS},
    {"API tokens", STORE_SQL_COPY_READ_API_TOKENS, STORE_SQL_COPY_WRITE_API_TOKENS},
    {"audit rows", STORE_SQL_COPY_READ_AUDIT, STORE_SQL_COPY_WRITE_AUDIT},
};

struct copy_ctx {
	struct store_tx *dst;
	enum store_sql write;
	int64_t rows;
};

static int copy_row(void *arg, const struct store_val *cols, size_t ncols)
{
	struct copy_ctx *c = arg;
	int rc = store_tx_exec(c->dst, c->write, cols, ncols, NULL);

	if (rc == 0)
		c->rows++;
	return rc;
}

int store_copy(struct store *src, struct store *dst, struct store_copy_counts *counts)
{
	struct store_tx from, to;
	struct copy_ctx c = {&to, 0, 0};
	int rc, rc2, reading = 0;

	*counts = (struct store_copy_counts){0};
	rc = store_tx_begin(dst, &to, STORE_TX_WRITE, __func__);
	if (rc == 0) {
		rc = store_tx_exists(&to, STORE_SQL_COPY_HAS_DATA, SV_NONE);
		if (rc == 1) {
			LOG_ERROR("the destination store is not empty");
			rc = -EEXIST;
		}
	}
	if (rc == 0) {
		rc = store_tx_begin(src, &from, STORE_TX_AUTO, __func__);
		reading = rc == 0;
	}
	for (size_t i = 0; rc == 0 && i < sizeof(copy_steps) / sizeof(copy_steps[0]); i++) {
		c.write = copy_steps[i].write;
		c.rows = 0;
		rc = store_tx_rows(&from, copy_steps[i].read, SV_NONE, copy_row, &c);
		if (rc == 0) {
			counts->rows[i] = c.rows;
			LOG_INFO("copied %lld %s", (long long)c.rows, copy_steps[i].what);
		}
	}
	if (reading)
		store_tx_end(&from, 0);
	if (rc == 0)
		rc = store_tx_rows(&to, STORE_SQL_COPY_RESEED, SV_NONE, NULL, NULL);
	rc2 = store_tx_end(&to, rc);
	return rc != 0 ? rc : rc2;
}
