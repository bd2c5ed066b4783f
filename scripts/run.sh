#!/usr/bin/env bash
# Sets everything up and runs Wick: fetches the embedded model, builds the release binary
# and labels the demo files with it (sentiment, then named entities), printing the results.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "run.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
scripts/fetch-model.sh
cargo build --release --locked
echo "== sentiment (scripts/demo/reviews.jsonl)" >&2
./target/release/wick label --task sentiment scripts/demo/reviews.jsonl
echo "== named entities (scripts/demo/news.jsonl)" >&2
./target/release/wick label --task ner scripts/demo/news.jsonl
