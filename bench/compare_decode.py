#!/usr/bin/env python3
"""Inference (greedy decoding) speed of tinygpt next to PyTorch, measured side by side in one run.

For every configuration it makes a model file with `tinygpt train --steps 1` (weights + optimizer
state; the values do not matter for speed), runs `tinygpt bench FILE --json` and the PyTorch peer
(bench/torch_decode.py: same model, float32, KV cache, Hugging Face Mixtral-style MoE) with the
same shape and workload one after the other, and prints a markdown table plus the per-token decode
time of 64 experts over 8 experts (both top-2) for tinygpt. Two families: gpt (dense, moe8, moe64)
and llama (`--arch llama`, GQA 8/2, SwiGLU width 704; the peer runs bench/torch_llama.py, HF
Llama / Mixtral / Qwen2-MoE with a KV cache of the 2 kv heads). Standard library only; the peer
runs under Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS.

    python3 bench/compare_decode.py                    # dense, moe8, moe64
    python3 bench/compare_decode.py --family llama     # llama, llama-moe8, llama-moe16s
    python3 bench/compare_decode.py --only moe8,moe64  # a subset, of either family
    python3 bench/compare_decode.py --no-torch         # tinygpt only
"""
import argparse
import os
import sys
import tempfile

from peer_run import ROOT, run, run_json, run_torch_peer

SHAPE = ["--layers", "4", "--d-model", "256", "--heads", "8", "--ctx", "256", "--d-mlp", "1024"]
# Llama family: GQA 8 heads / 2 kv heads, SwiGLU width 704 (tinygpt's default for d 256).
LLAMA = ["--arch", "llama", "--layers", "4", "--d-model", "256", "--heads", "8", "--kv-heads", "2",
         "--ctx", "256", "--d-mlp", "704"]
CONFIGS = [
    # name, description, model flags (the same on both sides), experts, topk
    ("dense", "d256 L4 ctx256 dense", SHAPE, 1, 1),
    ("moe8", "d256, 8 experts top-2", SHAPE, 8, 2),
    ("moe64", "d256, 64 experts top-2", SHAPE, 64, 2),
    ("llama", "llama d256 L4 GQA 8/2 ctx256 dense", LLAMA, 1, 1),
    ("llama-moe8", "llama, 8×704 top-2 (Mixtral)", LLAMA + ["--moe-norm-topk", "on"], 8, 2),
    ("llama-moe16s", "llama, 16×176 top-4 + shared 704 (Qwen2-MoE)",
     LLAMA + ["--moe-ffn", "176", "--moe-shared-ffn", "704", "--moe-norm-topk", "off"], 16, 4),
]


def family(shape):
    return "llama" if "llama" in shape else "gpt"


def make_model(binary, shape, experts, topk, path):
    cmd = [binary, "train", *shape, "--moe-experts", str(experts), "--moe-topk", str(topk),
           "--batch", "1", "--steps", "1", "--sample-tokens", "0", "--out", path]
    run(cmd)


def tinygpt(binary, path, workload, threads):
    return run_json([binary, "bench", path, *workload, "--threads", str(threads), "--json"])


def torch_peer(shape, experts, topk, workload, threads):
    return run_torch_peer("torch_decode.py", [*shape, "--experts", str(experts), "--topk", str(topk),
           *workload, "--threads", str(threads), "--json"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--family", choices=["gpt", "llama", "all"], default="gpt",
                    help="gpt: dense, moe8, moe64; llama: llama, llama-moe8, llama-moe16s "
                         "(ignored with --only)")
    ap.add_argument("--only", default="", help="comma-separated config names (any family)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per config")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    args = ap.parse_args()
    workload = ["--prompt-tokens", "64", "--gen-tokens", "128", "--runs", str(args.runs),
                "--warmup", str(args.warmup)]
    names = set(args.only.split(",")) if args.only else None
    if names and names - {c[0] for c in CONFIGS}:
        sys.exit(f"unknown config(s): {', '.join(sorted(names - {c[0] for c in CONFIGS}))}")
    binary = os.path.abspath(args.binary)
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="tinygpt-decode-") as tmp:
        for name, desc, shape, experts, topk in CONFIGS:
            if names and name not in names or not names and args.family not in ("all", family(shape)):
                continue
            path = os.path.join(tmp, name + ".tinygpt")
            make_model(binary, shape, experts, topk, path)
            ours = tinygpt(binary, path, workload, args.threads)
            os.remove(path)
            results[name] = ours
            peer = None if args.no_torch else torch_peer(shape, experts, topk, workload, args.threads)
            rows.append((name, desc, ours, peer))
            print(f"[{name}] {desc}: tinygpt {ours['decode_tok_per_s']:.0f} tok/s"
                  + (f", torch {peer['decode_tok_per_s']:.0f} tok/s" if peer else ""),
                  file=sys.stderr, flush=True)

    print("| config | params total | tinygpt decode tok/s | torch decode tok/s | ratio | tinygpt TTFT ms "
          "| torch TTFT ms | tinygpt load ms | tinygpt peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, desc, ours, peer in rows:
        if peer and peer["params_total"] != ours["params_total"]:
            print(f"warning: {name}: params differ (tinygpt {ours['params_total']}, torch {peer['params_total']})",
                  file=sys.stderr)
        torch_cols = (f"{peer['decode_tok_per_s']:.0f} | {ours['decode_tok_per_s'] / peer['decode_tok_per_s']:.2f}×"
                      if peer else "— | —")
        torch_ttft = f"{peer['ttft_ms']:.2f}" if peer else "—"
        print(f"| ({name}) {desc} | {ours['params_total']:,} | {ours['decode_tok_per_s']:.0f} | {torch_cols} "
              f"| {ours['ttft_ms']:.2f} | {torch_ttft} | {ours['load_ms']:.1f} | {ours['peak_rss_mb']:.0f} |")
    print()
    if "moe8" in results and "moe64" in results:
        t8 = 1e3 / results["moe8"]["decode_tok_per_s"]
        t64 = 1e3 / results["moe64"]["decode_tok_per_s"]
        print(f"tinygpt per-token decode, 64 vs 8 experts (both top-2): {t64:.3f} / {t8:.3f} ms = {t64 / t8:.2f}×")
    if rows:
        print(f"{args.threads} threads · workload {' '.join(workload)} · {rows[0][2].get('blas', '')}")


if __name__ == "__main__":
    main()
