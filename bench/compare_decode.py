#!/usr/bin/env python3
"""Inference (greedy decoding) speed of tinygpt next to PyTorch, measured side by side in one run.

For every configuration it makes a model file with `tinygpt train --steps 1` (weights + optimizer
state; the values do not matter for speed), runs `tinygpt bench FILE --json` and the PyTorch peer
(bench/torch_decode.py: same model, float32, KV cache, Hugging Face Mixtral-style MoE) with the
same shape and workload one after the other, and prints a markdown table plus the per-token decode
time of 64 experts over 8 experts (both top-2) for tinygpt. Standard library only; the peer runs
under Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS.

    python3 bench/compare_decode.py                    # dense, moe8, moe64
    python3 bench/compare_decode.py --only moe8,moe64  # a subset
    python3 bench/compare_decode.py --no-torch         # tinygpt only
"""
import argparse
import os
import subprocess
import sys
import tempfile

from peer_run import ROOT, run_json, run_torch_peer

SHAPE = ["--layers", "4", "--d-model", "256", "--heads", "8", "--ctx", "256", "--d-mlp", "1024"]
WORKLOAD = ["--prompt-tokens", "64", "--gen-tokens", "128", "--runs", "5", "--warmup", "1"]
CONFIGS = [
    # name, description, experts, topk
    ("dense", "d256 L4 ctx256 dense", 1, 1),
    ("moe8", "d256, 8 experts top-2", 8, 2),
    ("moe64", "d256, 64 experts top-2", 64, 2),
]




def make_model(binary, experts, topk, path):
    cmd = [binary, "train", *SHAPE, "--moe-experts", str(experts), "--moe-topk", str(topk),
           "--batch", "1", "--steps", "1", "--sample-tokens", "0", "--out", path]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)


def tinygpt(binary, path, threads):
    return run_json([binary, "bench", path, *WORKLOAD, "--threads", str(threads), "--json"])


def torch_peer(experts, topk, threads):
    return run_torch_peer("torch_decode.py", [*SHAPE, "--experts", str(experts), "--topk", str(topk),
           *WORKLOAD, "--threads", str(threads), "--json"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--only", default="", help="comma-separated config names (dense,moe8,moe64)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    args = ap.parse_args()
    names = set(args.only.split(",")) if args.only else None
    if names and names - {c[0] for c in CONFIGS}:
        sys.exit(f"unknown config(s): {', '.join(sorted(names - {c[0] for c in CONFIGS}))}")
    binary = os.path.abspath(args.binary)
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="tinygpt-decode-") as tmp:
        for name, desc, experts, topk in CONFIGS:
            if names and name not in names:
                continue
            path = os.path.join(tmp, name + ".tinygpt")
            make_model(binary, experts, topk, path)
            ours = tinygpt(binary, path, args.threads)
            os.remove(path)
            results[name] = ours
            peer = None if args.no_torch else torch_peer(experts, topk, args.threads)
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
    if "moe8" in results and "moe64" in results:
        t8 = 1e3 / results["moe8"]["decode_tok_per_s"]
        t64 = 1e3 / results["moe64"]["decode_tok_per_s"]
        print(f"\ntinygpt per-token decode, 64 vs 8 experts (both top-2): {t64:.3f} / {t8:.3f} ms = {t64 / t8:.2f}×")
    if rows:
        print(f"{args.threads} threads · workload {' '.join(WORKLOAD)} · {rows[0][2].get('blas', '')}")


if __name__ == "__main__":
    main()
