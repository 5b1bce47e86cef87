-- The change log read by the change feed (docs/DISTRIBUTED.md, "The change feed").
-- One row per revoked session (kind 'r', subject = the handle) and per signing-key
-- write (kind 'k'), inserted in the same transaction as the change. at_ms is the
-- database's clock (ms since the Unix epoch), used only to prune old rows.
CREATE TABLE IF NOT EXISTS tessera_changes (
    seq     INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind    CHAR(1)     NOT NULL,
    subject VARCHAR(64) NOT NULL,
    at_ms   BIGINT      NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

CREATE INDEX IF NOT EXISTS tessera_changes_at_ms ON tessera_changes (at_ms);
