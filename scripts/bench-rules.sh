#!/usr/bin/env bash
# Labeling-function benchmark (benches/rules.rs): 55 rules (40 keyword lists of 12–28 terms,
# 15 patterns) over ITEMS synthetic banking messages of 20 intents. Matching in memory on 1 and
# THREADS threads, the label model's fit, then on real SQLite files (built once, cached under
# target/bench-rules/): the scan query by query, the rules table, the live preview on a
# 100,000-item project, and the apply job end to end with its peak RSS.
# Figures go to stdout and target/bench-rules.json; BENCHMARKS.md records them.
#
#   scripts/bench-rules.sh              (1,000,000 items)
#   scripts/bench-rules.sh 100000       (quick run)
#   THREADS=2 REPEATS=3 FRESH=1 scripts/bench-rules.sh
# FRESH=1 rebuilds the cached databases; PREVIEW_ITEMS (100000) sizes the preview project.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "bench-rules.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
THREADS=${THREADS:-2}
export WICK_BENCH_ITEMS=${1:-${ITEMS:-1000000}}
export WICK_BENCH_THREADS=$THREADS
export RAYON_NUM_THREADS=$THREADS
export WICK_BENCH_REPEATS=${REPEATS:-3}
export WICK_BENCH_PREVIEW_ITEMS=${PREVIEW_ITEMS:-100000}
export WICK_BENCH_FRESH=${FRESH:-0}
cargo bench --locked --bench rules --no-run
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
cargo bench --locked --bench rules
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
