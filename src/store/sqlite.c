/*
 * sqlite.c - the SQLite backend of the store: SQL in SQLite's dialect, one
 * connection, transactions (the contract is store_ops.h; the rules are
 * above, in store_*.c).
 *
 * One connection per store, opened with SQLITE_OPEN_FULLMUTEX and lent to
 * one operation at a time under our own mutex: SQLite's mutex covers one
 * call, but an operation is several statements in one transaction, which
 * must not interleave with another thread's.
 *
 * Statements are prepared on first use and kept (under the mutex). Every
 * statement is reset as soon as its rows are read, so no read transaction
 * stays open between calls and WAL checkpoints can proceed. SQL text is
 * constant; all values go through bound parameters.
 *
 * Every SQLite failure is logged here, once, with the name of the store
 * operation, and returned as -EIO.
 */
#include "store/store_ops.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/log.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_MAX_COLUMNS 16


struct store_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_SQL__COUNT];
	const char *func; /* the operation holding the connection, for logs */
};

struct sq_store {
	struct store sq_base; /* first: a struct store * is a struct sq_store * */
	pthread_mutex_t sq_mu;
	struct store_conn sq_conn;
};

/* Logs the connection's last error for the operation that holds it; returns -EIO. */
static int sq_err(struct store_conn *c, const char *what)
{
	log_msg(LOG_LEVEL_ERROR, c->func ? c->func : "sqlite", "sqlite %s: %s", what,
		sqlite3_errmsg(c->db));
	return -EIO;
}

static int sq_acquire(struct store *s, const char *func, struct store_conn **out)
{
	struct sq_store *q = (struct sq_store *)s;

	pthread_mutex_lock(&q->sq_mu);
	q->sq_conn.func = func;
	*out = &q->sq_conn;
	return 0;
}

static void sq_release(struct store *s, struct store_conn *c)
{
	struct sq_store *q = (struct sq_store *)s;

	c->func = NULL;
	pthread_mutex_unlock(&q->sq_mu);
}

/* Runs constant SQL text (transaction control, schema). 0 or -EIO. */
static int sq_script(struct store_conn *c, const char *sql)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(c, sql);
	return 0;
}

/* BEGIN IMMEDIATE takes the write lock now, so check-then-write is atomic
 * across processes too, and waits up to the busy timeout for it. */
static int sq_begin(struct store_conn *c)
{
	return sq_script(c, "BEGIN IMMEDIATE");
}

static void sq_rollback(struct store_conn *c)
{
	/* SQLite may have rolled back by itself already (e.g. on SQLITE_FULL). */
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A failed commit leaves no transaction open. */
static int sq_commit(struct store_conn *c)
{
	int rc = sq_script(c, "COMMIT");

	if (rc != 0)
		sq_rollback(c);
	return rc;
}

/* The cached statement id, prepared on first use, or NULL (logged). */
static sqlite3_stmt *sq_stmt(struct store_conn *c, enum store_sql id)
{
	if (c->stmts[id] == NULL &&
	    sqlite3_prepare_v3(c->db, store_sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
			       NULL) != SQLITE_OK) {
		sq_err(c, "prepare");
		return NULL;
	}
	return c->stmts[id];
}

/* Binds the values; the text is copied, so the caller's strings may go. */
static int sq_bind(struct store_conn *c, sqlite3_stmt *st, const struct store_val *args,
		   size_t nargs)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; rc == SQLITE_OK && i < nargs; i++) {
		int idx = (int)i + 1;

		if (args[i].type == STORE_INT)
			rc = sqlite3_bind_int64(st, idx, args[i].i);
		else if (args[i].type == STORE_TEXT && args[i].text != NULL)
			rc = sqlite3_bind_text(st, idx, args[i].text, -1, SQLITE_TRANSIENT);
		else
			rc = sqlite3_bind_null(st, idx);
	}
	return rc == SQLITE_OK ? 0 : sq_err(c, "bind");
}

/* Reads the current row's columns; text points into SQLite until the next step. */
static int sq_columns(struct store_conn *c, sqlite3_stmt *st, struct store_val *cols)
{
	int n = sqlite3_column_count(st);

	if (n > SQ_MAX_COLUMNS)
		return sq_err(c, "too many columns");
	for (int i = 0; i < n; i++) {
		memset(&cols[i], 0, sizeof(cols[i]));
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			cols[i].type = STORE_NULL;
			break;
		case SQLITE_INTEGER:
		case SQLITE_FLOAT:
			cols[i].type = STORE_INT;
			cols[i].i = sqlite3_column_int64(st, i);
			break;
		default:
			cols[i].text = (const char *)sqlite3_column_text(st, i);
			if (cols[i].text == NULL)
				return -ENOMEM;
			cols[i].type = STORE_TEXT;
			cols[i].len = (size_t)sqlite3_column_bytes(st, i);
			break;
		}
	}
	return n;
}

/*
 * Steps st once: SQLITE_ROW, SQLITE_DONE, -EEXIST when a UNIQUE or PRIMARY
 * KEY constraint refused a row (not logged: the caller's answer), or -EIO.
 */
static int sq_step(struct store_conn *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
	return sq_err(c, "step");
}

