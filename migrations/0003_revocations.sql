-- Revocations the connectors must know of, so that tokens already issued stop working within seconds:
-- an access key revoked (tokens minted with it name it in their `sid` claim), or a user disabled or
-- deleted (`uid` claim). Kept until no token that could name them is still valid.

CREATE TABLE revocations (
    id {{PK}},
    kind TEXT NOT NULL,                          -- 'key' (an access key's key_id) or 'user' (a user id)
    subject TEXT NOT NULL,
    until_at BIGINT NOT NULL,                    -- no token naming the subject outlives this
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_until ON revocations (until_at);
