#!/usr/bin/env python3
"""Speed on a shared machine: decode and training, idle and with every core busy with other work.

Runs, in interleaved rounds, each workload on the idle machine and next to N busy processes
(`--busy`, default: one per core, each a plain spin loop pinned to its core), and prints medians
and the busy/idle ratios that issue #12 states its targets in:
  - decode keeps >= 50% of its idle speed when the cores are busy, training >= 40% of its idle
    step rate;
  - idle, the default thread choice is never slower than one thread.
Variants: the default (all cores; decode picks its thread count by timing), --threads 1 and
--threads 2. Training has one more where the binary is built
with MPI and mpirun is on the PATH: one process per core, one thread each, data-parallel, with
the same sequences per step (--batch 16 / cores per rank). Its ratio shows what coarse-grained
parallelism (one synchronisation per step instead of hundreds) keeps under load.
--baseline OLD_TINYGPT adds the default of another binary on the same files, in the same
rounds: old and new side by side.

Two references make the ratios readable:
  - "reference: one-thread loop", a counting loop with no memory traffic, measured in the same
    rounds: the share of a core that one thread of any program gets here. With a spinner pinned
    to every core, a thread shares a core with one of them, so a fair scheduler gives it half a
    core: 0.5 is the ceiling of a workload that runs on one thread when the machine is idle;
  - --placement free: the busy processes are not pinned (as `yes > /dev/null &` twice would be),
    and the kernel places them; a run then either shares a core or has one to itself, so single
    cells are bimodal. --placement both measures the two in the same rounds.
Each decode measurement lasts about --decode-seconds on the idle machine (its run count is set
once per model from an idle calibration run), so that it spans many time slices: a tiny model
decodes 96 tokens in ~7 ms, about two slices, and a single such run measures where the slices
fell as much as the decode.

    python3 bench/under_load.py                 # 3 rounds
    python3 bench/under_load.py --rounds 5 --busy 2
    python3 bench/under_load.py --baseline /tmp/old/build/tinygpt
    python3 bench/under_load.py --models d512-moe --no-train --rounds 8   # the decode tuner
    python3 bench/under_load.py --placement both --no-train                  # pinned and free load
Standard library only.
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from peer_run import ROOT, existing_binary, run, run_json

MODELS = [
    # name, flags of `train` that make it (1 step: the values do not matter for speed)
    ("tiny", ["--preset", "tiny"]),
    ("tiny-moe", ["--preset", "tiny", "--moe-experts", "4", "--moe-topk", "2"]),
    ("d512-moe", ["--arch", "llama", "--layers", "4", "--d-model", "512", "--heads", "8",
                  "--kv-heads", "2", "--ctx", "256", "--d-mlp", "1408", "--moe-experts", "8",
                  "--moe-topk", "2"]),
]
VARIANTS = [
    # name, extra flags, extra environment
    ("default", [], {}),
    ("--threads 1", ["--threads", "1"], {}),
    ("--threads 2", ["--threads", "2"], {}),
]
TRAIN_BATCH = 16  # sequences per optimizer step, whatever the variant
TRAIN_ROW = f"train tiny-moe, batch {TRAIN_BATCH} (steps/s)"
MPI_VARIANT = "mpirun: 1 process per core × 1 thread"


GEN_TOKENS = 96
REFERENCE_ROW = "reference: one-thread loop (counts/s)"
REFERENCE_VARIANT = "(not tinygpt)"
LOOP_SECONDS = 1.0


def start_busy(n, pinned=True):
    """n spinning processes; pinned: the i-th to the i-th CPU of this process's set (round robin).

    Unpinned, the kernel places them as it likes: with two of them and one tinygpt thread on two
    cores, it often keeps both spinners on one core, and the tinygpt thread then runs alone on
    the other at its idle speed; in other runs it shares a core. That made single runs bimodal
    (about 6,000 or 12,000 tok/s for the same command). Pinned, every core carries its share.
    """
    code = "while True: pass"
    if not pinned or not hasattr(os, "sched_setaffinity"):  # macOS: no affinity, they float
        return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    cpus = sorted(os.sched_getaffinity(0))
    return [subprocess.Popen([sys.executable, "-c", code],
                             preexec_fn=lambda cpu=cpus[i % len(cpus)]: os.sched_setaffinity(0, {cpu}))
            for i in range(n)]


def stop_busy(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def env_with(extra):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(k, None)
    env.update(extra)
    return env


def decode(binary, model, flags, env, runs=3):
    out = run_json([binary, "bench", model, "--prompt-tokens", "32", "--gen-tokens",
                    str(GEN_TOKENS), "--runs", str(runs), "--warmup", "1", "--json", *flags], env)
    return out["decode_tok_per_s"], out["prefill_tok_per_s"]


def decode_runs(binary, model, seconds):
    """The run count that makes one decode measurement last about `seconds` on this machine now
    (from one calibration run of the default; at least 3)."""
    tok_per_s, _ = decode(binary, model, [], env_with({}))
    return max(3, math.ceil(seconds * tok_per_s / GEN_TOKENS))


def one_thread_loop():
    """Counts of a plain loop per second of wall time: what one thread gets of a core."""
    code = ("import time\nn = 0\nend = time.perf_counter() + %r\n"
            "while time.perf_counter() < end: n += 1\nprint(n / %r)" % (LOOP_SECONDS, LOOP_SECONDS))
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


def train(binary, flags, env, launcher=(), batch=TRAIN_BATCH):
    out = run_json([*launcher, binary, "bench-train", "--preset", "tiny", "--moe-experts", "4",
                    "--moe-topk", "2", "--batch", str(batch), "--steps", "6", "--warmup", "2",
                    "--json", *flags], env)
    return 1000.0 / out["ms_per_step_median"]  # steps per second


def mpi_launcher(binary, ranks):
    """mpirun's command prefix for `ranks` one-thread processes, or None when the binary has no
    MPI (it reports one rank under mpirun) or mpirun is missing."""
    mpirun = shutil.which("mpirun")
    if not mpirun or ranks < 2 or TRAIN_BATCH % ranks:
        return None
    launcher = [mpirun, "-np", str(ranks), "--oversubscribe"]
    if os.geteuid() == 0:
        launcher.append("--allow-run-as-root")
    try:
        out = run_json([*launcher, binary, "bench-train", "--preset", "tiny", "--batch", "1",
                        "--steps", "1", "--warmup", "0", "--threads", "1", "--json"])
    except Exception:  # noqa: BLE001 - any failure means: no MPI variant
        return None
    return launcher if out.get("ranks") == ranks else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "tinygpt"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--busy", type=int, default=os.cpu_count())
    ap.add_argument("--baseline", metavar="OLD_TINYGPT",
                    help="another tinygpt binary: its default runs next to this one's")
    ap.add_argument("--models", default=",".join(name for name, _ in MODELS),
                    help="decode/prefill on these models only (comma-separated; default: all)")
    ap.add_argument("--no-train", action="store_true", help="leave the training rows out")
    ap.add_argument("--placement", choices=("pinned", "free", "both"), default="pinned",
                    help="busy processes pinned one per core (default), placed by the kernel, "
                         "or both in the same rounds")
    ap.add_argument("--decode-seconds", type=float, default=0.5,
                    help="length of one decode measurement on the idle machine (default 0.5)")
    args = ap.parse_args()
    wanted = set(args.models.split(","))
    models = [(name, flags) for name, flags in MODELS if name in wanted]
    if unknown := wanted - {name for name, _ in MODELS}:
        known = ", ".join(name for name, _ in MODELS)
        ap.error(f"--models: unknown {', '.join(sorted(unknown))} (known: {known})")
    variants = [(name, args.binary, flags, env) for name, flags, env in VARIANTS]
    if args.baseline:
        variants.append(("default, baseline binary", existing_binary(args.baseline, "--baseline"),
                         [], {}))
    cores = os.cpu_count()
    launcher = None if args.no_train else mpi_launcher(args.binary, cores)
    if launcher is None and not args.no_train:
        print("(no MPI training variant: the binary has no MPI or mpirun is missing)",
              file=sys.stderr)
    placements = ["pinned", "free"] if args.placement == "both" else [args.placement]
    busy_conditions = [f"busy, {p}" for p in placements]

    results = {}  # (workload, variant, condition) -> [values]
    with tempfile.TemporaryDirectory() as tmp:
        paths, runs = {}, {}
        for name, flags in models:
            paths[name] = os.path.join(tmp, name + ".tinygpt")
            run([args.binary, "train", *flags, "--steps", "1", "--batch", "1", "--sample-tokens",
                 "0", "--out", paths[name]])
            runs[name] = decode_runs(args.binary, paths[name], args.decode_seconds)
        for r in range(args.rounds):
            for condition in ["idle", *busy_conditions]:
                procs = (start_busy(args.busy, pinned=condition.endswith("pinned"))
                         if condition != "idle" else [])
                time.sleep(0.5)
                try:
                    for vname, binary, vflags, venv in variants:
                        env = env_with(venv)
                        for mname, _ in models:
                            d, p = decode(binary, paths[mname], vflags, env, runs[mname])
                            results.setdefault((f"decode {mname}", vname, condition), []).append(d)
                            results.setdefault((f"prefill {mname}", vname, condition), []).append(p)
                        if not args.no_train:
                            results.setdefault((TRAIN_ROW, vname, condition),
                                               []).append(train(binary, vflags, env))
                    if launcher:
                        results.setdefault((TRAIN_ROW, MPI_VARIANT, condition), []).append(
                            train(args.binary, ["--threads", "1"], env_with({}), launcher,
                                  TRAIN_BATCH // cores))
                    # What one thread of any program gets of a core in this condition.
                    results.setdefault((REFERENCE_ROW, REFERENCE_VARIANT, condition),
                                       []).append(one_thread_loop())
                finally:
                    stop_busy(procs)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    measured = ", ".join(f"{name} {runs[name]} runs" for name, _ in models)
    print(f"{os.cpu_count()} cores · busy = {args.busy} spinning processes · medians of "
          f"{args.rounds} rounds (decode/prefill tok/s, training steps/s) · decode of "
          f"{GEN_TOKENS} tokens × ({measured})\n")
    columns = "".join(f" {c} | {c} / idle | {c} / default's idle |" for c in busy_conditions)
    print(f"| workload | variant | idle |{columns}")
    print("|---|---|---:|" + "---:|---:|---:|" * len(busy_conditions))
    workloads = sorted({w for w, _, _ in results},
                       key=lambda w: (w != REFERENCE_ROW, w.split()[0] != "decode", w))
    names = [REFERENCE_VARIANT] + [v[0] for v in variants] + [MPI_VARIANT]
    for w in workloads:
        for vname in names:
            if (w, vname, "idle") not in results:
                continue
            idle = statistics.median(results[(w, vname, "idle")])
            default_idle = statistics.median(results.get((w, "default", "idle"), [idle]))
            cells = ""
            for c in busy_conditions:
                busy = statistics.median(results[(w, vname, c)])
                cells += f" {busy:.1f} | {busy / idle:.2f} | {busy / default_idle:.2f} |"
            print(f"| {w} | {vname} | {idle:.1f} |{cells}")


if __name__ == "__main__":
    main()
