#!/usr/bin/env python3
"""Training throughput of tinygpt next to PyTorch, measured side by side in one run.

For every configuration it runs `tinygpt bench-train --json` and the PyTorch peer
(bench/torch_train.py, Hugging Face-style loop-over-experts MoE) one after the other, and prints
median ms/step, tok/s and the ratios the targets are stated in. Two families: gpt, the configs
(a)-(f) of issue #2, and llama (`--arch llama`: RMSNorm, RoPE, GQA 8/2, SwiGLU, untied head; the
peer is bench/torch_llama.py, HF Llama / Mixtral / Qwen2-MoE), configs (g)-(l). Standard library
only; the peer runs under Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS.

    python3 bench/compare_train.py                 # the gpt configs (a)-(f)
    python3 bench/compare_train.py --family llama  # the llama configs (g)-(l)
    python3 bench/compare_train.py --only d,f,h    # a subset, of either family
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
# Llama family at d 256, GQA 8 heads / 2 kv heads, SwiGLU width 704 (tinygpt's default for d 256).
# (h) is Mixtral-style (full-width experts, renormalised gates); (i)-(l) use Qwen-style fine-grained
# experts of width 176 = 704/4 without renormalisation, (i) with a shared expert of width 704.
# (j) vs (k) changes K at fixed N, (l) vs (j) changes N at fixed K: MoE cost should follow K.
L256 = ["--arch", "llama", "--layers", "4", "--d-model", "256", "--heads", "8", "--kv-heads", "2",
        "--ctx", "256", "--batch", "8", "--d-mlp", "704"]
FINE = ["--moe-ffn", "176", "--moe-norm-topk", "off"]
CONFIGS += [
    ("g", "llama d256 L4 GQA 8/2 ctx256 B8 dense", L256, 1, 1, 8, 2),
    ("h", "llama, 8×704 top-2 (Mixtral)", L256 + ["--moe-norm-topk", "on"], 8, 2, 8, 2),
    ("i", "llama, 16×176 top-4 + shared 704 (Qwen2-MoE)", L256 + FINE + ["--moe-shared-ffn", "704"],
     16, 4, 8, 2),
    ("j", "llama, 16×176 top-4", L256 + FINE, 16, 4, 8, 2),
    ("k", "llama, 16×176 top-2", L256 + FINE, 16, 2, 8, 2),
    ("l", "llama, 64×176 top-4", L256 + FINE, 64, 4, 6, 2),
]


# Step-time ratios printed under the table: (a, b, what changes from b to a).
LLAMA_PAIRS = [
    ("l", "j", "64 vs 16 experts, both top-4: N ×4"),
    ("j", "k", "top-4 vs top-2, both 16 experts: K ×2"),
    ("i", "j", "shared expert 704 vs none"),
]


def family(shape):
    return "llama" if "llama" in shape else "gpt"


def step_ratio(results, a, b, what):
    """'(a) vs (b), what: tinygpt X / Y ms = R×, torch ...' from results[key] = (ours, peer)."""
    parts = []
    for i, who in enumerate(("tinygpt", "torch")):
        if results[a][i] and results[b][i]:
            ta, tb = results[a][i]["ms_per_step_median"], results[b][i]["ms_per_step_median"]
            parts.append(f"{who} {ta:.1f} / {tb:.1f} ms = {ta / tb:.2f}×")
    return f"({a}) vs ({b}), {what}: " + ", ".join(parts)


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
    ap.add_argument("--family", choices=["gpt", "llama", "all"], default="gpt",
                    help="gpt: configs a-f, llama: g-l (ignored with --only)")
    ap.add_argument("--only", default="", help="comma-separated config keys (a-l)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    ap.add_argument("--steps", type=int, help="timed steps for every config (default: per config)")
    ap.add_argument("--warmup", type=int, help="warm-up steps for every config (default: per config)")
    args = ap.parse_args()
    keys = set(args.only.split(",")) if args.only else None
    if keys and keys - {c[0] for c in CONFIGS}:
        sys.exit(f"unknown config(s): {', '.join(sorted(keys - {c[0] for c in CONFIGS}))}")
    rows, results = [], {}
    for key, desc, shape, experts, topk, steps, warmup in CONFIGS:
        if keys and key not in keys or not keys and args.family not in ("all", family(shape)):
            continue
        steps = args.steps or steps
        warmup = warmup if args.warmup is None else args.warmup
        ours = tinygpt(args.binary, shape, experts, topk, steps, warmup, args.threads)
        peer = None if args.no_torch else torch_peer(shape, experts, topk, steps, warmup, args.threads)
        results[key] = (ours, peer)
        if peer and peer["params_total"] != ours["params_total"]:
            print(f"warning: ({key}): params differ (tinygpt {ours['params_total']}, "
                  f"torch {peer['params_total']})", file=sys.stderr)
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
    print()
    for key, desc, ours, peer, dense in rows:
        if dense:
            print(f"(d) sparse vs --moe-dispatch dense: {dense['ms_per_step_median']:.1f} / "
                  f"{ours['ms_per_step_median']:.1f} ms = {dense['ms_per_step_median'] / ours['ms_per_step_median']:.2f}× faster")
    if "d" in results and "f" in results:
        d, f = results["d"][0]["ms_per_step_median"], results["f"][0]["ms_per_step_median"]
        print(f"(f) 64 experts vs (d) 8 experts, both top-2: {f:.1f} / {d:.1f} ms = {f / d:.2f}× the step time")
    for a, b, what in LLAMA_PAIRS:
        if a in results and b in results:
            print(step_ratio(results, a, b, what))
    if rows:
        print(f"sgemm peak {rows[0][2]['sgemm_peak_gflops']:.1f} GFLOP/s on {args.threads} threads · {rows[0][2]['blas']}")


if __name__ == "__main__":
    main()
