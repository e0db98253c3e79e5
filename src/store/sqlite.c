/*
 * sqlite.c - the SQLite backend of the store.
 *
 * One connection per store, opened with SQLITE_OPEN_FULLMUTEX and guarded
 * as well by our own mutex: SQLite's mutex covers one call, but most of our
 * operations are several statements in one transaction, which must not
 * interleave with another thread's. Every store_ops function takes the mutex
 * for its whole length.
 *
 * Statements are prepared on first use and kept in a per-store cache (under
 * the mutex). Every statement is reset as soon as its rows are read, so no
 * read transaction stays open between calls and WAL checkpoints can proceed.
 * SQL text is constant; all values go through bound parameters.
 *
 * Every SQLite failure is logged here, once, with the name of the store
 * operation, and returned as -EIO.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "common/log.h"
#include "store/migrations.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_DEFAULT_THRESHOLD 80
#define SQ_HASH_HEX_LEN 64 /* lowercase hex SHA-256 */
#define SQ_STATUS_ACTIVE "ACTIVE"

#define SQ_STR_(x) #x
#define SQ_STR(x) SQ_STR_(x)

enum sq_stmt_id {
	SQ_MIGRATION_APPLIED,
	SQ_MIGRATION_RECORD,
	SQ_MIGRATION_MAX,
	SQ_CLUSTER_LIST,
	SQ_CLUSTER_GET,
	SQ_CLUSTER_GET_BY_FP,
	SQ_CLUSTER_NAME_BY_FP,
	SQ_CLUSTER_ID,
	SQ_CLUSTER_SET_DESC,
	SQ_CLUSTER_DELETE,
	SQ_CLUSTER_TAKEN,
	SQ_CLUSTER_INSERT,
	SQ_CONFIG_SET,
	SQ_STATUS_SET,
	SQ_TOKEN_GET,
	SQ_TOKEN_NAME_TAKEN,
	SQ_TOKEN_INSERT,
	SQ_TOKEN_LIST,
	SQ_TOKEN_DELETE,
	SQ_TOKEN_DELETE_EXPIRED,
	SQ_API_TOKEN_INSERT,
	SQ_API_TOKEN_CHECK,
	SQ_API_TOKEN_COUNT,
	SQ_API_TOKEN_HASHES,
	SQ_API_TOKEN_LIST,
	SQ_API_TOKEN_DELETE,
	SQ_TUNNEL_SET,
	SQ_TUNNEL_CLEAR,
	SQ_TUNNEL_CLEAR_REPLICA,
	SQ_AUDIT_INSERT,
	SQ_AUDIT_COUNT,
	SQ__COUNT
};

/* clang-format off */
/* Columns read by sq_read_cluster(), in this order. */
#define SQ_CLUSTER_SELECT \
	"SELECT c.id, c.name, c.description, c.certificate, c.fingerprint, c.status," \
	" c.joined_at, c.created_at," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'disk_threshold'), " SQ_STR(SQ_DEFAULT_THRESHOLD) ")," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'memory_threshold'), " SQ_STR(SQ_DEFAULT_THRESHOLD) ")," \
	" s.updated_at, s.body" \
	" FROM clusters c LEFT JOIN cluster_status s ON s.cluster_id = c.id"
/* clang-format on */

