#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/ from small models trained for two steps with a
# tinygpt binary (default build/tinygpt), plus a few files of tests/data. Every seed is a real
# file the tool writes or reads; the .tinygpt v1 file and the v2 fp16 (inference) layout, which
# the tool does not write, are derived from its v2 file by fuzz/original_variants.py, and a
# tokenizer with the options its trainer does not use by fuzz/tokenizer_variants.py. The
# *_legacy.tinygpt seeds (bf16/f16 v3 files from before per-tensor types, which the tool reads but
# no longer writes) are kept as they are.
# Usage: fuzz/make_corpus.sh [TINYGPT_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
tinygpt="$(realpath "${1:-build/tinygpt}")"
corpus=fuzz/corpus
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Small shapes: the seeds stay a few KB to ~100 KB, and each execution stays fast.
gpt_shape=(--layers 1 --d-model 8 --heads 2 --d-mlp 16 --ctx 16)
llama_shape=(--arch llama --layers 2 --d-model 8 --heads 2 --kv-heads 1 --d-mlp 12 --ctx 16)
head -c 20000 data/shakespeare.txt >"$work/corpus.txt"
train() {  # train OUT [flags...]: two steps, quiet
    local out="$1"
    shift
    OMP_NUM_THREADS=1 "$tinygpt" train --corpus "$work/corpus.txt" --steps 2 --batch 2 \
        --sample-every 0 --sample-tokens 0 --out "$out" "$@" >/dev/null
}
"$tinygpt" tokenizer train --corpus "$work/corpus.txt" --vocab 300 --special "<|endoftext|>" \
    --out "$work/bpe.json" >/dev/null

train "$work/gpt_dense.tinygpt" "${gpt_shape[@]}"
train "$work/gpt_moe.tinygpt" "${gpt_shape[@]}" --moe-experts 2 --moe-topk 2
train "$work/gpt_dense_v2.tinygpt" "${gpt_shape[@]}" --format v2
train "$work/gpt_moe_v2.tinygpt" "${gpt_shape[@]}" --moe-experts 2 --moe-topk 1 --format v2
# The Llama family without the AdamW moments (gpt_dense and gpt_moe have them): smaller seeds.
train_inference() {  # train_inference OUT [flags...]
    local out="$1"
    shift
    train "$work/with-optimizer.tinygpt" "$@"
    "$tinygpt" convert "$work/with-optimizer.tinygpt" "$out" --no-optimizer >/dev/null
    rm "$work/with-optimizer.tinygpt"
}
train_inference "$work/llama_moe_bpe.tinygpt" "${llama_shape[@]}" --moe-experts 2 --moe-topk 1 \
    --moe-dense-first 1 --moe-norm-topk on --qk-norm --tokenizer "$work/bpe.json"
train_inference "$work/llama_moe_shared.tinygpt" "${llama_shape[@]}" --moe-experts 2 --moe-topk 2 \
    --moe-shared-ffn 8 --moe-norm-topk off --qkv-bias
train_inference "$work/llama_dense.tinygpt" "${llama_shape[@]}" --qkv-bias --tie-embeddings
"$tinygpt" convert "$work/llama_moe_bpe.tinygpt" "$work/llama_moe_bpe_bf16.tinygpt" --dtype bf16 \
    --no-optimizer >/dev/null
"$tinygpt" convert "$work/gpt_moe.tinygpt" "$work/gpt_moe_f16.tinygpt" --dtype f16 --no-optimizer >/dev/null
# A q8_0 copy (rows of 32: d_model 32 and expert width 32 in q8_0, the dense block's d_mlp 48 in f16).
train "$work/q8_source.tinygpt" --arch llama --layers 2 --d-model 32 --heads 2 --kv-heads 1 --d-mlp 48 \
    --ctx 16 --moe-experts 2 --moe-topk 2 --moe-dense-first 1 --moe-norm-topk on --moe-ffn 32
"$tinygpt" convert "$work/q8_source.tinygpt" "$work/llama_moe_q8_0.tinygpt" --dtype q8_0 >/dev/null
rm "$work/q8_source.tinygpt"
python3 fuzz/original_variants.py "$work/gpt_dense_v2.tinygpt" "$work/gpt_dense_v1.tinygpt" \
    "$work/gpt_dense_v2_fp16.tinygpt"

mkdir -p "$work/legacy"
for f in "$corpus"/model_file*/*_legacy.tinygpt; do
    if [ -e "$f" ]; then
        keep="$work/legacy/$(basename "$(dirname "$f")")"
        mkdir -p "$keep" && cp "$f" "$keep/"
    fi
done
rm -rf "$corpus"
mkdir -p "$corpus"/{model_file,model_file_v3,hf_model,tokenizer,gguf}
cp -r "$work/legacy"/. "$corpus"/
for f in "$work"/*.tinygpt; do
    cp "$f" "$corpus/model_file/"
    if [ "$(head -c 8 "$f" | od -An -tu4 -j4)" -eq 3 ]; then cp "$f" "$corpus/model_file_v3/"; fi
done

separator=$'\n#--tinygpt-fuzz-part--#\n'  # fuzz_support.h: kPartSeparator
# (the GPT family's MoE block exists in neither format)
for model in gpt_dense llama_moe_bpe llama_moe_shared llama_dense; do
    "$tinygpt" convert "$work/$model.tinygpt" --to hf --out "$work/$model-hf/" >/dev/null
    { cat "$work/$model-hf/config.json"; printf '%s' "$separator"; cat "$work/$model-hf/model.safetensors"; } \
        >"$corpus/hf_model/$model"
    "$tinygpt" convert "$work/$model.tinygpt" --out "$work/$model.gguf" >/dev/null
    "$tinygpt" convert "$work/$model.tinygpt" --out "$work/${model}_q8_0.gguf" --dtype q8_0 >/dev/null
    cp "$work/$model.gguf" "$work/${model}_q8_0.gguf" "$corpus/gguf/"
done
sharded=tests/data/hf/llama_bias_bf16_sharded
{
    cat "$sharded/config.json"
    printf '%s' "$separator"
    cat "$sharded/model-00001-of-00002.safetensors"
    printf '%s' "$separator"
    cat "$sharded/model.safetensors.index.json"
    printf '%s' "$separator"
    cat "$sharded/model-00002-of-00002.safetensors"
} >"$corpus/hf_model/llama_bias_bf16_sharded"
cp tests/data/gguf/moe_q8_0_llama_quantize.gguf "$corpus/gguf/"

text='ROMEO: But soft! what light through yonder window breaks? <|endoftext|> 123 ça'
{ cat "$work/bpe.json"; printf '%s' "$separator"; printf '%s' "$separator$text"; } >"$corpus/tokenizer/bpe_gpt2"
{ cat tests/data/hf/gpt2_f32/tokenizer.json; printf '%s' "$separator"; cat tests/data/hf/gpt2_f32/tokenizer_config.json
  printf '%s' "$separator$text"; } >"$corpus/tokenizer/hf_gpt2_test"
for model in gpt_dense llama_moe_bpe; do
    cp "$work/$model-hf/tokenizer.json" "$corpus/tokenizer/$model"
done
python3 fuzz/tokenizer_variants.py "$work/bpe.json" "$work/bpe_llama3_nfc.json"
{ cat "$work/bpe_llama3_nfc.json"; printf '%s' "$separator"; printf '%s' "$separator<|im_start|> café 12345 $text"; } \
    >"$corpus/tokenizer/bpe_llama3_nfc"
du -sh "$corpus"/*
