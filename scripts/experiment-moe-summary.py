#!/usr/bin/env python3
"""The tables of docs/EXPERIMENTS.md from the files scripts/experiment-moe.sh wrote in OUT:
the runs (summary.json) and the expert analytics of the MoE models (experts-*.json).

    scripts/experiment-moe-summary.py OUT
"""
import json
import sys

out = sys.argv[1]
summary = json.load(open(f"{out}/summary.json"))
names = {
    "dense": "dense",
    "moe": "MoE 8×top-2, from scratch",
    "upcycled": "MoE upcycled at half-way",
    "distilled": "small dense, distilled from the MoE",
    "student": "small dense, from scratch",
}
print("| run | total params | active params / token | val bits/byte (final) | best | "
      "training seconds | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
for key, label in names.items():
    r = summary[key]
    print(f"| {label} | {r['total_params']:,} | {r['active_params']:,} | "
          f"{r['final_val_bpb']:.4f} | {r['best_val_bpb']:.4f} | {r['train_seconds']:.0f} | "
          f"{r['peak_rss_mb']:.0f} MB |")
print()
for model in ["moe", "upcycled"]:
    e = json.load(open(f"{out}/experts-{model}.json"))
    print(f"**{names[model]}** ({e['tokens']:,} held-out tokens):")
    print()
    print("| layer | load min–max | load entropy / max | router entropy | never / rarely "
          "chosen | top-1 NMI with next layer | follow rate (baseline) |")
    print("|---:|---|---|---:|---|---:|---|")
    for layer in e["layers"]:
        load = layer["load"]
        nxt = layer.get("next_layer")
        nmi = f"{nxt['nmi']:.3f}" if nxt else "–"
        follow = f"{nxt['follow']:.3f} ({nxt['follow_baseline']:.3f})" if nxt else "–"
        print(f"| {layer['layer']} | {min(load):.3f}–{max(load):.3f} | "
              f"{layer['load_entropy']:.3f} / {layer['max_entropy']:.3f} | "
              f"{layer['router_entropy']:.3f} | {len(layer['never_chosen'])} / "
              f"{len(layer['rarely_chosen'])} | {nmi} | {follow} |")
    print()
    # Each expert's favourite byte class in the last layer, as a share of its assignments.
    classes = e["byte_class_names"]
    last = e["layers"][-1]
    parts = []
    for i, counts in enumerate(last["byte_classes"]):
        total = sum(counts) or 1
        best = max(range(len(counts)), key=lambda c: counts[c])
        top = last["top_tokens"][i][0]["text"] if last["top_tokens"][i] else ""
        parts.append(f"e{i}: {classes[best]} {counts[best] / total:.0%}, top token {json.dumps(top)}")
    print(f"Last MoE layer, per expert (most frequent byte class, top token): " + "; ".join(parts) + ".")
    print()
