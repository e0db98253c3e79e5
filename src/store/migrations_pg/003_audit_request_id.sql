-- Audit rows carry a unique request id, so rows replayed from the audit
-- journal after a crash (src/server/audit_journal.c) are written once.
ALTER TABLE audit_log ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX audit_log_request_id ON audit_log (request_id)
	WHERE request_id IS NOT NULL;
