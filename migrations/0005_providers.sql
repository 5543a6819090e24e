-- Identity providers (OpenID Connect: any OP by discovery, Okta, Google Workspace, Azure AD) and the
-- users who sign in through them. Client secrets and refresh tokens are encrypted with the master key.
-- A provider's groups are rows of `groups` with `source` = the provider's name, read-only in the console.

CREATE TABLE providers (
    id {{PK}},
    name {{TEXT}} NOT NULL UNIQUE,               -- lowercase slug; also the `source` of its groups
    kind TEXT NOT NULL,                          -- 'oidc', 'okta', 'google' or 'azure'
    issuer TEXT NOT NULL,                        -- the issuer URL (for okta/google/azure derived from the domain)
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,                 -- encrypted
    scopes TEXT NOT NULL,                        -- space-separated
    groups_claim TEXT NOT NULL,
    allowed_domains TEXT NOT NULL DEFAULT '',    -- comma-separated email domains; empty: any
    created_at BIGINT NOT NULL
);

CREATE TABLE provider_users (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    provider_id BIGINT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,                       -- the IdP's `sub`
    refresh_token TEXT NOT NULL DEFAULT '',      -- encrypted; empty when the IdP gave none
    verified_at BIGINT,                          -- last successful check with the IdP
    UNIQUE (provider_id, subject)
);
CREATE INDEX provider_users_provider ON provider_users (provider_id);
