-- People's sessions (OIDC login, issue 11), the identities seen, and keys
-- shared by every server on the database: the same tables as
-- src/store/migrations/005_sessions.sql, times as BIGINT.
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL DEFAULT '[]',
	role TEXT NOT NULL DEFAULT 'none',
	created_at BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	idle_expires_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	user_agent TEXT NOT NULL DEFAULT '',
	address TEXT NOT NULL DEFAULT '',
	tokens TEXT NOT NULL DEFAULT '',
	access_expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (issuer, subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE identities (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL DEFAULT '[]',
	role TEXT NOT NULL DEFAULT 'none',
	first_seen BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	PRIMARY KEY (issuer, subject)
);

CREATE TABLE server_keys (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
