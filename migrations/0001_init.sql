-- The first schema. Written once for both databases; the migrator replaces two tokens:
--   {{PK}}    an auto-increment 64-bit primary key
--   {{TEXT}}  text compared byte by byte (COLLATE "C" on PostgreSQL), so that prefix searches are
--             plain index range scans on either database
-- All times are BIGINT milliseconds since the Unix epoch.

CREATE TABLE users (
    id {{PK}},
    kind TEXT NOT NULL DEFAULT 'user',           -- 'user' (a person) or 'machine' (the connector identity)
    email {{TEXT}} NOT NULL UNIQUE,             -- lowercased
    name TEXT NOT NULL,
    name_lc {{TEXT}} NOT NULL,                  -- lowercased name, for prefix search
    password_hash TEXT,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    provider TEXT NOT NULL DEFAULT 'local',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_seen_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_name_lc ON users (name_lc);

CREATE TABLE groups (
    id {{PK}},
    name TEXT NOT NULL,
    name_lc {{TEXT}} NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT 'local',
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE destinations (
    id {{PK}},
    name {{TEXT}} NOT NULL UNIQUE,
    unique_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    ca TEXT NOT NULL,
    kubernetes_version TEXT NOT NULL,
    connector_version TEXT NOT NULL DEFAULT '',
    namespaces TEXT NOT NULL DEFAULT '[]',       -- JSON array of names
    roles TEXT NOT NULL DEFAULT '[]',            -- JSON array of names
    last_seen_at BIGINT,
    created_at BIGINT NOT NULL
);

-- resource = destination, or destination.namespace; destination 'infra' is the product itself
CREATE TABLE grants (
    id {{PK}},
    subject_kind TEXT NOT NULL,                  -- 'user' or 'group'
    subject_id BIGINT NOT NULL,
    role {{TEXT}} NOT NULL,
    destination {{TEXT}} NOT NULL,
    namespace {{TEXT}} NOT NULL DEFAULT '',
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (subject_kind, subject_id, role, destination, namespace)
);
CREATE INDEX grants_destination ON grants (destination, namespace);
CREATE INDEX grants_role ON grants (role);

CREATE TABLE access_keys (
    id {{PK}},
    key_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,                   -- SHA-256 of the secret; the secret itself is never stored
    name TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    destination TEXT,                            -- a connector key may register only this cluster
    expires_at BIGINT NOT NULL,
    inactivity_timeout_secs BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_keys_user ON access_keys (user_id);

CREATE TABLE audit_events (
    id {{PK}},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,                       -- 'success' or 'denied'
    source TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,                    -- SHA-256 of the session id in the cookie
    user_id BIGINT,                              -- who signed in, so that disabling them ends their sessions
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
