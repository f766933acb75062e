#!/usr/bin/env bash
# The experiment of docs/EXPERIMENTS.md (issue #11, part 4): on one corpus, with the byte
# tokenizer, the same training tokens and the same active parameters per token,
#   dense      a dense model trained from scratch
#   moe        8 experts top-2 of half the MLP's width, from scratch
#   upcycled   the dense model at half-way, upcycled to 8 experts top-2 and trained on
#   distilled  a small dense student distilled from the MoE teacher
#   student    the same student trained from scratch
# The upcycled model has the dense MLP's width in each expert: twice the dense model's active MLP
# (the recipe of Komatsuzaki et al.). Each run writes a --log; the figures go to
# OUT/summary.json and OUT/summary.md, the plots (drawn by `tinygpt report` and
# `tinygpt experts`) to OUT/plots, OUT/compare.html and OUT/experts-*.
#
#   scripts/experiment-moe.sh CORPUS OUT [STEPS]
#
# Wall-clock figures mean something only on an otherwise idle machine. The second corpus of
# docs/EXPERIMENTS.md, the King James Bible, comes from Debian's bible-kjv package:
#   bible -f "gen1:1-rev22:21" | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' > kjv.txt
set -euo pipefail

corpus=$1
out=$2
steps=${3:-2000}
half=$((steps / 2))
tinygpt=${TINYGPT:-$(dirname "$0")/../build/tinygpt}
[ -x "$tinygpt" ] || tinygpt=$(dirname "$0")/../build-mpi/tinygpt
mkdir -p "$out"

common=(--corpus "$corpus" --val-split 0.1 --val-every 100 --sample-every 0 --log-every 500
    --seed 1337)
shape=(--preset tiny --layers 4 --d-model 128 --heads 4 --d-mlp 512)
student=(--preset tiny --layers 4 --d-model 96 --heads 4 --d-mlp 384)

run() {  # name, then the command's arguments: prints the output to OUT/name.out
    local name=$1
    shift
    echo "== $name: tinygpt $*"
    "$tinygpt" "$@" > "$out/$name.out" 2>&1 || {
        cat "$out/$name.out"
        exit 1
    }
    grep -E "^  params|^done|^peak RSS" "$out/$name.out" || true
}

# Dense, in two halves (an exact resume): the first half's file is what gets upcycled.
run dense-1 train "${common[@]}" "${shape[@]}" --steps "$steps" --stop-at "$half" \
    --out "$out/dense-half.tinygpt" --log "$out/dense-1.jsonl"
run dense-2 train "${common[@]}" --resume "$out/dense-half.tinygpt" --steps "$steps" \
    --out "$out/dense.tinygpt" --log "$out/dense-2.jsonl"

run moe train "${common[@]}" "${shape[@]}" --moe-experts 8 --moe-topk 2 --moe-ffn 256 \
    --steps "$steps" --out "$out/moe.tinygpt" --log "$out/moe.jsonl"

# Upcycled at half-way: the rest of the schedule (the dense run's learning rate at half-way
# down to the same floor), the same number of steps as the dense run's second half.
mid_lr=$(python3 -c "import math; print(3e-5 + (3e-4 - 3e-5) * 0.5 * (1 + math.cos(math.pi * ($half - 200) / ($steps - 200))))")
run upcycle upcycle "$out/dense-half.tinygpt" --experts 8 --topk 2 --expert-noise 0.01 \
    --out "$out/upcycled-0.tinygpt"
run upcycled train "${common[@]}" --init-from "$out/upcycled-0.tinygpt" --steps "$half" \
    --max-lr "$mid_lr" --lr-warmup 20 --out "$out/upcycled.tinygpt" --log "$out/upcycled-2.jsonl"

run distilled distill --teacher "$out/moe.tinygpt" "${common[@]}" "${student[@]}" \
    --steps "$steps" --out "$out/distilled.tinygpt" --log "$out/distilled.jsonl"
run student train "${common[@]}" "${student[@]}" --steps "$steps" \
    --out "$out/student.tinygpt" --log "$out/student.jsonl"

# The held-out tenth of the corpus (what --val-split 0.1 keeps apart) for the expert analytics.
size=$(stat -c %s "$corpus")
tail -c $((size / 10)) "$corpus" > "$out/heldout.txt"
for m in moe upcycled; do
    "$tinygpt" experts "$out/$m.tinygpt" --corpus "$out/heldout.txt" --max-tokens 50000 \
        --json > "$out/experts-$m.json"
    "$tinygpt" experts "$out/$m.tinygpt" --corpus "$out/heldout.txt" --max-tokens 50000 \
        --html "$out/experts-$m.html" --svg "$out/experts-$m" > /dev/null
done

# One log per run (the dense halves joined; the upcycled run continues the dense run's first
# half in steps and seconds), and the summary.
python3 - "$out" << 'EOF'
import json, re, sys
out = sys.argv[1]
def load(name):
    return [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
def write(name, records):
    with open(f"{out}/{name}.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
first = load("dense-1")
write("dense", first + load("dense-2"))
up = load("upcycled-2")
for r in up:
    r["step"] += first[-1]["step"]
    r["train_seconds"] += first[-1]["train_seconds"]
write("upcycled", first + up)
summary = {}
for name in ["dense", "moe", "upcycled", "distilled", "student"]:
    records = load(name)
    parts = {"dense": ["dense-1", "dense-2"], "upcycled": ["dense-1", "upcycled"]}
    text = "".join(open(f"{out}/{p}.out").read() for p in parts.get(name, [name]))
    params = re.findall(r"params\s+([\d,]+) total · ([\d,]+) active", text)[-1]
    rss = [float(x) for x in re.findall(r"peak RSS (\d+) MB", text)]
    val = [r for r in records if "val_bpb" in r]
    summary[name] = {
        "total_params": int(params[0].replace(",", "")),
        "active_params": int(params[1].replace(",", "")),
        "steps": records[-1]["step"],
        "train_seconds": records[-1]["train_seconds"],
        "final_val_bpb": val[-1]["val_bpb"],
        "best_val_bpb": min(r["val_bpb"] for r in val),
        "peak_rss_mb": max(rss),
    }
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF

# The runs compared, drawn by the tool: validation against steps and against training seconds.
"$tinygpt" report "$out/dense.jsonl" "$out/moe.jsonl" "$out/upcycled.jsonl" \
    "$out/distilled.jsonl" "$out/student.jsonl" --label dense --label moe --label upcycled \
    --label distilled --label student --html "$out/compare.html" --svg "$out/plots"
python3 "$(dirname "$0")/experiment-moe-summary.py" "$out" > "$out/summary.md"
