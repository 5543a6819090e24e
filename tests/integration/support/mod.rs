//! Shared by the integration tests: a running server with a connected cluster, the test OpenID
//! Provider, and a throw-away PostgreSQL.

pub mod cluster;
pub mod idp;
pub mod pg;
