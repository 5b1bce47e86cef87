-- What a session records about the client that created it (docs/PROTOCOL.md
-- §2.1, §3.1). Written once, by the insert of create_new_session; refreshes
-- never rewrite them. All three are optional, and rows made before this
-- migration keep NULL. The core cleans and cuts the values to fit.
--   user_agent      the sign-in request's User-Agent, at most 256 bytes
--   client_address  its IP address as text (personal data; stored only when
--                   the configuration records client addresses, off by default)
--   device_label    a label the application gave the session, at most 128 bytes
-- No index: the columns are read only with the rest of a user's rows.
ALTER TABLE tessera_sessions ADD COLUMN user_agent TEXT NULL;
ALTER TABLE tessera_sessions ADD COLUMN client_address TEXT NULL;
ALTER TABLE tessera_sessions ADD COLUMN device_label TEXT NULL;
