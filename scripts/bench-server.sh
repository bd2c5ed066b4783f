#!/usr/bin/env bash
# Server benchmark: imports N generated items with `wick import`, starts
# `wick serve --no-model` and drives it with annotator clients over 127.0.0.1 (next -> submit),
# reporting import rows/s, next/submit latency, submits/s and the server's peak RSS.
# Then the export phase: N labeled items (imported labels, model predictions, auto-accepted and
# human answers) exported with `wick export` and as the streamed GET download, labels and sft:
# time, rows/s, size and the exporting process's peak RSS, against an N/10 project; the run
# fails if an export's line count differs from the labeled item count.
# The load generator runs on the same machine and shares its cores with the server.
# Figures go to stdout and target/bench-server.json; BENCHMARKS.md records them.
#
#   ITEMS=1000000 DURATION=20 CLIENTS=50 scripts/bench-server.sh
#   ITEMS=100000 DURATION=10 scripts/bench-server.sh     (quick run)
# Also: WARMUP (5 s), API_IMPORT (1: also time POST /projects/{id}/items), HTTP_WORKERS,
# EXPORT (1: the export phase), REVIEW_SECONDS (5: human review before the export).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "bench-server.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
export WICK_BENCH_ITEMS=${ITEMS:-1000000}
export WICK_BENCH_SECONDS=${DURATION:-20}
export WICK_BENCH_WARMUP=${WARMUP:-5}
export WICK_BENCH_CLIENTS=${CLIENTS:-50}
export WICK_BENCH_API_IMPORT=${API_IMPORT:-1}
export WICK_BENCH_EXPORT=${EXPORT:-1}
export WICK_BENCH_REVIEW_SECONDS=${REVIEW_SECONDS:-5}
if [[ -n "${HTTP_WORKERS:-}" ]]; then export WICK_BENCH_HTTP_WORKERS=$HTTP_WORKERS; fi
cargo build --release --locked --bin wick --bench server
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== server bench: $WICK_BENCH_ITEMS items, $WICK_BENCH_CLIENTS clients, ${WICK_BENCH_WARMUP} s warm-up + ${WICK_BENCH_SECONDS} s"
cargo bench --locked --bench server