static const char *const sq_sql[SQ__COUNT] = {
    [SQ_MIGRATION_APPLIED] = "SELECT 1 FROM schema_migrations WHERE version = ?1",
    [SQ_MIGRATION_RECORD] =
	"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
    [SQ_MIGRATION_MAX] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [SQ_CLUSTER_LIST] = SQ_CLUSTER_SELECT " ORDER BY c.name",
    [SQ_CLUSTER_GET] = SQ_CLUSTER_SELECT " WHERE c.name = ?1",
    [SQ_CLUSTER_GET_BY_FP] = SQ_CLUSTER_SELECT " WHERE c.fingerprint = ?1",
    [SQ_CLUSTER_NAME_BY_FP] = "SELECT name FROM clusters WHERE fingerprint = ?1",
    [SQ_CLUSTER_ID] = "SELECT id FROM clusters WHERE name = ?1",
    [SQ_CLUSTER_SET_DESC] = "UPDATE clusters SET description = ?2 WHERE id = ?1",
    [SQ_CLUSTER_DELETE] = "DELETE FROM clusters WHERE name = ?1",
    [SQ_CLUSTER_TAKEN] = "SELECT 1 FROM clusters WHERE name = ?1 OR fingerprint = ?2 LIMIT 1",
    [SQ_CLUSTER_INSERT] = "INSERT INTO clusters (name, description, certificate, fingerprint,"
			  " status, joined_at, created_at) VALUES (?1,"
			  " COALESCE(NULLIF(?2, ''), (SELECT description FROM join_tokens"
			  " WHERE cluster_name = ?1), ''), ?3, ?4, ?5, ?6, ?6)",
    [SQ_CONFIG_SET] = "INSERT INTO cluster_config (cluster_id, key, value) VALUES (?1, ?2, ?3)"
		      " ON CONFLICT (cluster_id, key) DO UPDATE SET value = excluded.value",
    /* The WHERE keeps SQLite's parser from reading ON CONFLICT as a join. */
    [SQ_STATUS_SET] = "INSERT INTO cluster_status (cluster_id, updated_at, body)"
		      " SELECT id, ?2, ?3 FROM clusters WHERE name = ?1"
		      " ON CONFLICT (cluster_id) DO UPDATE SET"
		      " updated_at = excluded.updated_at, body = excluded.body",
    [SQ_TOKEN_GET] = "SELECT secret_hash, expires_at FROM join_tokens WHERE cluster_name = ?1",
    [SQ_TOKEN_NAME_TAKEN] = "SELECT 1 FROM join_tokens WHERE cluster_name = ?1"
			    " UNION ALL SELECT 1 FROM clusters WHERE name = ?1 LIMIT 1",
    [SQ_TOKEN_INSERT] = "INSERT INTO join_tokens (cluster_name, description, secret_hash,"
			" expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_TOKEN_LIST] = "SELECT cluster_name, description, secret_hash, expires_at, created_at"
		      " FROM join_tokens ORDER BY cluster_name",
    [SQ_TOKEN_DELETE] = "DELETE FROM join_tokens WHERE cluster_name = ?1",
    [SQ_TOKEN_DELETE_EXPIRED] = "DELETE FROM join_tokens WHERE cluster_name = ?1 AND expires_at <= ?2",
    [SQ_API_TOKEN_INSERT] = "INSERT INTO api_tokens (name, hash, created_at) VALUES (?1, ?2, ?3)",
    [SQ_API_TOKEN_CHECK] = "SELECT name FROM api_tokens WHERE hash = ?1",
    [SQ_API_TOKEN_COUNT] = "SELECT COUNT(*) FROM api_tokens",
    [SQ_TUNNEL_SET] = "INSERT INTO tunnels (cluster_id, replica, epoch, protocol, connected_since)"
		      " SELECT id, ?2, ?3, ?4, ?5 FROM clusters WHERE name = ?1"
		      " ON CONFLICT (cluster_id) DO UPDATE SET replica = excluded.replica,"
		      " epoch = excluded.epoch, protocol = excluded.protocol,"
		      " connected_since = excluded.connected_since",
    [SQ_TUNNEL_CLEAR] = "DELETE FROM tunnels WHERE cluster_id = (SELECT id FROM clusters WHERE name = ?1)"
			" AND replica = ?2 AND epoch = ?3",
    [SQ_TUNNEL_CLEAR_REPLICA] = "DELETE FROM tunnels WHERE replica = ?1",
    [SQ_API_TOKEN_HASHES] = "SELECT hash FROM api_tokens ORDER BY id",
    [SQ_API_TOKEN_LIST] = "SELECT name, created_at, substr(hash, 1, 12) FROM api_tokens"
			  " ORDER BY name",
    [SQ_API_TOKEN_DELETE] = "DELETE FROM api_tokens WHERE name = ?1",
    [SQ_AUDIT_INSERT] = "INSERT OR IGNORE INTO audit_log (at, actor, cluster, method, path,"
			" status, bytes_in, bytes_out, duration_ms, request_id)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SQ_AUDIT_COUNT] = "SELECT COUNT(*) FROM audit_log",
};

struct sq_store {
	struct store sq_base; /* first: a struct store * is a struct sq_store * */
	sqlite3 *sq_db;
	pthread_mutex_t sq_mu;
	sqlite3_stmt *sq_stmts[SQ__COUNT];
};

static struct sq_store *sq(struct store *s)
{
	return (struct sq_store *)s;
}

static void sq_lock(struct sq_store *q)
{
	pthread_mutex_lock(&q->sq_mu);
}

static void sq_unlock(struct sq_store *q)
{
	pthread_mutex_unlock(&q->sq_mu);
}

/* Logs the connection's last error for the operation func; returns -EIO. */
static int sq_err(struct sq_store *q, const char *func, const char *what)
{
	log_msg(LOG_LEVEL_ERROR, func, "sqlite %s: %s", what, sqlite3_errmsg(q->sq_db));
	return -EIO;
}

/* Returns the cached statement id, prepared on first use, or NULL (logged). */
static sqlite3_stmt *sq_stmt(struct sq_store *q, enum sq_stmt_id id, const char *func)
{
	if (q->sq_stmts[id] == NULL &&
	    sqlite3_prepare_v3(q->sq_db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
			       &q->sq_stmts[id], NULL) != SQLITE_OK) {
		sq_err(q, func, "prepare");
		return NULL;
	}
	return q->sq_stmts[id];
}

/* Ends a use of a cached statement: drops its read lock and its bindings. */
static void sq_release(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* NULL binds SQL NULL. The text is copied, so the caller's string may go. */
static int sq_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
}

/*
 * Steps st once. Returns SQLITE_ROW or SQLITE_DONE; -EEXIST when a UNIQUE
 * or PRIMARY KEY constraint refused a row (not logged: the caller's answer);
 * -EIO on any other failure (logged).
 */
static int sq_step(struct sq_store *q, sqlite3_stmt *st, const char *func)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
	return sq_err(q, func, "step");
}

/*
 * Runs a statement that returns no rows and releases it. bind_rc is the OR
 * of the caller's sqlite3_bind_* results. *changes, if non-NULL, gets the
 * number of rows written. Returns 0, -EEXIST or -EIO.
 */
static int sq_exec_stmt(struct sq_store *q, sqlite3_stmt *st, int bind_rc, int *changes,
			const char *func)
{
	int rc;

	if (bind_rc != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_DONE) {
		rc = 0;
	} else if (rc == SQLITE_ROW) {
		log_msg(LOG_LEVEL_ERROR, func, "sqlite statement returned rows");
		rc = -EIO;
	}
	if (rc == 0 && changes != NULL)
		*changes = sqlite3_changes(q->sq_db);
out:
	sq_release(st);
	return rc;
}

