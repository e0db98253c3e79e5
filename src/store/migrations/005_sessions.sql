-- 005_sessions.sql - people logged in with OIDC (issue 11).
--
-- A session is found by the SHA-256 (hex) of its cookie value; the cookie
-- itself is never stored. tokens holds the provider's tokens sealed with
-- AES-256-GCM under a key derived from the cookie value (HKDF), so a copy
-- of the database alone cannot use them. Times are Unix seconds.
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL DEFAULT '[]',
	role TEXT NOT NULL DEFAULT 'none',
	created_at INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	idle_expires_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	user_agent TEXT NOT NULL DEFAULT '',
	address TEXT NOT NULL DEFAULT '',
	tokens TEXT NOT NULL DEFAULT '',
	access_expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (issuer, subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Every person seen at a login or refresh, with what the provider last said.
CREATE TABLE identities (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL DEFAULT '[]',
	role TEXT NOT NULL DEFAULT 'none',
	first_seen INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (issuer, subject)
);

-- Keys every replica shares (the sealed login-state cookie's), made once by
-- whichever replica needs one first.
CREATE TABLE server_keys (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
