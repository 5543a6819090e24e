-- Provider groups are keyed by the identity provider's stable id for them, not by their display name:
-- display names are not unique, and in Azure AD and Google ordinary users can create groups, so a name
-- proves nothing. `external_id` is the Azure AD object id, the Google group email, or the groups
-- claim's value (generic OIDC, Okta); the name is a label that follows the IdP. Local groups keep names
-- unique among themselves (case-insensitively); a provider group may share its name with a local group
-- or another provider's group, and never merges into it.
--
-- Existing provider groups:
-- - from a groups claim (oidc, okta, google without a service account) the stored name was the claim's
--   value, so it becomes the key: nothing changes for their members and grants;
-- - from Azure AD (Microsoft Graph) or Google's directory the stored name was a display name, which any
--   member could have forged. They keep their grants (so an admin sees what to give again, to the group
--   by id) but lose their members and get none again (`external_id` empty).

--- postgres
ALTER TABLE groups DROP CONSTRAINT groups_name_lc_key;
ALTER TABLE groups ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
--- sqlite
-- SQLite cannot drop a UNIQUE constraint: the table is rebuilt, and group_members with it, since
-- dropping `groups` would delete its rows through ON DELETE CASCADE. Ids are kept, and so is the
-- AUTOINCREMENT counter, so that no id of a removed group comes back.
CREATE TABLE groups_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'local',
    created_at BIGINT NOT NULL,
    external_id TEXT NOT NULL DEFAULT ''
);
INSERT INTO groups_rebuilt (id, name, name_lc, source, created_at) SELECT id, name, name_lc, source, created_at FROM groups;
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('groups', 'groups_rebuilt')) WHERE name = 'groups_rebuilt';
CREATE TABLE group_members_saved AS SELECT group_id, user_id, created_at FROM group_members;
DROP TABLE group_members;
DROP TABLE groups;
ALTER TABLE groups_rebuilt RENAME TO groups;
CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
INSERT INTO group_members (group_id, user_id, created_at) SELECT group_id, user_id, created_at FROM group_members_saved;
DROP TABLE group_members_saved;
CREATE INDEX group_members_user ON group_members (user_id);
--- both
UPDATE groups SET external_id = name
    WHERE source IN (SELECT name FROM providers WHERE kind IN ('oidc', 'okta') OR (kind = 'google' AND directory_admin = ''));
DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE source <> 'local' AND external_id = '');
CREATE INDEX groups_name_lc ON groups (name_lc);
CREATE UNIQUE INDEX groups_local_name ON groups (name_lc) WHERE source = 'local';
CREATE UNIQUE INDEX groups_provider_key ON groups (source, external_id) WHERE source <> 'local' AND external_id <> '';
