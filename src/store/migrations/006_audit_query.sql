-- Reading the audit log (GET /1.0/audit, issue 14). Rows also name the
-- principal for people (actor_name: "api-token:ci-bot"; actor stays the
-- stable id, "token:" and 12 hex digits) and the client's address. Rows
-- written before this migration have both NULL.
--
-- Every query is newest first by (at, id) and pages by that key (keyset
-- pagination). The indexes give each equality filter an index whose order
-- is the query's: SQLite appends the rowid (id) to every index, so
-- (x, at) is ordered by (x, at, id). The status filter is a range and is
-- checked on the rows the other filters reach.
ALTER TABLE audit_log ADD COLUMN actor_name TEXT;
ALTER TABLE audit_log ADD COLUMN client TEXT;
-- The id is named at the end for PostgreSQL, which does not add it.
CREATE INDEX audit_log_actor_at ON audit_log (actor, at, id);
CREATE INDEX audit_log_actor_name_at ON audit_log (actor_name, at, id);
