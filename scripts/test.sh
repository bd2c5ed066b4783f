#!/usr/bin/env bash
# Sets everything up and runs every test: fetches the embedded model, checks formatting and
# lints, and runs the unit and integration tests (real model, real files) in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
scripts/fetch-model.sh
cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked
