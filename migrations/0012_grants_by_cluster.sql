-- A cluster's access list is read newest first, a page at a time (WHERE destination = ? ORDER BY id DESC
-- LIMIT 50). With only (destination, namespace) indexed, the database joined and sorted every grant of the
-- cluster to return 50 of them, so the busiest cluster's page cost what the cluster holds (5,129 grants:
-- p99 160 ms). Walking this index backwards stops after the page.
CREATE INDEX grants_destination_id ON grants (destination, id);