/* The one statement runner (store_ops.exec). */
static int sq_exec(struct store_conn *c, enum store_sql id, const struct store_val *args,
		   size_t nargs, store_row_fn row, void *ctx, int64_t *changes)
{
	struct store_val cols[SQ_MAX_COLUMNS];
	sqlite3_stmt *st = sq_stmt(c, id);
	int rc, n;

	if (st == NULL)
		return -EIO;
	rc = sq_bind(c, st, args, nargs);
	while (rc == 0 && (rc = sq_step(c, st)) == SQLITE_ROW) {
		n = sq_columns(c, st, cols);
		rc = n < 0 ? n : row != NULL ? row(ctx, cols, (size_t)n) : 0;
		if (rc > 0) /* the reader has what it wants */
			rc = SQLITE_DONE;
	}
	if (rc == SQLITE_DONE)
		rc = 0;
	if (rc == 0 && changes != NULL)
		*changes = sqlite3_changes64(c->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Open and close -------------------------------------------------------- */

static void sq_free(struct sq_store *q)
{
	for (int i = 0; i < STORE_SQL__COUNT; i++)
		sqlite3_finalize(q->sq_conn.stmts[i]);
	if (q->sq_conn.db != NULL && sqlite3_close(q->sq_conn.db) != SQLITE_OK)
		LOG_ERROR("sqlite close: %s", sqlite3_errmsg(q->sq_conn.db));
	pthread_mutex_destroy(&q->sq_mu);
	free(q);
}

static void sq_close(struct store *s)
{
	sq_free((struct sq_store *)s);
}

/* Runs a PRAGMA that returns one row and copies its text into buf. */
static int sq_pragma(struct store_conn *c, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *text;
	int rc, n;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_err(c, sql);
	rc = sq_step(c, st);
	if (rc == SQLITE_ROW) {
		text = sqlite3_column_text(st, 0);
		n = snprintf(buf, size, "%s", text != NULL ? (const char *)text : "");
		/* Our pragmas answer a word; anything longer is no expected answer. */
		if (n < 0 || (size_t)n >= size)
			buf[0] = '\0';
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = sq_err(c, sql);
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Connection settings. WAL lets readers run beside the one writer;
 * synchronous=NORMAL is the setting SQLite recommends with WAL: a commit
 * is not fsync'd by itself (only checkpoints are), so an audit row per
 * request does not cost an fsync, and a power loss can lose the last
 * commits but never corrupt the database. Foreign keys are per connection
 * and off by default; we read the pragma back, because a SQLite built
 * without them would silently accept the setting.
 */
static int sq_configure(struct store_conn *c, const char *path)
{
	char val[16];
	int rc;

	sqlite3_extended_result_codes(c->db, 1);
	if (sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return sq_err(c, "busy_timeout");
	rc = sq_script(c, "PRAGMA foreign_keys = ON");
	if (rc == 0)
		rc = sq_pragma(c, "PRAGMA foreign_keys", val, sizeof(val));
	if (rc == 0 && strcmp(val, "1") != 0) {
		LOG_ERROR("SQLite refuses foreign keys for %s", path);
		return -EIO;
	}
	if (rc == 0)
		rc = sq_pragma(c, "PRAGMA journal_mode = WAL", val, sizeof(val));
	if (rc == 0 && strcmp(val, "wal") != 0)
		LOG_WARN("%s: journal mode is %s, not wal", path, val);
	if (rc == 0)
		rc = sq_script(c, "PRAGMA synchronous = NORMAL");
	return rc;
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .sql = store_sql_text,
    .migrations = store_migrations,
    .nmigrations = &store_migration_count,
    .acquire = sq_acquire,
    .release = sq_release,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec = sq_exec,
    .script = sq_script,
    .feed_watch = NULL, /* changes come from this process only */
    .close = sq_close,
};

/*
 * Opens (creating if needed) the database file at path and configures the
 * connection; store_open then applies the migrations. 0 and *out, or
 * -ENOMEM/-EIO (logged).
 */
int store_sqlite_open(const char *path, struct store **out)
{
	struct sq_store *q;
	int rc;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		LOG_ERROR("out of memory");
		return -ENOMEM;
	}
	q->sq_base.ops = &sq_ops;
	rc = pthread_mutex_init(&q->sq_mu, NULL);
	if (rc != 0) {
		LOG_ERROR("pthread_mutex_init: %s", strerror(rc));
		free(q);
		return -rc;
	}
	/* Even on failure sqlite3_open_v2 usually returns a handle to close. */
	if (sqlite3_open_v2(path, &q->sq_conn.db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		if (q->sq_conn.db != NULL)
			LOG_ERROR("cannot open %s: %s", path, sqlite3_errmsg(q->sq_conn.db));
		else
			LOG_ERROR("cannot open %s: out of memory", path);
		rc = q->sq_conn.db != NULL ? -EIO : -ENOMEM;
		goto fail;
	}
	q->sq_conn.func = __func__;
	rc = sq_configure(&q->sq_conn, path);
	q->sq_conn.func = NULL;
	if (rc != 0)
		goto fail;
	*out = &q->sq_base;
	return 0;
fail:
	sq_free(q);
	return rc;
}