/* Runs constant SQL text (transaction control, schema). 0 or -EIO. */
static int sq_exec(struct sq_store *q, const char *sql, const char *func)
{
	if (sqlite3_exec(q->sq_db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(q, func, sql);
	return 0;
}

/* BEGIN IMMEDIATE takes the write lock now, so check-then-write is atomic
 * across processes too, and waits up to the busy timeout for it. */
static int sq_begin(struct sq_store *q, const char *func)
{
	return sq_exec(q, "BEGIN IMMEDIATE", func);
}

/* Commits when rc is 0, else rolls back. Returns rc, or -EIO if COMMIT fails. */
static int sq_end(struct sq_store *q, int rc, const char *func)
{
	if (rc == 0 && (rc = sq_exec(q, "COMMIT", func)) == 0)
		return 0;
	/* SQLite may have rolled back by itself already (e.g. on SQLITE_FULL). */
	if (!sqlite3_get_autocommit(q->sq_db))
		sqlite3_exec(q->sq_db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Runs a single-row "SELECT COUNT(*)" style statement. */
/* Runs a COUNT(*) statement; the caller holds the lock. */
static int sq_count_locked(struct sq_store *q, enum sq_stmt_id id, int64_t *count,
			   const char *func)
{
	sqlite3_stmt *st;
	int rc;

	*count = 0;
	st = sq_stmt(q, id, func);
	if (st == NULL)
		return -EIO;
	rc = sq_step(q, st, func);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = sq_err(q, func, "count returned no row");
	}
	sq_release(st);
	return rc;
}

static int sq_count(struct sq_store *q, enum sq_stmt_id id, int64_t *count, const char *func)
{
	int rc;

	sq_lock(q);
	rc = sq_count_locked(q, id, count, func);
	sq_unlock(q);
	return rc;
}

/* Copies text column col into *dst (NULL for SQL NULL). 0 or -ENOMEM. */
static int sq_dup(sqlite3_stmt *st, int col, char **dst)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t len;

	*dst = NULL;
	if (text == NULL)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : -ENOMEM;
	len = (size_t)sqlite3_column_bytes(st, col);
	*dst = malloc(len + 1);
	if (*dst == NULL)
		return -ENOMEM;
	memcpy(*dst, text, len);
	(*dst)[len] = '\0';
	return 0;
}

/*
 * Makes room for element len in list (cap elements of size elem). Returns
 * the list, perhaps moved, or NULL on allocation failure (list untouched).
 */
static void *sq_grow(void *list, size_t *cap, size_t len, size_t elem)
{
	size_t ncap;
	void *grown;

	if (len < *cap)
		return list;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / elem)
		return NULL;
	grown = realloc(list, ncap * elem);
	if (grown != NULL)
		*cap = ncap;
	return grown;
}

/* Fills c from a row of SQ_CLUSTER_SELECT. On -ENOMEM, c is left cleared. */
static int sq_read_cluster(sqlite3_stmt *st, struct store_cluster *c)
{
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->id = sqlite3_column_int64(st, 0);
	rc |= sq_dup(st, 1, &c->name);
	rc |= sq_dup(st, 2, &c->description);
	rc |= sq_dup(st, 3, &c->certificate);
	rc |= sq_dup(st, 4, &c->fingerprint);
	rc |= sq_dup(st, 5, &c->status);
	c->joined_at = sqlite3_column_int64(st, 6);
	c->created_at = sqlite3_column_int64(st, 7);
	c->disk_threshold = sqlite3_column_int(st, 8);
	c->memory_threshold = sqlite3_column_int(st, 9);
	c->last_status_update_at = sqlite3_column_int64(st, 10);
	rc |= sq_dup(st, 11, &c->status_json);
	if (rc != 0) {
		store_cluster_clear(c);
		return -ENOMEM;
	}
	return 0;
}

static int sq_read_token(sqlite3_stmt *st, struct store_join_token *t)
{
	int rc = 0;

	memset(t, 0, sizeof(*t));
	rc |= sq_dup(st, 0, &t->cluster_name);
	rc |= sq_dup(st, 1, &t->description);
	rc |= sq_dup(st, 2, &t->secret_hash);
	t->expires_at = sqlite3_column_int64(st, 3);
	t->created_at = sqlite3_column_int64(st, 4);
	if (rc != 0) {
		store_join_token_clear(t);
		return -ENOMEM;
	}
	return 0;
}

/* Migrations ------------------------------------------------------------ */

/* Sets *applied to whether migration version is recorded. 0 or -EIO. */
static int sq_migration_applied(struct sq_store *q, int version, int *applied)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_MIGRATION_APPLIED, __func__);
	int rc;

	if (st == NULL)
		return -EIO;
	if (sqlite3_bind_int(st, 1, version) != SQLITE_OK) {
		rc = sq_err(q, __func__, "bind");
		goto out;
	}
	rc = sq_step(q, st, __func__);
	if (rc >= 0) {
		*applied = rc == SQLITE_ROW;
		rc = 0;
	}
out:
	sq_release(st);
	return rc;
}

/*
 * Applies one migration in its own transaction unless it is recorded
 * already. The check runs under the write lock, so two processes opening
 * the same new database do not both apply it.
 */
static int sq_migrate_one(struct sq_store *q, const struct store_migration *m)
{
	sqlite3_stmt *st;
	int rc, applied = 0, bind_rc;

	rc = sq_begin(q, __func__);
	if (rc != 0)
		return rc;
	rc = sq_migration_applied(q, m->version, &applied);
	if (rc != 0 || applied)
		goto out;
	if (sqlite3_exec(q->sq_db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
		rc = sq_err(q, __func__, m->name);
		goto out;
	}
	st = sq_stmt(q, SQ_MIGRATION_RECORD, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	bind_rc = sqlite3_bind_int(st, 1, m->version);
	bind_rc |= sq_bind_text(st, 2, m->name);
	bind_rc |= sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
	rc = sq_exec_stmt(q, st, bind_rc, NULL, __func__);
out:
	rc = sq_end(q, rc, __func__);
	if (rc == 0 && !applied)
		LOG_INFO("applied migration %s", m->name);
	return rc;
}

/* A database written by a newer lxcm may not fit this binary: say so. */
static int sq_migrate_check_newer(struct sq_store *q, int latest)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_MIGRATION_MAX, __func__);
	int rc;

	if (st == NULL)
		return -EIO;
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) > latest)
		LOG_WARN("database schema version %d is newer than this binary's %d",
			 sqlite3_column_int(st, 0), latest);
	sq_release(st);
	return rc < 0 ? rc : 0;
}

