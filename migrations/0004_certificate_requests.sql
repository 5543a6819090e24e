-- Break-glass client certificates: the server asks a cluster's connector (through the bindings long
-- poll) to have the cluster sign a CSR; the connector posts the certificate back. Only the CSR and the
-- signed certificate pass through here; the private key never leaves the server process that made it.
-- A row lives for the few seconds between the request and its answer.

CREATE TABLE certificate_requests (
    id {{PK}},
    destination TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    csr TEXT NOT NULL,                           -- PEM
    expiration_secs BIGINT NOT NULL,
    certificate TEXT NOT NULL DEFAULT '',        -- PEM, once the cluster signed it
    api_server TEXT NOT NULL DEFAULT '',         -- the API server URL and CA, as the connector reports them
    api_server_ca TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX certificate_requests_destination ON certificate_requests (destination);
