-- Continuous verification that does not fail the wrong way:
-- - per provider user, the trouble since the last successful check: an IdP that cannot be reached, answers
--   5xx or without an ID token leaves the user as is; they are retried with backoff (`verify_retry_at`),
--   counted on the Identity providers page, and disabled only once the trouble outlasts the grace period;
-- - one lease, so that of several replicas only one runs a pass at a time (rotating refresh tokens are
--   single-use: two replicas refreshing the same user would revoke the grant at the IdP).
ALTER TABLE provider_users ADD COLUMN verify_failing_since BIGINT;          -- first failed check since the last success
ALTER TABLE provider_users ADD COLUMN verify_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provider_users ADD COLUMN verify_retry_at BIGINT;               -- not checked again before this
ALTER TABLE provider_users ADD COLUMN verify_error TEXT NOT NULL DEFAULT '';

CREATE TABLE leases (
    name {{TEXT}} PRIMARY KEY,                   -- 'verification'
    holder TEXT NOT NULL DEFAULT '',             -- a random id of the pass holding it
    expires_at BIGINT NOT NULL DEFAULT 0         -- free from then on (a crashed holder loses it)
);
INSERT INTO leases (name) VALUES ('verification');