static int sq_migrate(struct sq_store *q)
{
	int rc, prev = 0;

	rc = sq_exec(q,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
		     " applied_at INTEGER NOT NULL)",
		     __func__);
	for (int i = 0; rc == 0 && i < store_migration_count; i++) {
		const struct store_migration *m = &store_migrations[i];

		if (m->version <= prev) {
			LOG_ERROR("migration %s is out of order", m->name);
			return -EIO;
		}
		prev = m->version;
		rc = sq_migrate_one(q, m);
	}
	if (rc == 0)
		rc = sq_migrate_check_newer(q, prev);
	return rc;
}

/* Clusters -------------------------------------------------------------- */

static int sq_cluster_list(struct store *s, struct store_cluster **out, size_t *n)
{
	struct sq_store *q = sq(s);
	struct store_cluster *list = NULL, *grown;
	size_t len = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	sq_lock(q);
	st = sq_stmt(q, SQ_CLUSTER_LIST, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		grown = sq_grow(list, &cap, len, sizeof(*list));
		if (grown == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		list = grown;
		rc = sq_read_cluster(st, &list[len]);
		if (rc != 0)
			goto out;
		len++;
	}
	if (rc == SQLITE_DONE)
		rc = 0;
out:
	sq_release(st);
	sq_unlock(q);
	if (rc != 0) {
		store_cluster_list_free(list, len);
		return rc;
	}
	*out = list;
	*n = len;
	return 0;
}

/* Reads the one cluster that statement id finds by key. */
static int sq_cluster_get_by(struct sq_store *q, enum sq_stmt_id id, const char *key,
			     struct store_cluster *out, const char *func)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	sq_lock(q);
	st = sq_stmt(q, id, func);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	if (sq_bind_text(st, 1, key) != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_ROW)
		rc = sq_read_cluster(st, out);
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
out:
	sq_release(st);
	sq_unlock(q);
	return rc;
}

static int sq_cluster_get(struct store *s, const char *name, struct store_cluster *out)
{
	return sq_cluster_get_by(sq(s), SQ_CLUSTER_GET, name, out, __func__);
}

static int sq_cluster_get_by_fingerprint(struct store *s, const char *fp, struct store_cluster *out)
{
	return sq_cluster_get_by(sq(s), SQ_CLUSTER_GET_BY_FP, fp, out, __func__);
}

/* The name of the cluster with certificate fingerprint fp: 0, -ENOENT, -ENOMEM or -EIO. */
static int sq_cluster_name_by_fingerprint(struct store *s, const char *fp, char **name)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc;

	*name = NULL;
	sq_lock(q);
	st = sq_stmt(q, SQ_CLUSTER_NAME_BY_FP, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	if (sq_bind_text(st, 1, fp) != SQLITE_OK) {
		rc = sq_err(q, __func__, "bind");
		goto out;
	}
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_ROW)
		rc = sq_dup(st, 0, name);
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
out:
	sq_release(st);
	sq_unlock(q);
	return rc;
}

/* Looks up the id of cluster name: 0, -ENOENT or -EIO. */
static int sq_cluster_id(struct sq_store *q, const char *name, int64_t *id, const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_CLUSTER_ID, func);
	int rc;

	if (st == NULL)
		return -EIO;
	if (sq_bind_text(st, 1, name) != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	}
out:
	sq_release(st);
	return rc;
}

/* Sets one integer setting of a cluster, inserting or replacing it. */
static int sq_config_set(struct sq_store *q, int64_t cluster_id, const char *key, int value,
			 const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_CONFIG_SET, func);
	int bind_rc;

	if (st == NULL)
		return -EIO;
	bind_rc = sqlite3_bind_int64(st, 1, cluster_id);
	bind_rc |= sq_bind_text(st, 2, key);
	bind_rc |= sqlite3_bind_int(st, 3, value); /* stored as text by the column */
	return sq_exec_stmt(q, st, bind_rc, NULL, func);
}

/* Applies the parts of u that are set; the caller holds a transaction. */
static int sq_cluster_update_locked(struct sq_store *q, int64_t id,
				    const struct store_cluster_update *u, const char *func)
{
	sqlite3_stmt *st;
	int rc = 0, bind_rc;

	if (u->description != NULL) {
		st = sq_stmt(q, SQ_CLUSTER_SET_DESC, func);
		if (st == NULL)
			return -EIO;
		bind_rc = sqlite3_bind_int64(st, 1, id);
		bind_rc |= sq_bind_text(st, 2, u->description);
		rc = sq_exec_stmt(q, st, bind_rc, NULL, func);
	}
	if (rc == 0 && u->disk_threshold >= 0)
		rc = sq_config_set(q, id, "disk_threshold", u->disk_threshold, func);
	if (rc == 0 && u->memory_threshold >= 0)
		rc = sq_config_set(q, id, "memory_threshold", u->memory_threshold, func);
	return rc;
}

