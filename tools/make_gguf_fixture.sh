#!/usr/bin/env bash
# Makes tests/data/gguf/: a small Mixtral-style model as an F32 GGUF written by tinygpt
# (moe_f32.gguf) and the same file quantised to Q8_0 by llama.cpp's own llama-quantize
# (moe_q8_0_llama_quantize.gguf). The test GgufQ8_0.SameBytesAsLlamaQuantize checks that tinygpt's
# Q8_0 export of the F32 file holds the same tensor types and the same bytes.
#   tools/make_gguf_fixture.sh [path/to/tinygpt] [path/to/llama-quantize]
# llama-quantize comes from bench/build_llama_cpp.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tinygpt="${1:-$root/build/tinygpt}"
quantize="${2:-$root/build-llama.cpp/build/bin/llama-quantize}"
out="$root/tests/data/gguf"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
"$tinygpt" train --arch llama --layers 1 --d-model 32 --heads 2 --kv-heads 1 --ctx 32 \
    --moe-experts 4 --moe-topk 2 --moe-ffn 64 --batch 2 --steps 3 --sample-tokens 0 \
    --seed 11 --out "$work/m.tinygpt" >/dev/null
"$tinygpt" convert "$work/m.tinygpt" --out "$out/moe_f32.gguf" --dtype f32
"$quantize" "$out/moe_f32.gguf" "$out/moe_q8_0_llama_quantize.gguf" Q8_0 >"$work/quantize.log" 2>&1 ||
    { cat "$work/quantize.log"; exit 1; }
ls -l "$out"
