-- placeholder, replaced by the store work
CREATE TABLE IF NOT EXISTS schema_placeholder (id INTEGER);