/* A negative threshold (-1 by convention) or a NULL description is left as is. */
static int sq_cluster_update(struct store *s, const char *name,
			     const struct store_cluster_update *u)
{
	struct sq_store *q = sq(s);
	int64_t id = 0;
	int rc;

	sq_lock(q);
	rc = sq_begin(q, __func__);
	if (rc != 0)
		goto out;
	rc = sq_cluster_id(q, name, &id, __func__);
	if (rc == 0)
		rc = sq_cluster_update_locked(q, id, u, __func__);
	rc = sq_end(q, rc, __func__);
out:
	sq_unlock(q);
	return rc;
}

/* Status, config and tunnel rows go with the cluster (ON DELETE CASCADE). */
static int sq_cluster_delete(struct store *s, const char *name)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, changes = 0;

	sq_lock(q);
	st = sq_stmt(q, SQ_CLUSTER_DELETE, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	rc = sq_exec_stmt(q, st, sq_bind_text(st, 1, name), &changes, __func__);
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
out:
	sq_unlock(q);
	return rc;
}

/* Replaces the last status of a cluster. status_json must not be NULL. */
static int sq_cluster_set_status(struct store *s, const char *name, const char *status_json,
				 int64_t now)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc, changes = 0;

	if (status_json == NULL)
		return -EINVAL;
	sq_lock(q);
	st = sq_stmt(q, SQ_STATUS_SET, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	bind_rc = sq_bind_text(st, 1, name);
	bind_rc |= sqlite3_bind_int64(st, 2, now);
	bind_rc |= sq_bind_text(st, 3, status_json);
	rc = sq_exec_stmt(q, st, bind_rc, &changes, __func__);
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
out:
	sq_unlock(q);
	return rc;
}

/*
 * Writes n statuses in one transaction (group commit of heartbeats). A row
 * whose cluster is gone gets -ENOENT in rcs and does not fail the others;
 * any SQLite failure rolls the whole transaction back and every rcs[i] is
 * -EIO (nothing of it was written). Returns 0 or -EIO.
 */
static int sq_cluster_set_status_many(struct store *s, const struct store_status_row *rows,
				      size_t n, int *rcs)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc, changes;
	size_t i;

	for (i = 0; i < n; i++)
		rcs[i] = rows[i].status_json ? 0 : -EINVAL;
	sq_lock(q);
	rc = sq_begin(q, __func__);
	for (i = 0; rc == 0 && i < n; i++) {
		if (rcs[i] != 0)
			continue;
		st = sq_stmt(q, SQ_STATUS_SET, __func__);
		if (st == NULL) {
			rc = -EIO;
			break;
		}
		changes = 0;
		bind_rc = sq_bind_text(st, 1, rows[i].name);
		bind_rc |= sqlite3_bind_int64(st, 2, rows[i].now);
		bind_rc |= sq_bind_text(st, 3, rows[i].status_json);
		rc = sq_exec_stmt(q, st, bind_rc, &changes, __func__);
		if (rc == 0 && changes == 0)
			rcs[i] = -ENOENT;
	}
	rc = sq_end(q, rc == 0 ? 0 : -EIO, __func__);
	sq_unlock(q);
	if (rc != 0)
		for (i = 0; i < n; i++)
			rcs[i] = rcs[i] == -EINVAL ? -EINVAL : -EIO;
	return rc;
}

/* Join ------------------------------------------------------------------ */

/*
 * Checks the join token of name against secret_hash at now: 0, -ENOENT (no
 * token), -EACCES (wrong secret or expired) or -EIO. The hashes are compared
 * in constant time; their lengths are not secret.
 */
static int sq_join_check_token(struct sq_store *q, const char *name, const char *secret_hash,
			       int64_t now, const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_TOKEN_GET, func);
	const unsigned char *stored;
	int rc, match;

	if (st == NULL)
		return -EIO;
	if (sq_bind_text(st, 1, name) != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_DONE)
		rc = -ENOENT;
	if (rc != SQLITE_ROW)
		goto out;
	stored = sqlite3_column_text(st, 0);
	match = stored != NULL && sqlite3_column_bytes(st, 0) == SQ_HASH_HEX_LEN &&
		secret_hash != NULL &&
		strnlen(secret_hash, SQ_HASH_HEX_LEN + 1) == SQ_HASH_HEX_LEN &&
		CRYPTO_memcmp(stored, secret_hash, SQ_HASH_HEX_LEN) == 0;
	rc = (match && sqlite3_column_int64(st, 1) > now) ? 0 : -EACCES;
out:
	sq_release(st);
	return rc;
}

/* -EEXIST when a cluster already has c's name or fingerprint. */
static int sq_join_check_free(struct sq_store *q, const struct store_cluster *c, const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_CLUSTER_TAKEN, func);
	int rc, bind_rc;

	if (st == NULL)
		return -EIO;
	bind_rc = sq_bind_text(st, 1, c->name);
	bind_rc |= sq_bind_text(st, 2, c->fingerprint);
	if (bind_rc != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_ROW)
		rc = -EEXIST;
	else if (rc == SQLITE_DONE)
		rc = 0;
out:
	sq_release(st);
	return rc;
}

/* Inserts the cluster row and its default settings. */
static int sq_join_insert(struct sq_store *q, const struct store_cluster *c, int64_t now,
			  const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_CLUSTER_INSERT, func);
	int64_t id;
	int rc, bind_rc;

	if (st == NULL)
		return -EIO;
	bind_rc = sq_bind_text(st, 1, c->name);
	bind_rc |= sq_bind_text(st, 2, c->description != NULL ? c->description : "");
	bind_rc |= sq_bind_text(st, 3, c->certificate);
	bind_rc |= sq_bind_text(st, 4, c->fingerprint);
	bind_rc |= sq_bind_text(st, 5, SQ_STATUS_ACTIVE);
	bind_rc |= sqlite3_bind_int64(st, 6, now);
	rc = sq_exec_stmt(q, st, bind_rc, NULL, func);
	if (rc != 0)
		return rc;
	id = sqlite3_last_insert_rowid(q->sq_db);
	rc = sq_config_set(q, id, "disk_threshold", SQ_DEFAULT_THRESHOLD, func);
	if (rc == 0)
		rc = sq_config_set(q, id, "memory_threshold", SQ_DEFAULT_THRESHOLD, func);
	return rc;
}

