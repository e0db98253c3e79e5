-- API tokens are managed by name (lxcm api-token create/list/revoke).
CREATE UNIQUE INDEX api_tokens_name ON api_tokens (name);
