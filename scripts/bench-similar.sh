#!/usr/bin/env bash
# Similar-items benchmark (benches/similar.rs): load time, memory, and "more like this" latency
# at a million items in a real SQLite file, beside an exact f32 brute force in the same run.
#
#   scripts/bench-similar.sh                 # 1M items, 2 threads
#   ITEMS=100000 THREADS=4 scripts/bench-similar.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "bench-similar.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
export WICK_BENCH_ITEMS=${ITEMS:-1000000}
export WICK_BENCH_QUERIES=${QUERIES:-100}
export RAYON_NUM_THREADS=${THREADS:-2}
cargo bench --locked --bench similar --no-run
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --locked --bench similar