static int sq_token_delete_locked(struct sq_store *q, const char *name, const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_TOKEN_DELETE, func);
	int rc, changes = 0;

	if (st == NULL)
		return -EIO;
	rc = sq_exec_stmt(q, st, sq_bind_text(st, 1, name), &changes, func);
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
	return rc;
}

/*
 * Uses c->name, description, certificate and fingerprint; the cluster gets
 * status ACTIVE, joined_at = created_at = now and both thresholds at their
 * default, whatever else c holds. Nothing is written unless all checks pass:
 * a wrong secret leaves the token in place.
 */
static int sq_cluster_join(struct store *s, const struct store_cluster *c, const char *secret_hash,
			   int64_t now)
{
	struct sq_store *q = sq(s);
	int rc;

	if (c->name == NULL || c->certificate == NULL || c->fingerprint == NULL)
		return -EINVAL;
	sq_lock(q);
	rc = sq_begin(q, __func__);
	if (rc != 0)
		goto out;
	rc = sq_join_check_token(q, c->name, secret_hash, now, __func__);
	if (rc == 0)
		rc = sq_join_check_free(q, c, __func__);
	if (rc == 0)
		rc = sq_join_insert(q, c, now, __func__);
	if (rc == 0)
		rc = sq_token_delete_locked(q, c->name, __func__);
	rc = sq_end(q, rc, __func__);
out:
	sq_unlock(q);
	return rc;
}

/* Join tokens ----------------------------------------------------------- */

/* -EEXIST when a join token or a cluster already has that name. */
static int sq_token_name_free(struct sq_store *q, const char *name, const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_TOKEN_NAME_TAKEN, func);
	int rc;

	if (st == NULL)
		return -EIO;
	if (sq_bind_text(st, 1, name) != SQLITE_OK) {
		rc = sq_err(q, func, "bind");
		goto out;
	}
	rc = sq_step(q, st, func);
	if (rc == SQLITE_ROW)
		rc = -EEXIST;
	else if (rc == SQLITE_DONE)
		rc = 0;
out:
	sq_release(st);
	return rc;
}

static int sq_token_create(struct store *s, const struct store_join_token *t)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc;

	if (t->cluster_name == NULL || t->secret_hash == NULL)
		return -EINVAL;
	sq_lock(q);
	rc = sq_begin(q, __func__);
	if (rc != 0)
		goto out;
	/* An expired token of that name no longer holds the name. */
	st = sq_stmt(q, SQ_TOKEN_DELETE_EXPIRED, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto end;
	}
	bind_rc = sq_bind_text(st, 1, t->cluster_name);
	bind_rc |= sqlite3_bind_int64(st, 2, t->created_at);
	rc = sq_exec_stmt(q, st, bind_rc, NULL, __func__);
	if (rc != 0)
		goto end;
	rc = sq_token_name_free(q, t->cluster_name, __func__);
	if (rc != 0)
		goto end;
	st = sq_stmt(q, SQ_TOKEN_INSERT, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto end;
	}
	bind_rc = sq_bind_text(st, 1, t->cluster_name);
	bind_rc |= sq_bind_text(st, 2, t->description != NULL ? t->description : "");
	bind_rc |= sq_bind_text(st, 3, t->secret_hash);
	bind_rc |= sqlite3_bind_int64(st, 4, t->expires_at);
	bind_rc |= sqlite3_bind_int64(st, 5, t->created_at);
	rc = sq_exec_stmt(q, st, bind_rc, NULL, __func__);
end:
	rc = sq_end(q, rc, __func__);
out:
	sq_unlock(q);
	return rc;
}

