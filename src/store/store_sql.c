/*
 * store_sql.c - the text of every store statement (store_ops.h), in the SQL
 * that SQLite and PostgreSQL both speak. Values are bound as ?1, ?2, ...
 * (the PostgreSQL backend rewrites them to $1, $2 and binds them typed, so
 * the same text works in both). A statement whose dialects really differ
 * is overridden by the backend that needs another text (postgres.c has
 * the few that do); every backend's own part is connections, transactions
 * and its migrations.
 */
#include "store/store_ops.h"

/* clang-format off */
#define STORE_SQL_CLUSTER_SELECT \
	"SELECT c.id, c.name, c.description, c.certificate, c.fingerprint, c.status," \
	" c.joined_at, c.created_at," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'disk_threshold'), 80)," \
	" COALESCE((SELECT CAST(value AS INTEGER) FROM cluster_config" \
	"  WHERE cluster_id = c.id AND key = 'memory_threshold'), 80)," \
	" s.updated_at, s.body" \
	" FROM clusters c LEFT JOIN cluster_status s ON s.cluster_id = c.id"
/*
 * Reading the audit log: the shared column list and conditions of the
 * four variants, which lead with a different equality so that the
 * database walks the index named in migration 006 in the order of the
 * ORDER BY and stops after LIMIT rows (a "?1 IS NULL OR" term cannot use
 * an index).
 */
#define STORE_SQL_AUDIT_SELECT \
	"SELECT id, at, request_id, actor, actor_name, client, cluster, method, path," \
	" status, bytes_in, bytes_out, duration_ms FROM audit_log WHERE "
#define STORE_SQL_AUDIT_WHERE \
	" (?1 IS NULL OR cluster = ?1)" \
	" AND (?2 IS NULL OR actor = ?2 OR actor_name = ?2)" \
	" AND (?3 IS NULL OR actor = ?3)" \
	" AND status BETWEEN ?4 AND ?5 AND at BETWEEN ?6 AND ?7" \
	" AND (at, id) < (?8, ?9)" \
	" ORDER BY at DESC, id DESC LIMIT ?10"
/* clang-format on */

/* STORE_SESSION_COLUMNS (store_ops.h) */
#define STORE_SQL_SESSION_COLUMNS                                                                  \
	"id, hash, issuer, subject, name, email, groups, role, created_at, last_seen,"             \
	" idle_expires_at, expires_at, user_agent, address, tokens, access_expires_at"

