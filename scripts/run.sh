#!/usr/bin/env bash
# Sets up whatever is missing, builds the console and the server, and runs `infra server` on the
# embedded SQLite database. Extra arguments go to `infra server` (see `infra server --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
echo "[run] building (the first build takes several minutes)"
cargo leptos build
exec target/debug/infra server "$@"