/* Lists every token, expired ones included, by cluster name. */
static int sq_token_list(struct store *s, struct store_join_token **out, size_t *n)
{
	struct sq_store *q = sq(s);
	struct store_join_token *list = NULL, *grown;
	size_t len = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	sq_lock(q);
	st = sq_stmt(q, SQ_TOKEN_LIST, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		grown = sq_grow(list, &cap, len, sizeof(*list));
		if (grown == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		list = grown;
		rc = sq_read_token(st, &list[len]);
		if (rc != 0)
			goto out;
		len++;
	}
	if (rc == SQLITE_DONE)
		rc = 0;
out:
	sq_release(st);
	sq_unlock(q);
	if (rc != 0) {
		store_join_token_list_free(list, len);
		return rc;
	}
	*out = list;
	*n = len;
	return 0;
}

static int sq_token_delete(struct store *s, const char *cluster_name)
{
	struct sq_store *q = sq(s);
	int rc;

	sq_lock(q);
	rc = sq_token_delete_locked(q, cluster_name, __func__);
	sq_unlock(q);
	return rc;
}

/* API tokens and audit -------------------------------------------------- */

/* -EEXIST when a token with that hash exists. */
static int sq_api_token_create(struct store *s, const char *name, const char *hash, int64_t now)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc;

	if (name == NULL || hash == NULL)
		return -EINVAL;
	sq_lock(q);
	st = sq_stmt(q, SQ_API_TOKEN_INSERT, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	bind_rc = sq_bind_text(st, 1, name);
	bind_rc |= sq_bind_text(st, 2, hash);
	bind_rc |= sqlite3_bind_int64(st, 3, now);
	rc = sq_exec_stmt(q, st, bind_rc, NULL, __func__);
out:
	sq_unlock(q);
	return rc;
}

/*
 * The lookup by hash goes through the index and is not constant time; that
 * is fine because the hash is of a high-entropy random token, so learning
 * hash prefixes tells nothing about other tokens.
 */
static int sq_api_token_check(struct store *s, const char *hash, char **name_out)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc;

	if (name_out != NULL)
		*name_out = NULL;
	sq_lock(q);
	st = sq_stmt(q, SQ_API_TOKEN_CHECK, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	if (sq_bind_text(st, 1, hash) != SQLITE_OK) {
		rc = sq_err(q, __func__, "bind");
		goto out;
	}
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else if (rc == SQLITE_ROW)
		rc = name_out != NULL ? sq_dup(st, 0, name_out) : 0;
out:
	sq_release(st);
	sq_unlock(q);
	return rc;
}

static int sq_api_token_count(struct store *s, int64_t *count)
{
	return sq_count(sq(s), SQ_API_TOKEN_COUNT, count, __func__);
}

static int sq_api_token_list(struct store *s, struct store_api_token **out, size_t *n)
{
	struct sq_store *q = sq(s);
	struct store_api_token *list = NULL, *grown;
	size_t len = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	sq_lock(q);
	st = sq_stmt(q, SQ_API_TOKEN_LIST, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 0);

		grown = sq_grow(list, &cap, len, sizeof(*list));
		if (grown == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		list = grown;
		list[len].name = strdup(name ? (const char *)name : "");
		list[len].created_at = sqlite3_column_int64(st, 1);
		snprintf(list[len].hash_prefix, sizeof(list[len].hash_prefix), "%s",
			 sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
		if (list[len].name == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		len++;
	}
	if (rc == SQLITE_DONE)
		rc = 0;
out:
	sq_release(st);
	sq_unlock(q);
	if (rc != 0) {
		store_api_token_list_free(list, len);
		return rc < 0 ? rc : -EIO;
	}
	*out = list;
	*n = len;
	return 0;
}

static int sq_api_token_delete(struct store *s, const char *name)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int64_t count = 0;
	int rc, changes = 0;

	sq_lock(q);
	rc = sq_begin(q, __func__);
	if (rc != 0)
		goto out;
	st = sq_stmt(q, SQ_API_TOKEN_DELETE, __func__);
	rc = st ? sq_exec_stmt(q, st, sq_bind_text(st, 1, name), &changes, __func__) : -EIO;
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
	/* Deleting the last token is rolled back. */
	if (rc == 0)
		rc = sq_count_locked(q, SQ_API_TOKEN_COUNT, &count, __func__);
	if (rc == 0 && count == 0)
		rc = -EBUSY;
	rc = sq_end(q, rc, __func__);
out:
	sq_unlock(q);
	return rc;
}

static int sq_api_token_hashes(struct store *s, char (*out)[65], size_t max, size_t *n)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	sq_lock(q);
	st = sq_stmt(q, SQ_API_TOKEN_HASHES, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);

		if (h == NULL || strlen((const char *)h) != 64 || *n >= max)
			continue;
		memcpy(out[*n], h, 65);
		(*n)++;
	}
	rc = rc == SQLITE_DONE ? 0 : -EIO;
out:
	sq_release(st);
	sq_unlock(q);
	return rc;
}

static int sq_tunnel_set(struct store *s, const char *cluster, const char *replica, int64_t epoch,
			 const char *protocol, int64_t since)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc, changes = 0;

	sq_lock(q);
	st = sq_stmt(q, SQ_TUNNEL_SET, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	bind_rc = sq_bind_text(st, 1, cluster);
	bind_rc |= sq_bind_text(st, 2, replica);
	bind_rc |= sqlite3_bind_int64(st, 3, epoch);
	bind_rc |= sq_bind_text(st, 4, protocol);
	bind_rc |= sqlite3_bind_int64(st, 5, since);
	rc = sq_exec_stmt(q, st, bind_rc, &changes, __func__);
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
out:
	sq_unlock(q);
	return rc;
}

static int sq_tunnel_clear(struct store *s, const char *cluster, const char *replica,
			   int64_t epoch)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc, bind_rc;

	sq_lock(q);
	st = sq_stmt(q, SQ_TUNNEL_CLEAR, __func__);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	bind_rc = sq_bind_text(st, 1, cluster);
	bind_rc |= sq_bind_text(st, 2, replica);
	bind_rc |= sqlite3_bind_int64(st, 3, epoch);
	rc = sq_exec_stmt(q, st, bind_rc, NULL, __func__);
out:
	sq_unlock(q);
	return rc;
}

static int sq_tunnel_clear_replica(struct store *s, const char *replica)
{
	struct sq_store *q = sq(s);
	sqlite3_stmt *st;
	int rc;

	sq_lock(q);
	st = sq_stmt(q, SQ_TUNNEL_CLEAR_REPLICA, __func__);
	rc = st ? sq_exec_stmt(q, st, sq_bind_text(st, 1, replica), NULL, __func__) : -EIO;
	sq_unlock(q);
	return rc;
}

