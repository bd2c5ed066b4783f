#!/usr/bin/env bash
# Sets everything up and runs every test: fetches the embedded model, checks formatting and
# lints, and runs the unit and integration tests (real model, real files) in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
# The browser tests (tests/ui/) drive Debian's headless Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update && $sudo apt-get install -y --no-install-recommends chromium chromium-driver
fi
scripts/fetch-model.sh
# The remote-inference tests (tests/it/remote.rs) run against llama.cpp's llama-server.
scripts/build-llamacpp.sh llama-server
# The export tests load every JSONL export with Hugging Face `datasets`, as trainers do, and the
# spacy export with spaCy itself (Doc.char_span).
if ! target/pyenv/bin/python -c "import datasets, spacy" 2>/dev/null; then
  python3 -m venv target/pyenv && target/pyenv/bin/pip install --quiet "datasets==5.2.0" "spacy==3.8.11"
fi
cargo fmt --check
# The span offset module of the annotation page (UTF-16 <-> code points); the browser test covers the rest.
node static/spans.test.js
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked
