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

/* clang-format off */
#define SQ_CLUSTER_SELECT \
	"SELECT c.id, c.name, c.description, c.certificate, c.fingerprint, c.status," \
	" c.joined_at, c.created_at," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'disk_threshold'), 80)," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'memory_threshold'), 80)," \
	" s.updated_at, s.body" \
	" FROM clusters c LEFT JOIN cluster_status s ON s.cluster_id = c.id"
/* clang-format on */

/* STORE_SESSION_COLUMNS (store_ops.h) */
#define SQLITE_SESSION_COLUMNS                                                                     \
	"id, hash, issuer, subject, name, email, groups, role, created_at, last_seen,"             \
	" idle_expires_at, expires_at, user_agent, address, tokens, access_expires_at"

static const char *const sq_sql[STORE_SQL__COUNT] = {
    [STORE_SQL_MIGRATIONS_TABLE] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
				   " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
				   " applied_at INTEGER NOT NULL)",
    [STORE_SQL_MIGRATION_APPLIED] = "SELECT 1 FROM schema_migrations WHERE version = ?1",
    [STORE_SQL_MIGRATION_RECORD] =
	"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
    [STORE_SQL_MIGRATION_MAX] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",

    [STORE_SQL_CLUSTER_LIST] = SQ_CLUSTER_SELECT " ORDER BY c.name",
    [STORE_SQL_CLUSTER_GET] = SQ_CLUSTER_SELECT " WHERE c.name = ?1",
    [STORE_SQL_CLUSTER_GET_BY_FP] = SQ_CLUSTER_SELECT " WHERE c.fingerprint = ?1",
    [STORE_SQL_CLUSTER_NAME_BY_FP] = "SELECT name FROM clusters WHERE fingerprint = ?1",
    [STORE_SQL_CLUSTER_KEYS] = "SELECT id, fingerprint FROM clusters WHERE name = ?1",
    [STORE_SQL_CLUSTER_TAKEN] =
	"SELECT 1 FROM clusters WHERE name = ?1 OR fingerprint = ?2 LIMIT 1",
    [STORE_SQL_CLUSTER_INSERT] = "INSERT INTO clusters (name, description, certificate,"
				 " fingerprint, status, joined_at, created_at)"
				 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
    [STORE_SQL_CLUSTER_SET_DESC] = "UPDATE clusters SET description = ?2 WHERE id = ?1",
    [STORE_SQL_CLUSTER_DELETE] = "DELETE FROM clusters WHERE id = ?1",
    [STORE_SQL_CONFIG_SET] =
	"INSERT INTO cluster_config (cluster_id, key, value) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (cluster_id, key) DO UPDATE SET value = excluded.value",
    [STORE_SQL_CONFIG_DELETE] = "DELETE FROM cluster_config WHERE cluster_id = ?1",
    /* The WHERE keeps SQLite's parser from reading ON CONFLICT as a join. */
    [STORE_SQL_STATUS_SET] = "INSERT INTO cluster_status (cluster_id, updated_at, body)"
			     " SELECT id, ?2, ?3 FROM clusters WHERE name = ?1"
			     " ON CONFLICT (cluster_id) DO UPDATE SET"
			     " updated_at = excluded.updated_at, body = excluded.body",
    [STORE_SQL_STATUS_DELETE] = "DELETE FROM cluster_status WHERE cluster_id = ?1",

    [STORE_SQL_JOIN_TOKEN_GET] = "SELECT secret_hash, expires_at, description FROM join_tokens"
				 " WHERE cluster_name = ?1",
    [STORE_SQL_JOIN_TOKEN_NAME_TAKEN] = "SELECT 1 FROM join_tokens WHERE cluster_name = ?1"
					" UNION ALL SELECT 1 FROM clusters WHERE name = ?1 LIMIT 1",
    [STORE_SQL_JOIN_TOKEN_INSERT] = "INSERT INTO join_tokens (cluster_name, description,"
				    " secret_hash, expires_at, created_at)"
				    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [STORE_SQL_JOIN_TOKEN_LIST] = "SELECT cluster_name, description, secret_hash, expires_at,"
				  " created_at FROM join_tokens ORDER BY cluster_name",
    [STORE_SQL_JOIN_TOKEN_DELETE] = "DELETE FROM join_tokens WHERE cluster_name = ?1",
    [STORE_SQL_JOIN_TOKEN_DELETE_EXPIRED] =
	"DELETE FROM join_tokens WHERE cluster_name = ?1 AND expires_at <= ?2",

    [STORE_SQL_API_TOKEN_INSERT] =
	"INSERT INTO api_tokens (name, hash, created_at) VALUES (?1, ?2, ?3)",
    [STORE_SQL_API_TOKEN_BY_HASH] = "SELECT name FROM api_tokens WHERE hash = ?1",
    [STORE_SQL_API_TOKEN_HASH_BY_NAME] = "SELECT hash FROM api_tokens WHERE name = ?1",
    [STORE_SQL_API_TOKEN_COUNT] = "SELECT COUNT(*) FROM api_tokens",
    [STORE_SQL_API_TOKEN_HASHES] = "SELECT hash FROM api_tokens ORDER BY id",
    [STORE_SQL_API_TOKEN_LIST] =
	"SELECT name, created_at, hash, role FROM api_tokens ORDER BY name",
    [STORE_SQL_API_TOKEN_DELETE] = "DELETE FROM api_tokens WHERE name = ?1",
    [STORE_SQL_API_TOKEN_INSERT_ROLE] =
	"INSERT INTO api_tokens (name, hash, created_at, role) VALUES (?1, ?2, ?3, ?4)",
    [STORE_SQL_API_TOKEN_LOOKUP] = "SELECT id, name, role FROM api_tokens WHERE hash = ?1",
    [STORE_SQL_API_TOKEN_ADMIN_COUNT] = "SELECT COUNT(*) FROM api_tokens WHERE role = 'admin'",

    [STORE_SQL_TUNNEL_SET] =
	"INSERT INTO tunnels (cluster_id, replica, epoch, protocol, connected_since)"
	" SELECT id, ?2, ?3, ?4, ?5 FROM clusters WHERE name = ?1"
	" ON CONFLICT (cluster_id) DO UPDATE SET replica = excluded.replica,"
	" epoch = excluded.epoch, protocol = excluded.protocol,"
	" connected_since = excluded.connected_since",
    [STORE_SQL_TUNNEL_CLEAR] =
	"DELETE FROM tunnels WHERE cluster_id = (SELECT id FROM clusters WHERE name = ?1)"
	" AND replica = ?2 AND epoch = ?3",
    [STORE_SQL_TUNNEL_CLEAR_REPLICA] = "DELETE FROM tunnels WHERE replica = ?1",
    [STORE_SQL_TUNNEL_GET] = "SELECT t.replica, t.protocol, t.epoch, t.connected_since"
			     " FROM tunnels t JOIN clusters c ON c.id = t.cluster_id"
			     " WHERE c.name = ?1",
    [STORE_SQL_TUNNEL_DELETE] = "DELETE FROM tunnels WHERE cluster_id = ?1",

    [STORE_SQL_AUDIT_SEEN] = "SELECT 1 FROM audit_log WHERE request_id = ?1",
    [STORE_SQL_AUDIT_INSERT] = "INSERT INTO audit_log (at, actor, cluster, method, path,"
			       " status, bytes_in, bytes_out, duration_ms, request_id)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STORE_SQL_AUDIT_COUNT] = "SELECT COUNT(*) FROM audit_log",

    [STORE_SQL_SESSION_INSERT] =
	"INSERT INTO sessions (id, hash, issuer, subject, name, email, groups, role, created_at,"
	" last_seen, idle_expires_at, expires_at, user_agent, address, tokens, access_expires_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [STORE_SQL_SESSION_BY_HASH] = "SELECT " SQLITE_SESSION_COLUMNS " FROM sessions WHERE hash = ?1",
    [STORE_SQL_SESSION_BY_ID] = "SELECT " SQLITE_SESSION_COLUMNS " FROM sessions WHERE id = ?1",
    [STORE_SQL_SESSION_TOUCH] =
	"UPDATE sessions SET last_seen = ?2, idle_expires_at = ?3 WHERE hash = ?1",
    [STORE_SQL_SESSION_UPDATE] = "UPDATE sessions SET groups = ?2, role = ?3, tokens = ?4,"
				 " access_expires_at = ?5 WHERE hash = ?1",
    [STORE_SQL_SESSION_DELETE] = "DELETE FROM sessions WHERE hash = ?1",
    [STORE_SQL_SESSION_LIST] =
	"SELECT " SQLITE_SESSION_COLUMNS " FROM sessions ORDER BY created_at, id",
    [STORE_SQL_SESSION_LIST_USER] = "SELECT " SQLITE_SESSION_COLUMNS " FROM sessions"
				    " WHERE issuer = ?1 AND subject = ?2 ORDER BY created_at, id",
    [STORE_SQL_SESSION_EXPIRED] =
	"SELECT hash FROM sessions WHERE idle_expires_at <= ?1 OR expires_at <= ?1",
    [STORE_SQL_IDENTITY_UPSERT] =
	"INSERT INTO identities (issuer, subject, name, email, groups, role, first_seen, last_seen)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (issuer, subject) DO UPDATE SET"
	" name = excluded.name, email = excluded.email, groups = excluded.groups,"
	" role = excluded.role, last_seen = excluded.last_seen",
    [STORE_SQL_IDENTITY_LIST] =
	"SELECT i.issuer, i.subject, i.name, i.email, i.groups, i.role, i.first_seen, i.last_seen,"
	" (SELECT COUNT(*) FROM sessions s WHERE s.issuer = i.issuer AND s.subject = i.subject)"
	" FROM identities i ORDER BY i.email, i.subject",
    [STORE_SQL_KEY_INSERT] = "INSERT INTO server_keys (name, value, created_at) VALUES (?1, ?2, ?3)"
			     " ON CONFLICT (name) DO NOTHING",
    [STORE_SQL_KEY_GET] = "SELECT value FROM server_keys WHERE name = ?1",
};

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
	    sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
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
    .sql = sq_sql,
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