/* Binds and runs the audit insert for one row; the caller holds the lock. */
static int sq_audit_insert_locked(struct sq_store *q, const struct store_audit *a,
				  const char *func)
{
	sqlite3_stmt *st = sq_stmt(q, SQ_AUDIT_INSERT, func);
	int bind_rc;

	if (st == NULL)
		return -EIO;
	bind_rc = sqlite3_bind_int64(st, 1, a->at);
	bind_rc |= sq_bind_text(st, 2, a->actor);
	bind_rc |= sq_bind_text(st, 3, a->cluster);
	bind_rc |= sq_bind_text(st, 4, a->method);
	bind_rc |= sq_bind_text(st, 5, a->path);
	bind_rc |= sqlite3_bind_int(st, 6, a->status);
	bind_rc |= sqlite3_bind_int64(st, 7, a->bytes_in);
	bind_rc |= sqlite3_bind_int64(st, 8, a->bytes_out);
	bind_rc |= sqlite3_bind_int64(st, 9, a->duration_ms);
	bind_rc |= sq_bind_text(st, 10, a->request_id);
	return sq_exec_stmt(q, st, bind_rc, NULL, func);
}

static int sq_audit_append(struct store *s, const struct store_audit *a)
{
	struct sq_store *q = sq(s);
	int rc;

	sq_lock(q);
	rc = sq_audit_insert_locked(q, a, __func__);
	sq_unlock(q);
	return rc;
}

static int sq_audit_append_many(struct store *s, const struct store_audit *a, size_t n)
{
	struct sq_store *q = sq(s);
	size_t i;
	int rc;

	sq_lock(q);
	rc = sq_begin(q, __func__);
	if (rc == 0) {
		for (i = 0; rc == 0 && i < n; i++)
			rc = sq_audit_insert_locked(q, &a[i], __func__);
		rc = sq_end(q, rc, __func__);
	}
	sq_unlock(q);
	return rc;
}

static int sq_audit_count(struct store *s, int64_t *count)
{
	return sq_count(sq(s), SQ_AUDIT_COUNT, count, __func__);
}

/* Open and close -------------------------------------------------------- */

static void sq_free(struct sq_store *q)
{
	for (int i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(q->sq_stmts[i]);
	if (q->sq_db != NULL && sqlite3_close(q->sq_db) != SQLITE_OK)
		LOG_ERROR("sqlite close: %s", sqlite3_errmsg(q->sq_db));
	pthread_mutex_destroy(&q->sq_mu);
	free(q);
}

/* The caller must not use s, or have any call on it running, any more. */
static void sq_close(struct store *s)
{
	sq_free(sq(s));
}

/* Runs a PRAGMA that returns one row and copies its text into buf. */
static int sq_pragma(struct sq_store *q, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *text;
	int rc, n;

	if (sqlite3_prepare_v2(q->sq_db, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_err(q, __func__, sql);
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_ROW) {
		text = sqlite3_column_text(st, 0);
		n = snprintf(buf, size, "%s", text != NULL ? (const char *)text : "");
		/* Our pragmas answer a word; anything longer is no expected answer. */
		if (n < 0 || (size_t)n >= size)
			buf[0] = '\0';
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = sq_err(q, __func__, sql);
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
static int sq_configure(struct sq_store *q, const char *path)
{
	char val[16];
	int rc;

	sqlite3_extended_result_codes(q->sq_db, 1);
	if (sqlite3_busy_timeout(q->sq_db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return sq_err(q, __func__, "busy_timeout");
	rc = sq_exec(q, "PRAGMA foreign_keys = ON", __func__);
	if (rc == 0)
		rc = sq_pragma(q, "PRAGMA foreign_keys", val, sizeof(val));
	if (rc == 0 && strcmp(val, "1") != 0) {
		LOG_ERROR("SQLite refuses foreign keys for %s", path);
		return -EIO;
	}
	if (rc == 0)
		rc = sq_pragma(q, "PRAGMA journal_mode = WAL", val, sizeof(val));
	if (rc == 0 && strcmp(val, "wal") != 0)
		LOG_WARN("%s: journal mode is %s, not wal", path, val);
	if (rc == 0)
		rc = sq_exec(q, "PRAGMA synchronous = NORMAL", __func__);
	return rc;
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .cluster_list = sq_cluster_list,
    .cluster_get = sq_cluster_get,
    .cluster_get_by_fingerprint = sq_cluster_get_by_fingerprint,
    .cluster_name_by_fingerprint = sq_cluster_name_by_fingerprint,
    .cluster_update = sq_cluster_update,
    .cluster_delete = sq_cluster_delete,
    .cluster_set_status = sq_cluster_set_status,
    .cluster_set_status_many = sq_cluster_set_status_many,
    .cluster_join = sq_cluster_join,
    .token_create = sq_token_create,
    .token_list = sq_token_list,
    .token_delete = sq_token_delete,
    .api_token_create = sq_api_token_create,
    .api_token_check = sq_api_token_check,
    .api_token_count = sq_api_token_count,
    .api_token_hashes = sq_api_token_hashes,
    .api_token_list = sq_api_token_list,
    .api_token_delete = sq_api_token_delete,
    .tunnel_set = sq_tunnel_set,
    .tunnel_clear = sq_tunnel_clear,
    .tunnel_clear_replica = sq_tunnel_clear_replica,
    .audit_append = sq_audit_append,
    .audit_append_many = sq_audit_append_many,
    .audit_count = sq_audit_count,
};

/*
 * Opens (creating if needed) the database file at path, configures the
 * connection and applies pending migrations. 0 and *out, or -ENOMEM/-EIO
 * (logged).
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
	if (sqlite3_open_v2(path, &q->sq_db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		if (q->sq_db != NULL)
			LOG_ERROR("cannot open %s: %s", path, sqlite3_errmsg(q->sq_db));
		else
			LOG_ERROR("cannot open %s: out of memory", path);
		rc = q->sq_db != NULL ? -EIO : -ENOMEM;
		goto fail;
	}
	rc = sq_configure(q, path);
	if (rc == 0)
		rc = sq_migrate(q);
	if (rc != 0)
		goto fail;
	*out = &q->sq_base;
	return 0;
fail:
	sq_free(q);
	return rc;
}
