#!/usr/bin/env bash
# Installs everything the project needs to build, run and test, skipping what is already there.
# Safe to run again and again. See ../shared/TOOLCHAIN.md for why each pin is what it is.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Tools are built once per machine and only run, so they are built with a cheap release profile: opt-level 1,
# no LTO, no debug info. On a fresh 2-core machine the whole setup took 15 min 40 s this way (32 min with the
# full release profile), and the tools stay fast enough: generating the front end's JS/WASM takes 3 s.
tool_install() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    cargo "$@"
}

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null 2>&1 || apt_missing+=(postgresql)
command -v kubectl >/dev/null 2>&1 || apt_missing+=(kubectl)
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo fmt --version >/dev/null 2>&1; then
  say "adding rustfmt (the test command checks formatting)"
  rustup component add rustfmt
fi

if ! command -v clippy-driver >/dev/null 2>&1 || ! clippy-driver --version >/dev/null 2>&1; then
  say "adding clippy (the test command lints every build)"
  rustup component add clippy
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (needs nightly rustc; about 10 minutes on 2 cores, once)"
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  tool_install +nightly install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (must equal the wasm-bindgen crate in Cargo.lock)"
  tool_install install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Tailwind (and binaryen's wasm-opt for release builds) come from npm, pinned in package.json.
if [ ! -x node_modules/.bin/tailwindcss ] || [ package.json -nt node_modules/.installed ]; then
  say "installing npm packages (tailwind, binaryen)"
  npm install --no-audit --no-fund --silent
  touch node_modules/.installed
fi

# Playwright and the OpenID Provider used by the end-to-end tests; browsers come from Debian, never downloaded.
if [ -f end2end/package.json ] && { [ ! -d end2end/node_modules/@playwright ] || [ end2end/package.json -nt end2end/node_modules/.installed ]; }; then
  say "installing end-to-end test packages"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent && touch node_modules/.installed)
fi
say "toolchain ready"
