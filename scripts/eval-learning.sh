#!/usr/bin/env bash
# Learning curves of the learner mixed with the language model on the shared dev sets, as
# BENCHMARKS.md ("Learning from answers") records them:
#  1. each dev file cut in two halves (rows 1-150, 151-300): `wick eval --curve` trained on one
#     half and tested on the other, then the other way round;
#  2. 10 folds (row i in fold i mod 10): trained on 270 rows, tested on the other 30, pooled;
#     the closest estimate here of training on all 300 rows and labeling unseen ones.
# Usage: scripts/eval-learning.sh [OUT_DIR]   (default target/eval-learning; needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${WICK_SHARED_DATA:-../shared/data}
OUT=${1:-target/eval-learning}
WICK=target/release/wick
[ -x "$WICK" ] || cargo build --release --locked
mkdir -p "$OUT"
scripts/fetch-model.sh

for set in sentiment_sst2_dev intent_banking77_dev intent_clinc150_dev; do
  if [ "$set" = sentiment_sst2_dev ]; then args=(--task sentiment); else
    args=(--task intent --labels-file "$DATA/$set.labels.json"); fi
  head -n 150 "$DATA/$set.jsonl" >"$OUT/$set.a.jsonl"
  tail -n +151 "$DATA/$set.jsonl" >"$OUT/$set.b.jsonl"
  for dir in "a b" "b a"; do
    read -r train test <<<"$dir"
    echo "== $set: train on half $train, test on half $test"
    "$WICK" eval "${args[@]}" --train "$OUT/$set.$train.jsonl" --curve 0,25,50,100,150 \
      "$OUT/$set.$test.jsonl" | tee "$OUT/$set.$train$test.txt"
  done
  for k in 0 1 2 3 4 5 6 7 8 9; do
    awk -v k=$k 'NR % 10 != (k + 1) % 10' "$DATA/$set.jsonl" >"$OUT/$set.fold$k.train.jsonl"
    awk -v k=$k 'NR % 10 == (k + 1) % 10' "$DATA/$set.jsonl" >"$OUT/$set.fold$k.test.jsonl"
    "$WICK" eval "${args[@]}" --train "$OUT/$set.fold$k.train.jsonl" --json \
      "$OUT/$set.fold$k.test.jsonl" | tail -n 1 >"$OUT/$set.fold$k.json"
  done
  python3 - "$OUT" "$set" <<'PY'
import json, sys
out, name = sys.argv[1:]
rows = [json.load(open(f"{out}/{name}.fold{k}.json")) for k in range(10)]
n = sum(r["n"] for r in rows)
def pooled(key, field):
    return sum(r[key][field] * r["n"] for r in rows if r.get(key)) / n
print(f"== {name}: 10 folds of {rows[0]['train_n']} training rows, {n} test rows pooled")
for key in ("lm", "learner", "mix"):
    print(f"{key:>8}  accuracy {pooled(key, 'accuracy'):.3f}  macro-F1 {pooled(key, 'macro_f1'):.3f}"
          f"  ECE (mean of folds) {pooled(key, 'ece'):.3f}")
print("  weights", [r.get("weight") for r in rows])
PY
done
