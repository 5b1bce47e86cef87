-- The promotion history the refresh grace window and the reuse classification
-- read (docs/PROTOCOL.md §3.9). Every promotion writes the last two, and the
-- first only when a grace window is configured; rows made before this
-- migration keep NULL until their next promotion, which the core reads as
-- "no window open, no history".
--   committed_hash_1  H1 of the committed refresh token (64 hex), or NULL
--   previous_hash_2   H2 of the token the last promotion superseded (64 hex)
--   superseded_at     when that promotion happened (ms since the Unix epoch)
ALTER TABLE tessera_sessions
    ADD COLUMN committed_hash_1 CHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN previous_hash_2  CHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN superseded_at    BIGINT NULL;
