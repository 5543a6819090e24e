#!/usr/bin/env bash
# The connector benchmark: proxy vs direct vs nginx, and grant-to-binding propagation.
# Installs nginx (Debian package) when missing. Extra arguments go to the benchmark, e.g. --changes 200.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v nginx >/dev/null 2>&1; then
  echo "[bench] installing nginx"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq nginx-light >/dev/null
fi
exec cargo bench --features ssr --bench proxy -- "$@"
