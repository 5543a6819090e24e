//! The integration tests, in one test binary: linking each file as a binary of its own would link the
//! whole product five times (minutes and gigabytes on a 2-core CI machine), for no gain in isolation,
//! since the tests share no process state.

mod support;

mod cli;
mod connector;
mod kube_test_server;
mod oidc;
mod server;
mod slow_clients;
