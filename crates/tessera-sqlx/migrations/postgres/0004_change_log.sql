-- The change log read by the change feed (docs/DISTRIBUTED.md, "The change feed").
-- One row per revoked session (kind 'r', subject = the handle) and per signing-key
-- write (kind 'k'), inserted in the same transaction as the change. at_ms is the
-- database's clock (ms since the Unix epoch), used only to prune old rows.
CREATE TABLE IF NOT EXISTS tessera_changes (
    seq     BIGSERIAL   NOT NULL PRIMARY KEY,
    kind    CHAR(1)     NOT NULL,
    subject VARCHAR(64) NOT NULL,
    at_ms   BIGINT      NOT NULL DEFAULT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint
);

CREATE INDEX IF NOT EXISTS tessera_changes_at_ms ON tessera_changes (at_ms);

-- A hint to listening instances (LISTEN tessera_changes), delivered at commit.
-- Instances also poll, so a lost notification only delays them.
CREATE OR REPLACE FUNCTION tessera_changes_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS tessera_changes_notify ON tessera_changes;
CREATE TRIGGER tessera_changes_notify AFTER INSERT ON tessera_changes
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changes_notify();
