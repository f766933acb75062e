#!/usr/bin/env python3
"""Derives a tokenizer.json seed that uses the options the GPT-2 style BPE from `tinygpt
tokenizer train` does not (docs/TOKENIZER.md, "Supported, and refused"): an NFC normaliser, a
Sequence of Split (Llama 3's regex), Digits and ByteLevel without its regex, ignore_merges, string
merges, added tokens with lstrip/rstrip/normalized, a Sequence decoder and a TemplateProcessing
post-processor.

Usage: tokenizer_variants.py IN_TOKENIZER_JSON OUT_TOKENIZER_JSON"""
import json
import sys

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def main(source, target):
    tok = json.load(open(source))
    vocab = tok["model"]["vocab"]
    next_id = max(max(vocab.values()), max(t["id"] for t in tok["added_tokens"])) + 1
    tok["added_tokens"] += [
        {"id": next_id, "content": "<|im_start|>", "single_word": False, "lstrip": True,
         "rstrip": True, "normalized": False, "special": True},
        {"id": next_id + 1, "content": "café", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": True, "special": False},
    ]
    tok["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
         "invert": False},
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]}
    tok["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [next_id],
                                             "tokens": ["<|im_start|>"]}},
    }
    tok["model"]["ignore_merges"] = True
    tok["model"]["merges"] = [" ".join(pair) if isinstance(pair, list) else pair
                              for pair in tok["model"]["merges"]]
    json.dump(tok, open(target, "w"), ensure_ascii=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
