#!/usr/bin/env bash
# Build llama.cpp (CPU only) as a benchmark peer for Wick.
#
# The llama.cpp source is taken from the llama-cpp-python sdist on PyPI
# (its vendor/llama.cpp folder), so only package registries are needed.
# Outputs land in target/llama.cpp/bin/ (git-ignored):
#   llama-bench, llama-tokenize, llama-server (+ llama-simple, llama-completion if available)
# llama-server is the OpenAI-compatible peer the remote-inference tests run against.
#
# Usage: scripts/build-llamacpp.sh [TARGET...]   (idempotent; FORCE=1 to rebuild)
#   With targets (say llama-server, as scripts/test.sh asks), only those are built.
#   JOBS=N   parallel build jobs (default 2)
set -euo pipefail

LLAMA_CPP_PY_VERSION="0.3.36"   # pinned llama-cpp-python sdist version
JOBS="${JOBS:-2}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$ROOT/target/llama.cpp"
SRC_DIR="$BASE/src"
BUILD_DIR="$BASE/build"
BIN_DIR="$BASE/bin"
VENV="$BASE/venv"

WANT=("$@")
OPTIONAL=0
if [[ ${#WANT[@]} -eq 0 ]]; then WANT=(llama-bench llama-tokenize llama-server); OPTIONAL=1; fi
MISSING=()
for t in "${WANT[@]}"; do
    if [[ "${FORCE:-0}" == "1" || ! -x "$BIN_DIR/$t" ]]; then MISSING+=("$t"); fi
done
if [[ ${#MISSING[@]} -eq 0 ]]; then
    echo "llama.cpp already built: ${WANT[*]} in $BIN_DIR"
    exit 0
fi

mkdir -p "$SRC_DIR" "$BIN_DIR"

die() { echo "error: $*" >&2; exit 1; }

# 1. cmake: use the one on PATH, else pip-install it into a venv under target/.
if command -v cmake >/dev/null 2>&1; then
    CMAKE="$(command -v cmake)"
elif [[ -x "$VENV/bin/cmake" ]]; then
    CMAKE="$VENV/bin/cmake"
else
    echo "==> cmake not found; installing it with pip into $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv?)"
    if ! "$VENV/bin/python" -m pip install --quiet cmake; then
        die "pip could not install cmake; is PyPI reachable? (alternative: apt-get install -y cmake)"
    fi
    CMAKE="$VENV/bin/cmake"
fi
echo "==> using $("$CMAKE" --version | head -n1) ($CMAKE)"

# 2. Fetch and unpack the llama-cpp-python sdist.
SDIST="$SRC_DIR/llama_cpp_python-$LLAMA_CPP_PY_VERSION.tar.gz"
UNPACKED="$SRC_DIR/llama_cpp_python-$LLAMA_CPP_PY_VERSION"
if [[ ! -f "$SDIST" ]]; then
    echo "==> downloading llama-cpp-python==$LLAMA_CPP_PY_VERSION sdist from PyPI"
    # --no-binary only for llama-cpp-python itself: with ":all:" pip would also
    # build its build-backend deps (scikit-build-core, cmake, ...) from source
    # while preparing metadata, which takes >10 minutes on 2 cores.
    if ! python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
            "llama-cpp-python==$LLAMA_CPP_PY_VERSION" -d "$SRC_DIR"; then
        die "pip could not download llama-cpp-python==$LLAMA_CPP_PY_VERSION; is PyPI reachable?"
    fi
    # Tolerate the older dashed file name.
    if [[ ! -f "$SDIST" && -f "$SRC_DIR/llama-cpp-python-$LLAMA_CPP_PY_VERSION.tar.gz" ]]; then
        mv "$SRC_DIR/llama-cpp-python-$LLAMA_CPP_PY_VERSION.tar.gz" "$SDIST"
    fi
    [[ -f "$SDIST" ]] || die "sdist not found in $SRC_DIR after download"
fi
if [[ ! -d "$UNPACKED/vendor/llama.cpp" ]]; then
    echo "==> unpacking $SDIST"
    rm -rf "$UNPACKED"
    tar -xzf "$SDIST" -C "$SRC_DIR"
    if [[ ! -d "$UNPACKED" ]]; then
        # Top-level folder may use the dashed name.
        mv "$SRC_DIR/llama-cpp-python-$LLAMA_CPP_PY_VERSION" "$UNPACKED"
    fi
fi
LLAMA_SRC="$UNPACKED/vendor/llama.cpp"
[[ -f "$LLAMA_SRC/CMakeLists.txt" ]] || die "no llama.cpp sources at $LLAMA_SRC"

# 3. Configure and build (Release, CPU only, no curl).
echo "==> configuring llama.cpp in $BUILD_DIR"
"$CMAKE" -S "$LLAMA_SRC" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENCL=OFF \
    -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON

# Required targets, plus optional ones when this llama.cpp version has them
# (llama-cli is only defined together with the server in recent versions;
# llama-completion is the plain text-completion CLI).
TARGETS=("${MISSING[@]}")
if [[ $OPTIONAL == 1 ]]; then
    AVAILABLE="$("$CMAKE" --build "$BUILD_DIR" --target help 2>/dev/null || true)"
    for t in llama-simple llama-completion llama-cli; do
        if grep -qE "(^|[ .:])$t\$" <<<"$AVAILABLE"; then TARGETS+=("$t"); fi
    done
fi
echo "==> building ${TARGETS[*]} with -j$JOBS"
start=$(date +%s)
"$CMAKE" --build "$BUILD_DIR" --config Release -j "$JOBS" --target "${TARGETS[@]}"
echo "==> build took $(( $(date +%s) - start ))s"

for t in "${TARGETS[@]}"; do
    f="$BUILD_DIR/bin/$t"
    [[ -x "$f" ]] || die "expected binary missing: $f"
    cp -f "$f" "$BIN_DIR/"
done
echo "==> binaries in $BIN_DIR:"
ls -l "$BIN_DIR"
