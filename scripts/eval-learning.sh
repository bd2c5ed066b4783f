#!/usr/bin/env bash
# Learning curves of the learner mixed with the language model on the shared dev sets, as
# BENCHMARKS.md ("Learning from answers") records them:
#  1. each dev file cut in two halves (rows 1-150, 151-300): `wick eval --curve` trained on one
#     half and tested on the other, then the other way round;
#  2. `wick eval --folds 10` of each whole file (row i in fold i mod 10): every row predicted by
#     a learner trained on the other 270, pooled; the closest estimate here of training on all
#     300 rows and labeling unseen ones.
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
  echo "== $set: 10 folds of the whole file"
  "$WICK" eval "${args[@]}" --folds 10 "$DATA/$set.jsonl" | tee "$OUT/$set.folds.txt"
done
