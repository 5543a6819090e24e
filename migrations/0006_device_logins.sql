-- `infra login --web`: the CLI asks for a code, the user approves it in the console (after signing in
-- with a password or an identity provider), and the CLI collects an access key. Only a hash of the
-- device code is stored; a row is used once.

CREATE TABLE device_logins (
    id {{PK}},
    device_code TEXT NOT NULL UNIQUE,            -- SHA-256, hex
    user_code {{TEXT}} NOT NULL UNIQUE,          -- what the person compares and confirms: XXXX-XXXX
    client_name TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,   -- set when approved
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
