-- API tokens carry a role, viewer < operator < admin (docs/security.md).
-- Tokens made before roles existed keep the full rights they had.
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
	CHECK (role IN ('admin', 'operator', 'viewer'));
