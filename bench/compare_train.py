#!/usr/bin/env python3
"""Training throughput of tinygpt next to PyTorch, measured side by side in one run.

For every configuration of issue #2 it runs `tinygpt bench-train --json` and the PyTorch peer
(bench/torch_train.py, Hugging Face-style loop-over-experts MoE) one after the other, and prints
median ms/step, tok/s and the ratios the targets are stated in. Standard library only; the peer
runs under Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS.

    python3 bench/compare_train.py                 # all configs
    python3 bench/compare_train.py --only d,f      # a subset
"""
import argparse
import os
import sys

from peer_run import ROOT, run_json, run_torch_peer

D256 = ["--layers", "4", "--d-model", "256", "--heads", "8", "--ctx", "256", "--batch", "8", "--d-mlp", "1024"]
TINY = ["--layers", "4", "--d-model", "128", "--heads", "4", "--ctx", "128", "--batch", "16", "--d-mlp", "512"]
CONFIGS = [
    # key, description, shape flags, experts, topk, timed steps, warm-up steps
    ("a", "tiny dense", TINY, 1, 1, 20, 3),
    ("b", "tiny, 4 experts top-2", TINY, 4, 2, 20, 3),
    ("c", "d256 L4 ctx256 B8 dense", D256, 1, 1, 8, 2),
    ("d", "d256, 8 experts top-2", D256, 8, 2, 8, 2),
    ("e", "d256, 8 experts top-1", D256, 8, 1, 8, 2),
    ("f", "d256, 64 experts top-2", D256, 64, 2, 6, 2),
]




def tinygpt(binary, shape, experts, topk, steps, warmup, threads, dispatch="sparse"):
    cmd = [binary, "bench-train", *shape, "--moe-experts", str(experts), "--moe-topk", str(topk),
           "--moe-dispatch", dispatch, "--steps", str(steps), "--warmup", str(warmup),
           "--threads", str(threads), "--max-lr", "3e-4", "--lr-schedule", "constant", "--json"]
    return run_json(cmd)


def torch_peer(shape, experts, topk, steps, warmup, threads):
    return run_torch_peer("torch_train.py", [*shape, "--experts", str(experts), "--topk", str(topk),
           "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads), "--json"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--only", default="", help="comma-separated config keys (a-f)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    args = ap.parse_args()
    keys = set(args.only.split(",")) if args.only else None
    rows, results = [], {}
    for key, desc, shape, experts, topk, steps, warmup in CONFIGS:
        if keys and key not in keys:
            continue
        ours = tinygpt(args.binary, shape, experts, topk, steps, warmup, args.threads)
        results[key] = ours
        peer = None if args.no_torch else torch_peer(shape, experts, topk, steps, warmup, args.threads)
        dense = None
        if key == "d":
            dense = tinygpt(args.binary, shape, experts, topk, steps, warmup, args.threads, "dense")
        rows.append((key, desc, ours, peer, dense))
        print(f"[{key}] {desc}: tinygpt {ours['ms_per_step_median']:.1f} ms/step"
              + (f", torch {peer['ms_per_step_median']:.1f} ms/step" if peer else "")
              + (f", dense dispatch {dense['ms_per_step_median']:.1f} ms/step" if dense else ""),
              file=sys.stderr, flush=True)

    print("| config | params (active) | tinygpt ms/step | tinygpt tok/s | MFU | torch ms/step | torch tok/s | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, desc, ours, peer, dense in rows:
        params = f"{ours['params_total'] / 1e6:.2f} M ({ours['params_active'] / 1e6:.2f} M)"
        torch_cols = (f"{peer['ms_per_step_median']:.1f} | {peer['tok_per_s']:.0f} | "
                      f"{ours['tok_per_s'] / peer['tok_per_s']:.2f}×") if peer else "— | — | —"
        print(f"| ({key}) {desc} | {params} | {ours['ms_per_step_median']:.1f} | {ours['tok_per_s']:.0f} "
              f"| {100 * ours['mfu']:.0f}% | {torch_cols} |")
    for key, desc, ours, peer, dense in rows:
        if dense:
            print(f"\n(d) sparse vs --moe-dispatch dense: {dense['ms_per_step_median']:.1f} / "
                  f"{ours['ms_per_step_median']:.1f} ms = {dense['ms_per_step_median'] / ours['ms_per_step_median']:.2f}× faster")
    if "d" in results and "f" in results:
        d, f = results["d"]["ms_per_step_median"], results["f"]["ms_per_step_median"]
        print(f"(f) 64 experts vs (d) 8 experts, both top-2: {f:.1f} / {d:.1f} ms = {f / d:.2f}× the step time")
    if rows:
        print(f"sgemm peak {rows[0][2]['sgemm_peak_gflops']:.1f} GFLOP/s on {args.threads} threads · {rows[0][2]['blas']}")


if __name__ == "__main__":
    main()
