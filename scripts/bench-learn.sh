#!/usr/bin/env bash
# Learning-loop benchmark: `Learner::train` on 100, 1,000 and 10,000 human labels, and a retrain
# (`wick::retrain::train_and_rescore`) re-scoring 100,000 items of a 77-label project in a real
# SQLite file, on synthetic Banking77-like data (384-d embeddings + 576-d language-model features around per-label centres,
# a language model right 60 % of the time). Reports seconds (median of REPEATS), the mix weight,
# peak RSS, and the retrain phase by phase; fails if the retrain does not write 99,000 learner
# predictions. Figures go to stdout and target/bench-learn.json; BENCHMARKS.md records them.
#
#   scripts/bench-learn.sh
#   REPEATS=5 SIZES=1000 ITEMS=20000 HUMAN=500 scripts/bench-learn.sh
# Also: RESCORE (1: the retrain), BREAKDOWN (1: its phases).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "bench-learn.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
export WICK_BENCH_REPEATS=${REPEATS:-3}
export WICK_BENCH_SIZES=${SIZES:-100,1000,10000}
export WICK_BENCH_ITEMS=${ITEMS:-100000}
export WICK_BENCH_HUMAN=${HUMAN:-1000}
export WICK_BENCH_RESCORE=${RESCORE:-1}
export WICK_BENCH_BREAKDOWN=${BREAKDOWN:-1}
cargo bench --locked --bench learn --no-run
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --locked --bench learn
