//! What the integration tests (tests/integration) and the benchmarks (benches/) share: `infra server`
//! in this process with its first admin ([`cluster::Infra`] on a real HTTPS port; the same setup as a
//! router for the in-process API tests), the Kubernetes API test server with a connected cluster, the
//! test OpenID Provider ([`idp`]), and a throw-away PostgreSQL ([`pg`]).
// test code: a step that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod idp;
pub mod pg;
