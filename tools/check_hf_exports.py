#!/usr/bin/env python3
"""Exported directories read by the reference give the same logits.

For every reference directory in tests/data/hf, `tinygpt convert DIR --to hf` writes an export
(of the HF type tinygpt picks for it, which may differ from the source's: a qwen2 model with q/k/v
bias comes back as qwen2, a llama with attention_bias as llama, ...); tools/hf_reference.py's own
strict loader then reads the export and computes its logits in float64, which must match the
committed expected logits of the source directory.

    /usr/bin/python3 tools/check_hf_exports.py [--tinygpt build/tinygpt] [--dtype f32|bf16]

Needs torch (Debian python3-torch); not part of the test suite, which has no torch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(here, "tools"))
import hf_reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tinygpt", default=os.path.join(here, "build", "tinygpt"))
    ap.add_argument("--data", default=os.path.join(here, "tests", "data", "hf"))
    ap.add_argument("--dtype", default="f32")
    args = ap.parse_args()
    cases = sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            src = os.path.join(args.data, case)
            out = os.path.join(tmp, case)
            r = subprocess.run([args.tinygpt, "convert", src, "--to", "hf", "--out", out,
                                "--dtype", args.dtype], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{case}: export failed: {r.stderr.strip()}")
                return 1
            with open(os.path.join(args.data, case + ".expected.json")) as f:
                want = json.load(f)
            with open(os.path.join(out, "config.json")) as f:
                exported_type = json.load(f)["model_type"]
            logits, loss = hf_reference.run_dir(out, want["tokens"])[:2]
            got = [float(x) for x in logits.reshape(-1).tolist()]
            worst = max(abs(a - b) for a, b in zip(got, want["logits"]))
            scale = max(abs(x) for x in want["logits"])
            worst_all = max(worst_all, worst / scale)
            print(f"{case:26s} → {exported_type:10s} max |Δlogit| {worst:.3g} "
                  f"(relative {worst / scale:.3g}), loss {float(loss):.6f} vs {want['loss']:.6f}")
    limit = 1e-6 if args.dtype == "f32" else 2e-2
    print(f"worst relative difference {worst_all:.3g} (limit {limit:g})")
    return 0 if worst_all <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
