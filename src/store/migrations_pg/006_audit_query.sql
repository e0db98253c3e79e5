-- Reading the audit log (GET /1.0/audit, issue 14): the same columns and
-- indexes as src/store/migrations/006_audit_query.sql. PostgreSQL does
-- not add the id to an index by itself, so each index ends with it and
-- is ordered as the queries are (newest first by (at, id)).
ALTER TABLE audit_log ADD COLUMN actor_name TEXT;
ALTER TABLE audit_log ADD COLUMN client TEXT;
CREATE INDEX audit_log_actor_at ON audit_log (actor, at, id);
CREATE INDEX audit_log_actor_name_at ON audit_log (actor_name, at, id);
CREATE INDEX audit_log_at_id ON audit_log (at, id);
CREATE INDEX audit_log_cluster_at_id ON audit_log (cluster, at, id);
