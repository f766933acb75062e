#!/usr/bin/env python3
"""Inference speed of tinygpt next to llama.cpp on the same GGUF file, measured side by side.

For every configuration it makes a model with `tinygpt train --steps 1` (the values do not matter
for speed), converts it to GGUF at each dtype (`tinygpt convert --to gguf`), and runs on that one
file, in ROUNDS interleaved rounds (medians over the rounds; the ratios are medians of the per-round
ratios):
  - llama.cpp's `llama-bench -m FILE -p 64,512 -n 128 -t THREADS -r RUNS -o json`: prefill of a
    64- and a 512-token prompt (pp64, pp512) and decode of 128 tokens from an empty cache (tg128),
    tok/s averaged over the runs;
  - `tinygpt bench FILE --threads THREADS --json`: prefill of the same prompts (median tok/s),
    and decode of 128 tokens after a 1-token prompt (median tok/s), the same workloads.
llama-bench comes from bench/build_llama_cpp.sh (the llama.cpp that node-llama-cpp bundles, the
one the GGUF tests check against). Prints a markdown table with the ratios tinygpt / llama.cpp.

    bench/build_llama_cpp.sh                           # once, ~10 minutes on 2 cores
    python3 bench/compare_llama_cpp.py                 # all configs, f32, bf16 and q8_0
    python3 bench/compare_llama_cpp.py --only moe144m --dtypes q8_0 --prompts 64
With --baseline OLD_TINYGPT the peer is another tinygpt binary instead of llama.cpp (the same
files, runs and table): a change's before/after, measured side by side.

    python3 bench/compare_llama_cpp.py --only llama --baseline /tmp/old/build/tinygpt
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

from peer_run import ROOT, existing_binary, run, run_json

GPT = ["--layers", "4", "--d-model", "256", "--heads", "8", "--ctx", "1024", "--d-mlp", "1024"]
LLAMA = ["--arch", "llama", "--layers", "4", "--d-model", "256", "--heads", "8", "--kv-heads", "2",
         "--ctx", "1024", "--d-mlp", "704"]
BIG = ["--arch", "llama", "--layers", "8", "--d-model", "512", "--heads", "8", "--kv-heads", "2",
       "--ctx", "1024", "--moe-ffn", "1408", "--moe-experts", "8", "--moe-topk", "2"]
HUGE = ["--arch", "llama", "--layers", "12", "--d-model", "1024", "--heads", "16", "--kv-heads", "4",
        "--ctx", "1024", "--moe-ffn", "2048", "--moe-experts", "8", "--moe-topk", "2"]
CONFIGS = [
    # name, description, training flags
    ("gpt", "GPT d256 L4 dense (gpt2)", GPT),
    ("llama", "Llama d256 L4 GQA 8/2 dense (llama)", LLAMA),
    ("moe8", "Llama d256 L4, 8×704 top-2 (llama, Mixtral)", LLAMA + ["--moe-experts", "8", "--moe-topk", "2"]),
    ("moe144m", "d512 L8 GQA 8/2, 8×1408 top-2 (llama, Mixtral)", BIG),
    ("moe600m", "d1024 L12 GQA 16/4, 8×2048 top-2 (llama, Mixtral)", HUGE),
]


def llama_bench(binary, path, threads, runs, prompts):
    """[prefill tok/s for each prompt length], decode tok/s."""
    out = run([binary, "-m", path, "-p", ",".join(map(str, prompts)), "-n", "128", "-t",
               str(threads), "-r", str(runs), "-o", "json"])
    results = json.loads(out)
    pp = [next(r for r in results if r["n_prompt"] == p and r["n_gen"] == 0)["avg_ts"]
          for p in prompts]
    tg = next(r for r in results if r["n_gen"] > 0 and r["n_prompt"] == 0)
    return pp, tg["avg_ts"]


def tinygpt_bench(binary, path, threads, runs, prompts):
    """[prefill tok/s for each prompt length], decode tok/s, parameters."""
    common = ["--runs", str(runs), "--warmup", "1", "--threads", str(threads), "--json"]
    pp = [run_json([binary, "bench", path, "--prompt-tokens", str(p), "--gen-tokens", "1", *common])
          for p in prompts]
    tg = run_json([binary, "bench", path, "--prompt-tokens", "1", "--gen-tokens", "128", *common])
    return [r["prefill_tok_per_s"] for r in pp], tg["decode_tok_per_s"], tg["params_total"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--llama-bench", default=os.path.join(ROOT, "build-llama.cpp", "build", "bin", "llama-bench"))
    ap.add_argument("--only", default="", help="comma-separated config names")
    ap.add_argument("--dtypes", default="f32,bf16,q8_0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (each side)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians over them)")
    ap.add_argument("--prompts", default="64,512", help="prompt lengths of the prefill runs")
    ap.add_argument("--baseline", help="another tinygpt binary to compare with, instead of llama.cpp")
    args = ap.parse_args()
    if args.baseline:
        baseline = existing_binary(args.baseline, "--baseline")
        peer_name = "baseline"

        def peer_bench(path, threads, runs, prompts):
            pp, tg, _ = tinygpt_bench(baseline, path, threads, runs, prompts)
            return pp, tg
    else:
        if not os.path.exists(args.llama_bench):
            sys.exit(f"{args.llama_bench} not found: run bench/build_llama_cpp.sh first")
        peer_name = "llama.cpp"

        def peer_bench(path, threads, runs, prompts):
            return llama_bench(args.llama_bench, path, threads, runs, prompts)
    # A machine may pin OpenBLAS's kernel (this project's machines set OPENBLAS_CORETYPE=Haswell);
    # a user's would not, so say so: unset, OpenBLAS picks the kernel for the CPU.
    for key in sorted(k for k in os.environ if k.startswith("OPENBLAS_")):
        print(f"note: {key}={os.environ[key]} is set (run with `env -u {key}` for OpenBLAS's own "
              "choice)", file=sys.stderr)
    names = set(args.only.split(",")) if args.only else None
    prompts = [int(p) for p in args.prompts.split(",")]
    binary = os.path.abspath(args.binary)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinygpt-vs-llama-cpp-") as tmp:
        for name, desc, flags in CONFIGS:
            if names and name not in names:
                continue
            model = os.path.join(tmp, name + ".tinygpt")
            run([binary, "train", *flags, "--batch", "1", "--steps", "1", "--sample-tokens", "0",
                 "--out", model])
            for dtype in args.dtypes.split(","):
                gguf = os.path.join(tmp, f"{name}.{dtype}.gguf")
                run([binary, "convert", model, "--out", gguf, "--dtype", dtype])
                # Interleaved rounds (the peer, then tinygpt, again and again): the machine is
                # shared, and a slow spell then hits both sides alike. Medians over the rounds.
                samples = []  # (tinygpt pp list, peer pp list, tinygpt tg, peer tg)
                for _ in range(args.rounds):
                    l_pp, l_tg = peer_bench(gguf, args.threads, args.runs, prompts)
                    t_pp, t_tg, params = tinygpt_bench(binary, gguf, args.threads, args.runs, prompts)
                    samples.append((t_pp, l_pp, t_tg, l_tg))
                    pp_text = ", ".join(f"pp{p} {t:.0f} vs {l:.0f}" for p, t, l in zip(prompts, t_pp, l_pp))
                    print(f"{name} {dtype}: {pp_text}, tg128 {t_tg:.0f} vs {l_tg:.0f} tok/s",
                          file=sys.stderr)
                med = statistics.median
                cells = []
                for k in range(len(prompts)):  # per prompt: tinygpt, the peer, median ratio
                    cells.append((med(s[0][k] for s in samples), med(s[1][k] for s in samples),
                                  med(s[0][k] / s[1][k] for s in samples)))
                cells.append((med(s[2] for s in samples), med(s[3] for s in samples),
                              med(s[2] / s[3] for s in samples)))
                rows.append((desc, params, dtype, os.path.getsize(gguf), cells))
                os.remove(gguf)
            os.remove(model)
    heads = [f"pp{p}" for p in prompts] + ["tg128"]
    print("| config | params | dtype | file | " +
          " | ".join(f"tinygpt {h} | {peer_name} {h} | ratio" for h in heads) + " |")
    print("|---|---:|---|---:|" + "---:|" * (3 * len(heads)))
    for desc, params, dtype, size, cells in rows:
        print(f"| {desc} | {params / 1e6:.1f} M | {dtype} | {size / 1e6:.0f} MB | " +
              " | ".join(f"{t:.0f} | {l:.0f} | **{r:.2f}×**" for t, l, r in cells) + " |")


if __name__ == "__main__":
    main()
