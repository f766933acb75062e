#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-quantize from the exact source that node-llama-cpp
# bundles (tools/llama-reference, the version the GGUF tests run), for the side-by-side
# benchmarks in BENCHMARKS.md and the Q8_0 byte check (bench/check_q8_0_against_llama_quantize.sh).
# Offline; about 10 minutes on 2 cores, once.
#   bench/build_llama_cpp.sh [DIR]   (default: build-llama.cpp/ in the repository; git-ignored)
# Prints the directory holding the binaries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/build-llama.cpp}"
bundle="$root/tools/llama-reference/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [ ! -f "$bundle" ]; then
    echo "build_llama_cpp: $bundle not found; run scripts/install-deps.sh (npm ci of tools/llama-reference)" >&2
    exit 1
fi
mkdir -p "$dir"
if [ ! -d "$dir/src/.git" ]; then
    rm -rf "$dir/src"
    git clone --quiet "$bundle" "$dir/src"
fi
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON >/dev/null
cmake --build "$dir/build" -j"$(nproc)" --target llama-bench llama-quantize >/dev/null
echo "$dir/build/bin"
