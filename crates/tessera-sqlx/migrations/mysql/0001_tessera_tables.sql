-- Tessera session store, MySQL / MariaDB.
-- Plain and idempotent: the Django package creates the same tables from this file.
-- Times are milliseconds since the Unix epoch.
--
-- Every text column uses utf8mb4 with the binary collation utf8mb4_bin, whatever
-- the database default is: "Alice" and "alice" are different users, and a
-- handle or key name must match byte for byte. (utf8mb4_bin still pads with
-- spaces when comparing; the Rust store refuses handles and key names that end
-- in a space, and stored user ids never do.) Indexes are declared inside
-- CREATE TABLE because MySQL has no CREATE INDEX IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS tessera_sessions (
    session_handle       VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    user_id              VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    refresh_token_hash_2 CHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    session_info         LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    jwt_payload          LONGTEXT     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at           BIGINT       NOT NULL,
    expires_at           BIGINT       NOT NULL,
    PRIMARY KEY (session_handle),
    KEY tessera_sessions_user_id_created_at (user_id, created_at),
    KEY tessera_sessions_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS tessera_keys (
    key_name   VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    key_value  TEXT         CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT       NOT NULL,
    PRIMARY KEY (key_name)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
