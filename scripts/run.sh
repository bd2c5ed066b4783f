#!/usr/bin/env bash
# Sets everything up and runs Wick: fetches the embedded model, builds the release binary,
# creates a demo database (an intent project and an entity project, a few hundred rows from
# public dev sets, queued for pre-labeling, and an instruction dataset to review) on first run, and serves it on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "run.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
scripts/fetch-model.sh
cargo build --release --locked
wick=./target/release/wick
export WICK_DB="${WICK_DB:-demo.db}"
export WICK_ADMIN_PASSWORD="${WICK_ADMIN_PASSWORD:-wick-demo}"
addr="${WICK_ADDR:-127.0.0.1:8080}"
if [ ! -e "$WICK_DB" ]; then
    echo "== creating the demo database $WICK_DB" >&2
    $wick project create "Banking intents" --task classification --prompt intent \
        --labels "$(cat scripts/demo/banking77.labels.txt)" --guidelines scripts/demo/guidelines-intent.md
    $wick import --project "Banking intents" scripts/demo/banking77.jsonl
    $wick project create "Entities in tweets" --task ner \
        --labels person,location,corporation,product,creative-work,group \
        --guidelines scripts/demo/guidelines-ner.md
    $wick import --project "Entities in tweets" scripts/demo/wnut17.jsonl
    $wick project create "Instruction review" --task instruction
    $wick import --project "Instruction review" scripts/demo/instructions.jsonl
    $wick prelabel --project "Banking intents"
    $wick prelabel --project "Entities in tweets"
fi
echo "== open http://$addr/ and log in as admin (password: \$WICK_ADMIN_PASSWORD when $WICK_DB was created, by default wick-demo)" >&2
exec $wick serve --addr "$addr"
