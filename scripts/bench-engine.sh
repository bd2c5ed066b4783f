#!/usr/bin/env bash
# Engine benchmark: Wick's engine and llama.cpp (llama-bench) on the same GGUF and thread
# count, one after the other in one run. Figures go to stdout; BENCHMARKS.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
DATA=${WICK_SHARED_DATA:-../shared/data}
scripts/fetch-model.sh
cargo build --release --locked --bench engine
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wick (candle), $THREADS threads"
cargo bench --locked --bench engine -- --threads "$THREADS" --model "$MODEL" --data "$DATA"
if scripts/build-llamacpp.sh >&2; then
  echo "== llama.cpp llama-bench, $THREADS threads"
  target/llama.cpp/bin/llama-bench -m "$MODEL" -t "$THREADS" -p 128,512 -n 64 -r 3
  target/llama.cpp/bin/llama-bench -m "$MODEL" -t "$THREADS" -p 0 -n 64 -d 448 -r 3
else
  echo "== llama.cpp could not be built here; no peer figures in this run"
fi
