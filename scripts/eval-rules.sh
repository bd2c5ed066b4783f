#!/usr/bin/env bash
# The worked example of BENCHMARKS.md ("Labeling functions"): a dev file labeled by rules
# written from the label names alone (scripts/rules/*.json), combined with the model by
# majority vote and by the Dawid-Skene label model (`wick rules apply --rules`), scored against
# the file's gold labels: the model alone, the rules alone on the items they cover, both
# combinations, and the coverage. A third run gives the label model the gold labels of the
# first half (rows 1-150) as people's answers (--known-labels 150); every method is then also
# scored on the second half alone, which no answer touched.
# Usage: scripts/eval-rules.sh [sst2|banking77]   (needs a release build and the model)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${WICK_SHARED_DATA:-../shared/data}
WICK=target/release/wick
OUT=target/eval-rules
[ -x "$WICK" ] || cargo build --release --locked
scripts/fetch-model.sh >/dev/null
mkdir -p "$OUT"
case "${1:-sst2}" in
  sst2) file=$DATA/sentiment_sst2_dev.jsonl; args=(--task sentiment); rules=scripts/rules/sst2.json ;;
  banking77) file=$DATA/intent_banking77_dev.jsonl
    args=(--task intent --labels-file "$DATA/intent_banking77_dev.labels.json"); rules=scripts/rules/banking77.json ;;
  *) echo "usage: $0 [sst2|banking77]" >&2; exit 2 ;;
esac
for method in majority label-model; do
  "$WICK" rules apply --rules "$rules" "${args[@]}" --method "$method" "$file" -o "$OUT/$method.jsonl" \
    2>"$OUT/$method.log"
done
"$WICK" rules apply --rules "$rules" "${args[@]}" --method label-model --known-labels 150 "$file" \
  -o "$OUT/anchored.jsonl" 2>"$OUT/anchored.log"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
python3 - "$OUT/majority.jsonl" "$OUT/label-model.jsonl" "$OUT/anchored.jsonl" <<'PY'
import json, sys
from collections import Counter
maj = [json.loads(l) for l in open(sys.argv[1])]
lm = [json.loads(l) for l in open(sys.argv[2])]
anchored = [json.loads(l) for l in open(sys.argv[3])]
n = len(maj)
def model_label(r):
    p = r.get("model_prediction") or (r.get("prediction") if r.get("source") == "model" else None)
    return p and p["label"]
covered = [r for r in maj if r.get("votes")]
def rules_alone(r):
    c = Counter(r["votes"].values()).most_common()
    return c[0][0] if len(c) == 1 or c[0][1] > c[1][1] else None  # a tie is no answer
ra = [(rules_alone(r), r["label"]) for r in covered]
def acc(pairs):
    pairs = list(pairs)
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else float("nan")
print(f"items {n}, covered by a rule {len(covered)} ({len(covered)/n:.1%}), rule votes {sum(len(r['votes']) for r in covered)}")
print(f"model alone            {acc((model_label(r), r['label']) for r in maj):.3f}  (all {n})")
print(f"rules alone, covered   {acc(ra):.3f}  ({len(ra)} covered; ties count as wrong)")
print(f"model alone, covered   {acc((model_label(r), r['label']) for r in covered):.3f}")
print(f"majority vote          {acc((r['prediction']['label'], r['label']) for r in maj):.3f}  (covered: {acc((r['prediction']['label'], r['label']) for r in covered):.3f})")
print(f"label model            {acc((r['prediction']['label'], r['label']) for r in lm):.3f}  (covered: {acc((r['prediction']['label'], r['label']) for r in lm if r.get('votes')):.3f})")
half = n // 2
b = lambda rows: rows[half:]
cb = [r for r in b(maj) if r.get("votes")]
print(f"-- second half only (rows {half + 1}-{n}); {len(cb)} covered")
print(f"model alone            {acc((model_label(r), r['label']) for r in b(maj)):.3f}  (covered: {acc((model_label(r), r['label']) for r in cb):.3f})")
print(f"rules alone, covered   {acc((rules_alone(r), r['label']) for r in cb):.3f}")
print(f"majority vote          {acc((r['prediction']['label'], r['label']) for r in b(maj)):.3f}  (covered: {acc((r['prediction']['label'], r['label']) for r in cb):.3f})")
print(f"label model            {acc((r['prediction']['label'], r['label']) for r in b(lm)):.3f}  (covered: {acc((r['prediction']['label'], r['label']) for r in b(lm) if r.get('votes')):.3f})")
print(f"label model, anchored  {acc((r['prediction']['label'], r['label']) for r in b(anchored)):.3f}  (covered: {acc((r['prediction']['label'], r['label']) for r in b(anchored) if r.get('votes')):.3f}; first half's labels known)")
PY
echo "-- estimated accuracies (label model; anchored)"
paste "$OUT/label-model.log" "$OUT/anchored.log"
