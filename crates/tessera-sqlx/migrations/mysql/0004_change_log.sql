-- The change log read by the change feed (docs/DISTRIBUTED.md, "The change feed").
-- One row per revoked session (kind 'r', subject = the handle) and per signing-key
-- write (kind 'k'), inserted in the same transaction as the change. at_ms is the
-- database's clock (ms since the Unix epoch), used only to prune old rows.
CREATE TABLE IF NOT EXISTS tessera_changes (
    seq     BIGINT      NOT NULL AUTO_INCREMENT,
    kind    CHAR(1)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    at_ms   BIGINT      NOT NULL DEFAULT (FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000)),
    PRIMARY KEY (seq),
    KEY tessera_changes_at_ms (at_ms)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
