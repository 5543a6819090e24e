-- The connector: problems it reports about grants it cannot apply, and the keys that sign the
-- short-lived tokens its proxy accepts.

ALTER TABLE destinations ADD COLUMN problems TEXT NOT NULL DEFAULT '[]';  -- JSON list of sentences

CREATE TABLE signing_keys (
    id {{PK}},
    kid TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,                     -- 'EdDSA'
    private_key TEXT NOT NULL,                   -- encrypted with the server's master key (see docs/security.md)
    public_key TEXT NOT NULL,                    -- base64url of the raw public key, as in a JWK
    created_at BIGINT NOT NULL,
    retired_at BIGINT,                           -- no longer signs; still published until tokens it signed expire
    expires_at BIGINT                            -- no longer published
);
