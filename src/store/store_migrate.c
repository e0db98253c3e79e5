/*
 * store_migrate.c - applies a backend's numbered migrations, each in its
 * own transaction, recorded in schema_migrations. The migrations of a
 * dialect are SQL files compiled into the binary
 * (cmake/embed_migrations.cmake); the backend names its own table.
 */
#include <errno.h>
#include <time.h>

#include "common/log.h"
#include "store/store_tx.h"

/*
 * Applies one migration unless it is recorded already. The check runs
 * inside the write transaction, so two processes opening the same new
 * database do not both apply it.
 */
static int store_migrate_one(struct store *s, const struct store_migration *m)
{
	struct store_tx tx;
	int rc, applied = 0;

	rc = store_tx_begin(s, &tx, STORE_TX_WRITE, __func__);
	if (rc == 0)
		rc = applied =
		    store_tx_exists(&tx, STORE_SQL_MIGRATION_APPLIED, SV_ARGS(SV_INT(m->version)));
	if (rc == 0)
		rc = s->ops->script(tx.conn, m->sql);
	if (rc == 0)
		rc = store_tx_exec(
		    &tx, STORE_SQL_MIGRATION_RECORD,
		    SV_ARGS(SV_INT(m->version), SV_TEXT(m->name), SV_INT((int64_t)time(NULL))),
		    NULL);
	rc = store_tx_end(&tx, rc < 0 ? rc : 0);
	if (rc == 0 && !applied)
		LOG_INFO("applied migration %s", m->name);
	return rc;
}

/* A database written by a newer lxcm may not fit this binary: say so. */
static int store_migrate_check_newer(struct store *s, int latest)
{
	int64_t max = 0;
	int rc =
	    store_read_one(s, __func__, STORE_SQL_MIGRATION_MAX, SV_NONE, SC_ONE(SC_INT64), &max);

	if (rc == 0 && max > latest)
		LOG_WARN("database schema version %lld is newer than this binary's %d",
			 (long long)max, latest);
	return rc == -ENOENT ? 0 : rc;
}

int store_migrate(struct store *s)
{
	const struct store_migration *list = s->ops->migrations;
	int rc, prev = 0, n = *s->ops->nmigrations;

	rc = store_write_one(s, __func__, STORE_SQL_MIGRATIONS_TABLE, SV_NONE, 0);
	for (int i = 0; rc == 0 && i < n; i++) {
		if (list[i].version <= prev) {
			LOG_ERROR("migration %s is out of order", list[i].name);
			return -EIO;
		}
		prev = list[i].version;
		rc = store_migrate_one(s, &list[i]);
	}
	if (rc == 0)
		rc = store_migrate_check_newer(s, prev);
	return rc;
}

/* For readiness checks: the recorded schema is at least this binary's latest. */
int store_schema_check(struct store *s)
{
	const struct store_migration *list = s->ops->migrations;
	int n = *s->ops->nmigrations;
	int64_t max = 0;
	int rc =
	    store_read_one(s, __func__, STORE_SQL_MIGRATION_MAX, SV_NONE, SC_ONE(SC_INT64), &max);

	if (rc == -ENOENT)
		max = 0;
	else if (rc < 0)
		return rc;
	return n == 0 || max >= list[n - 1].version ? 0 : -ESTALE;
}
