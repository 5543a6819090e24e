#!/usr/bin/env bash
# Sets up whatever is missing and runs every test:
#   1. the Rust tests (services, API authorization, sign-in, sessions), each on SQLite and on a
#      throw-away PostgreSQL started from a temporary directory;
#   2. the Playwright tests in Debian's Chromium against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A full run builds once: incremental compilation data (about 1 GB here) only pays off when you edit and
# rebuild, which `cargo test` on its own does. Set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
bash scripts/setup.sh

echo "[test] formatting (rustfmt.toml; run cargo fmt to fix)"
cargo fmt --check

# Clippy (with -D warnings, and the lints listed in Cargo.toml) runs as the compiler of this workspace's own
# crates in every build below: cargo's RUSTC_WORKSPACE_WRAPPER is how `cargo clippy` itself runs it. So the
# server, the console's WebAssembly, the tests and the benchmarks are all linted, a warning fails the build,
# and no dependency is compiled a second time for a separate `cargo clippy --all-targets` pass (which checks
# every dependency again; figures in docs/benchmarks.md). Run `cargo clippy --all-targets --features ssr`
# for the same lints by hand.
RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

echo "[test] building the console and the server"
cargo leptos build

echo "[test] Rust tests (SQLite and PostgreSQL)"
# --workspace: the product's tests and those of the crates in crates/ (the Kubernetes API test double's)
cargo test --workspace --features ssr

echo "[test] the benchmark commands still build (they run with cargo bench; see docs/benchmarks.md)"
cargo build --features ssr --benches

echo "[test] browser tests (Playwright, Chromium)"
# the browser tests start the Kubernetes API test server too (target/debug/kube-test-apiserver, a binary of
# the workspace crate crates/kube-test-apiserver). Built with the whole workspace selected, so its
# dependencies have the features they have in the builds above and are reused, not compiled again:
# cargo test compiled its library, this only links the binary.
cargo build --workspace --features ssr --bin kube-test-apiserver
cd end2end
npx playwright test
