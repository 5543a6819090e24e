-- The approval page shows who asked for a CLI login: the requesting client's address (besides its name
-- and the time), so that a person can tell a code someone else sent them from their own terminal's.
ALTER TABLE device_logins ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
