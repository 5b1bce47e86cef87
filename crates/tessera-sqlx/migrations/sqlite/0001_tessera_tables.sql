-- Tessera session store, SQLite.
-- Plain and idempotent: the Django package creates the same tables from this file.
-- Times are milliseconds since the Unix epoch. Text comparisons use SQLite's
-- default BINARY collation, so user ids and handles are case-sensitive.

CREATE TABLE IF NOT EXISTS tessera_sessions (
    session_handle       VARCHAR(64)  NOT NULL PRIMARY KEY,
    user_id              VARCHAR(255) NOT NULL,
    refresh_token_hash_2 CHAR(64)     NOT NULL,
    session_info         TEXT         NOT NULL,
    jwt_payload          TEXT         NOT NULL,
    created_at           BIGINT       NOT NULL,
    expires_at           BIGINT       NOT NULL
);

CREATE INDEX IF NOT EXISTS tessera_sessions_user_id_created_at
    ON tessera_sessions (user_id, created_at);

CREATE INDEX IF NOT EXISTS tessera_sessions_expires_at
    ON tessera_sessions (expires_at);

CREATE TABLE IF NOT EXISTS tessera_keys (
    key_name   VARCHAR(128) NOT NULL PRIMARY KEY,
    key_value  TEXT         NOT NULL,
    created_at BIGINT       NOT NULL
);
