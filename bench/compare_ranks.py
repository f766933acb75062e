#!/usr/bin/env python3
"""Distributed training on one machine: 2 ranks × 1 thread (mpirun) against 1 rank × 2 threads,
measured side by side in one run (issue #13). Needs a build with -DTINYGPT_MPI=ON.

For every configuration, repeated and interleaved (the machine is noisy: medians of medians):
  one   tinygpt bench-train --threads 2 --accum 2              (one process, 2 micro-batches)
  dp    mpirun -np 2 tinygpt bench-train --threads 1 --accum 1 (data parallel: the same batches)
  ep    mpirun -np 2 ... --expert-parallel 2                   (experts split over the 2 ranks)
All three take the same tokens per step. Prints ms/step, tok/s, the ratio to `one`, the time
spent in MPI and the bytes each rank sends per step; --json writes the numbers for
docs/SCALING.md's projection (bench/project_scaling.py).

    python3 bench/compare_ranks.py                  # d256 and d512 MoE, 3 rounds
    python3 bench/compare_ranks.py --only d256 --rounds 1 --no-ep
"""
import argparse
import json
import os
import shutil
import statistics
import sys

from peer_run import ROOT, run_json

D256 = ["--layers", "4", "--d-model", "256", "--heads", "8", "--ctx", "256", "--batch", "8",
        "--d-mlp", "1024", "--moe-experts", "8", "--moe-topk", "2"]
D512 = ["--layers", "4", "--d-model", "512", "--heads", "8", "--ctx", "256", "--batch", "4",
        "--d-mlp", "2048", "--moe-experts", "8", "--moe-topk", "2"]
CONFIGS = {"d256": (D256, 6, 2), "d512": (D512, 4, 2)}  # shape, timed steps, warm-up steps


def mpirun_prefix(ranks):
    mpirun = shutil.which("mpirun")
    if not mpirun:
        sys.exit("mpirun not found (Debian: openmpi-bin)")
    flags = [mpirun, "--oversubscribe", "-np", str(ranks)]
    if os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    return flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data", "shakespeare.txt"))
    ap.add_argument("--only", default="", help="comma-separated configs (d256,d512)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-ep", action="store_true", help="skip the expert-parallel runs")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args()
    chosen = [k for k in CONFIGS if not args.only or k in args.only.split(",")]
    modes = ["one", "dp"] + ([] if args.no_ep else ["ep"])
    results = {}
    for key in chosen:
        shape, steps, warmup = CONFIGS[key]
        common = [args.binary, "bench-train", "--corpus", args.corpus, *shape, "--steps", str(steps),
                  "--warmup", str(warmup), "--no-peak", "--json"]
        commands = {
            "one": [*common, "--threads", "2", "--accum", "2"],
            "dp": [*mpirun_prefix(2), *common, "--threads", "1", "--accum", "1"],
            "ep": [*mpirun_prefix(2), *common, "--threads", "1", "--accum", "1",
                   "--expert-parallel", "2"],
        }
        runs = {m: [] for m in modes}
        for _ in range(args.rounds):
            for m in modes:
                runs[m].append(run_json(commands[m]))
        results[key] = runs
        med = {m: statistics.median(r["ms_per_step_median"] for r in runs[m]) for m in modes}
        print(f"{key}: {runs['one'][0]['config']['describe']}")
        tokens = runs["one"][0]["tok_per_s"] * runs["one"][0]["ms_per_step_median"] / 1e3
        for m in modes:
            mpi_ms = statistics.median(r.get("mpi_ms_per_step", 0.0) for r in runs[m])
            mb = statistics.median(r.get("mpi_bytes_per_step_per_rank", 0.0) for r in runs[m]) / 1e6
            print(f"  {m:>3}  {med[m]:8.1f} ms/step  {tokens / med[m] * 1e3:8.0f} tok/s  "
                  f"{med['one'] / med[m]:5.2f}× one  MPI {mpi_ms:6.1f} ms/step "
                  f"({100 * mpi_ms / med[m]:4.1f}%)  {mb:7.2f} MB sent/rank/step  "
                  f"peak RSS {statistics.median(r['peak_rss_mb'] for r in runs[m]):.0f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
