#!/usr/bin/env python3
"""Step time and scaling efficiency of data- and expert-parallel training on many machines, on
paper (docs/SCALING.md explains the model and its assumptions).

Inputs are what bench/compare_ranks.py measured on this machine: the training FLOP rate of one
rank and the bytes each rank sent per step, which the byte model below must reproduce for 2 ranks
before it is trusted for 8 and 64. Standard library only.

    python3 bench/compare_ranks.py --json ranks.json
    python3 bench/project_scaling.py ranks.json
    python3 bench/project_scaling.py --gflops 300      # no measurements: a given FLOP rate
"""
import argparse
import json
import math

# (name, d_model, layers, heads, kv_heads, experts, expert width, top-k, vocab, ctx)
MODELS = [
    ("0.18B MoE (issue #10 shape: d512 L8 GQA 8/2, 8×1408 top-2, 32k vocab)", 512, 8, 8, 2, 8, 1408, 2, 32000, 512),
    ("2B MoE (d2048 L24, 16×768 top-2)", 2048, 24, 16, 4, 16, 768, 2, 32000, 2048),
]
BYTES = 4  # f32 gradients and activations


def params(m):
    _, C, L, H, KVH, E, F, K, V, _ = m
    hd = C // H
    attn = C * (H * hd) * 2 + C * (KVH * hd) * 2
    expert = 3 * C * F  # SwiGLU gate, up, down
    replicated = L * (attn + C * E + 2 * C) + 2 * V * C + C  # attention, router, norms, emb+head
    return replicated, L * E * expert, L * K * expert  # replicated, all experts, active experts


def flops_per_token(m):
    _, C, L, H, KVH, E, F, K, V, T = m
    rep, _, active = params(m)
    # 6 per matrix parameter a token touches (forward + backward), causal attention products.
    return 6 * (rep - V * C + active) + 6 * L * T * C


def step_time(m, ranks, P, tokens_per_rank, gflops, gbit, latency, overlap):
    """Seconds per step: compute, and communication not hidden behind it."""
    C, L, K = m[1], m[2], m[7]
    rep, experts, _ = params(m)
    compute = flops_per_token(m) * tokens_per_rank / (gflops * 1e9)
    bw = gbit * 1e9 / 8
    dp = ranks // P
    # Ring allreduce: 2(n-1)/n of the buffer leaves each rank, in 2(n-1) steps.
    def allreduce(nbytes, n):
        return 0.0 if n <= 1 else 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * latency
    grad = allreduce(rep * BYTES, ranks) + allreduce(experts / P * BYTES, dp)
    # Expert parallelism: 4 all-to-alls per MoE layer (rows out and back, forward and backward);
    # a rank keeps 1/P of its K rows per token (uniform routing).
    rows_out = tokens_per_rank * K * (P - 1) / P
    a2a = 0.0 if P <= 1 else L * 4 * (rows_out * C * BYTES / bw + (P - 1) * latency)
    # The gradient sum can overlap the backward (bucketed); the all-to-alls sit between layers.
    exposed = max(0.0, grad - overlap * compute) + a2a
    return compute, grad, a2a, compute + exposed


def crossover_gflops(m, ranks, P, tokens, gbit, latency, overlap):
    """The machine speed at which the exposed communication equals the compute."""
    lo, hi = 1.0, 1e7
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        c, _, _, total = step_time(m, ranks, P, tokens, mid, gbit, latency, overlap)
        if total - c < c:
            lo = mid
        else:
            hi = mid
    return lo


def measured_rate(path):
    with open(path) as f:
        data = json.load(f)
    rates, rows = [], []
    for key, runs in data.items():
        one = runs["one"]
        rates += [r["model_gflops_per_s"] for r in one]  # the whole machine (2 threads)
        for mode in ("dp", "ep"):
            for r in runs.get(mode, []):
                rows.append((key, mode, r["mpi_bytes_per_step_per_rank"], r["mpi_ms_per_step"],
                             r["ms_per_step_median"], r["config"]))
    rates.sort()
    return rates[len(rates) // 2], rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("measurements", nargs="?", help="bench/compare_ranks.py --json output")
    ap.add_argument("--gflops", type=float, help="training GFLOP/s of one machine")
    ap.add_argument("--tokens", type=int, default=8192, help="tokens per rank per step")
    ap.add_argument("--latency-us", type=float, default=20.0, help="per-message latency")
    ap.add_argument("--overlap", type=float, default=0.5,
                    help="share of the compute time the gradient sum can hide behind")
    args = ap.parse_args()
    gflops = args.gflops
    if args.measurements:
        rate, rows = measured_rate(args.measurements)
        gflops = gflops or rate
        print(f"measured: {rate:.1f} GFLOP/s of training on this machine (1 rank × 2 threads)")
        for key, mode, nbytes, mpi_ms, ms, cfg in rows:
            print(f"  {key} {mode}: {nbytes / 1e6:.2f} MB sent per rank per step, MPI {mpi_ms:.1f} of"
                  f" {ms:.1f} ms")
    if not gflops:
        ap.error("give the measurements or --gflops")
    lat = args.latency_us * 1e-6
    print(f"\nprojection: {gflops:.0f} GFLOP/s per machine, {args.tokens} tokens per machine per "
          f"step, latency {args.latency_us:.0f} µs, gradient overlap {args.overlap:.0%}")
    print("| model | machines | link | parallelism | compute ms | grad sum ms | all-to-all ms | "
          "step ms | efficiency | communication = compute at |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for m in MODELS:
        rep, experts, active = params(m)
        print(f"| {m[0]}: {(rep + experts) / 1e9:.2f} B parameters, {(rep + active) / 1e6:.0f} M "
              f"active per token | | | | | | | | | |")
        for ranks in (8, 64):
            for gbit in (25, 100):
                for P in (1, min(8, m[5])):
                    c, g, a, total = step_time(m, ranks, P, args.tokens, gflops, gbit, lat,
                                               args.overlap)
                    kind = "data" if P == 1 else f"data {ranks // P} × expert {P}"
                    x = crossover_gflops(m, ranks, P, args.tokens, gbit, lat, args.overlap)
                    print(f"| {m[0]} | {ranks} | {gbit} Gb/s | {kind} | {c * 1e3:.0f} | "
                          f"{g * 1e3:.0f} | {a * 1e3:.0f} | {total * 1e3:.0f} | {c / total:.0%} | "
                          f"{x / 1e3:.1f} TFLOP/s |")


if __name__ == "__main__":
    main()