const char *const store_sql_text[STORE_SQL__COUNT] = {
    [STORE_SQL_MIGRATIONS_TABLE] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
				   " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
				   " applied_at INTEGER NOT NULL)",
    [STORE_SQL_MIGRATION_APPLIED] = "SELECT 1 FROM schema_migrations WHERE version = ?1",
    [STORE_SQL_MIGRATION_RECORD] =
	"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
    [STORE_SQL_MIGRATION_MAX] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",

    [STORE_SQL_CLUSTER_LIST] = STORE_SQL_CLUSTER_SELECT " ORDER BY c.name",
    [STORE_SQL_CLUSTER_GET] = STORE_SQL_CLUSTER_SELECT " WHERE c.name = ?1",
    [STORE_SQL_CLUSTER_GET_BY_FP] = STORE_SQL_CLUSTER_SELECT " WHERE c.fingerprint = ?1",
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
			       " status, bytes_in, bytes_out, duration_ms, request_id,"
			       " actor_name, client)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [STORE_SQL_AUDIT_COUNT] = "SELECT COUNT(*) FROM audit_log",
    [STORE_SQL_AUDIT_QUERY] = STORE_SQL_AUDIT_SELECT STORE_SQL_AUDIT_WHERE,
    [STORE_SQL_AUDIT_QUERY_CLUSTER] =
	STORE_SQL_AUDIT_SELECT "cluster = ?1 AND" STORE_SQL_AUDIT_WHERE,
    [STORE_SQL_AUDIT_QUERY_ACTOR] =
	STORE_SQL_AUDIT_SELECT "(actor = ?2 OR actor_name = ?2) AND" STORE_SQL_AUDIT_WHERE,
    [STORE_SQL_AUDIT_QUERY_OWNER] = STORE_SQL_AUDIT_SELECT "actor = ?3 AND" STORE_SQL_AUDIT_WHERE,
    [STORE_SQL_AUDIT_PRUNE] = "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log"
			      " WHERE at < ?1 ORDER BY at LIMIT ?2)",

    [STORE_SQL_SESSION_INSERT] =
	"INSERT INTO sessions (id, hash, issuer, subject, name, email, groups, role, created_at,"
	" last_seen, idle_expires_at, expires_at, user_agent, address, tokens, access_expires_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [STORE_SQL_SESSION_BY_HASH] =
	"SELECT " STORE_SQL_SESSION_COLUMNS " FROM sessions WHERE hash = ?1",
    [STORE_SQL_SESSION_BY_ID] = "SELECT " STORE_SQL_SESSION_COLUMNS " FROM sessions WHERE id = ?1",
    [STORE_SQL_SESSION_TOUCH] =
	"UPDATE sessions SET last_seen = ?2, idle_expires_at = ?3 WHERE hash = ?1",
    [STORE_SQL_SESSION_UPDATE] = "UPDATE sessions SET groups = ?2, role = ?3, tokens = ?4,"
				 " access_expires_at = ?5 WHERE hash = ?1",
    [STORE_SQL_SESSION_DELETE] = "DELETE FROM sessions WHERE hash = ?1",
    [STORE_SQL_SESSION_LIST] =
	"SELECT " STORE_SQL_SESSION_COLUMNS " FROM sessions ORDER BY created_at, id",
    [STORE_SQL_SESSION_LIST_USER] = "SELECT " STORE_SQL_SESSION_COLUMNS " FROM sessions"
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

    [STORE_SQL_COPY_HAS_DATA] = "SELECT 1 FROM clusters UNION ALL SELECT 1 FROM join_tokens"
				" UNION ALL SELECT 1 FROM api_tokens UNION ALL SELECT 1 FROM audit_log"
				" LIMIT 1",
    [STORE_SQL_COPY_READ_CLUSTERS] = "SELECT id, name, description, certificate, fingerprint,"
				     " status, joined_at, created_at FROM clusters ORDER BY id",
    [STORE_SQL_COPY_WRITE_CLUSTERS] = "INSERT INTO clusters (id, name, description, certificate,"
				      " fingerprint, status, joined_at, created_at)"
				      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STORE_SQL_COPY_READ_STATUS] =
	"SELECT cluster_id, updated_at, body FROM cluster_status ORDER BY cluster_id",
    [STORE_SQL_COPY_WRITE_STATUS] =
	"INSERT INTO cluster_status (cluster_id, updated_at, body) VALUES (?1, ?2, ?3)",
    [STORE_SQL_COPY_READ_CONFIG] =
	"SELECT cluster_id, key, value FROM cluster_config ORDER BY cluster_id, key",
    [STORE_SQL_COPY_WRITE_CONFIG] =
	"INSERT INTO cluster_config (cluster_id, key, value) VALUES (?1, ?2, ?3)",
    [STORE_SQL_COPY_READ_JOIN_TOKENS] = "SELECT id, cluster_name, description, secret_hash,"
					" expires_at, created_at FROM join_tokens ORDER BY id",
    [STORE_SQL_COPY_WRITE_JOIN_TOKENS] = "INSERT INTO join_tokens (id, cluster_name, description,"
					 " secret_hash, expires_at, created_at)"
					 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STORE_SQL_COPY_READ_API_TOKENS] =
	"SELECT id, name, hash, created_at, role FROM api_tokens ORDER BY id",
    [STORE_SQL_COPY_WRITE_API_TOKENS] = "INSERT INTO api_tokens (id, name, hash, created_at, role)"
					" VALUES (?1, ?2, ?3, ?4, ?5)",
    [STORE_SQL_COPY_READ_AUDIT] = "SELECT id, at, actor, cluster, method, path, status, bytes_in,"
				  " bytes_out, duration_ms, request_id, actor_name, client"
				  " FROM audit_log ORDER BY id",
    [STORE_SQL_COPY_WRITE_AUDIT] = "INSERT INTO audit_log (id, at, actor, cluster, method, path,"
				   " status, bytes_in, bytes_out, duration_ms, request_id,"
				   " actor_name, client)"
				   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [STORE_SQL_COPY_RESEED] = "SELECT 1",
};
