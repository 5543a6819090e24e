//! The integration tests, in one test binary: linking each file as a binary of its own would link the
//! whole product five times (minutes and gigabytes on a 2-core CI machine), for no gain in isolation,
//! since the tests share no process state. What they share is in crates/test-harness.
// a test that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_cli;
mod cli;
mod connector;
mod kube_test_server;
mod oidc;
mod server;
mod slow_clients;
