-- 001_init.sql - the first schema of lxcm.
--
-- Applied by the store inside one transaction, so no PRAGMA here. Times are
-- Unix seconds. Hashes are lowercase hex SHA-256. The schema_migrations table
-- itself is created by the store before any migration runs.

-- Enrolled clusters. A cluster row exists only after a successful join.
CREATE TABLE clusters (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	certificate TEXT NOT NULL,
	fingerprint TEXT NOT NULL UNIQUE,
	status TEXT NOT NULL DEFAULT 'ACTIVE',
	joined_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);

-- The last status heartbeat of each cluster, as the JSON text it came in.
CREATE TABLE cluster_status (
	cluster_id INTEGER PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
	updated_at INTEGER NOT NULL,
	body TEXT NOT NULL
);

-- Per-cluster settings (disk_threshold, memory_threshold, ...).
CREATE TABLE cluster_config (
	cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (cluster_id, key)
);

-- Pending join tokens, at most one per cluster name; only a hash of the
-- secret is kept.
CREATE TABLE join_tokens (
	id INTEGER PRIMARY KEY,
	cluster_name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	secret_hash TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);

-- Bearer tokens of the management API, looked up by hash.
CREATE TABLE api_tokens (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

-- One row per proxied request. cluster is a name, not a foreign key: the
-- log outlives the clusters it mentions.
CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	actor TEXT,
	cluster TEXT,
	method TEXT,
	path TEXT,
	status INTEGER NOT NULL DEFAULT 0,
	bytes_in INTEGER NOT NULL DEFAULT 0,
	bytes_out INTEGER NOT NULL DEFAULT 0,
	duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_cluster_at ON audit_log (cluster, at);

-- Manager replicas sharing one database, with a heartbeat lease.
CREATE TABLE replicas (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	address TEXT NOT NULL,
	last_seen INTEGER NOT NULL
);
CREATE INDEX replicas_last_seen ON replicas (last_seen);

-- Which replica holds the tunnel of a cluster; epoch orders takeovers.
CREATE TABLE tunnels (
	cluster_id INTEGER PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
	replica TEXT NOT NULL,
	epoch INTEGER NOT NULL DEFAULT 0,
	protocol TEXT NOT NULL,
	connected_since INTEGER NOT NULL
);
CREATE INDEX tunnels_replica ON tunnels (replica);
