#!/usr/bin/env bash
# Remote inference benchmark: SST-2 dev labels/s with the in-process engine and with the same
# GGUF served by llama.cpp's llama-server (reached with --model openai:URL), on this machine,
# alternated REPEATS times in one run, with the share of rows where the two agree.
# The server and Wick share the machine's cores, as the engine alone does; THREADS each.
#
#   scripts/bench-remote.sh
#   REPEATS=3 THREADS=2 SLOTS=2 scripts/bench-remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-2}
THREADS=${THREADS:-2}
SLOTS=${SLOTS:-2}
DATA=${DATA:-../shared/data/sentiment_sst2_dev.jsonl}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
scripts/fetch-model.sh >/dev/null
scripts/build-llamacpp.sh llama-server >/dev/null
cargo build --release --locked --bin wick
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
OUT=$(mktemp -d)
target/llama.cpp/bin/llama-server -m "$MODEL" --host 127.0.0.1 --port "$PORT" -t "$THREADS" \
    -np "$SLOTS" -c $((2048 * SLOTS)) --no-webui >"$OUT/llama-server.log" 2>&1 &
LLAMA=$!
trap 'kill $LLAMA 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
done
ROWS=$(wc -l <"$DATA")
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $ROWS rows of $DATA; llama-server with $SLOTS slots, $THREADS threads each side"
run() { # name model
    local t0 t1
    t0=$(date +%s.%N)
    target/release/wick label --task sentiment --threads "$THREADS" --model "$2" -o "$OUT/$1.jsonl" "$DATA" 2>/dev/null
    t1=$(date +%s.%N)
    python3 -c "print(f'$1: {($t1-$t0):.1f} s, {$ROWS/($t1-$t0):.1f} labels/s')"
}
for r in $(seq 1 "$REPEATS"); do
    echo "-- run $r"
    run in-process "$MODEL"
    run llama-server "openai:http://127.0.0.1:$PORT"
done
python3 - "$OUT" <<'PY'
import json, sys
rows = lambda n: [json.loads(l) for l in open(f"{sys.argv[1]}/{n}.jsonl")]
a, b = rows("in-process"), rows("llama-server")
agree = sum(x["prediction"]["label"] == y["prediction"]["label"] for x, y in zip(a, b))
acc = lambda rs: sum(r["prediction"]["label"] == r["label"] for r in rs) / len(rs)
print(f"agreement {agree}/{len(a)} = {agree/len(a):.3f}; accuracy in-process {acc(a):.3f}, llama-server {acc(b):.3f}")
print("model ids:", a[0]["model"], "|", b[0]["model"])
PY
