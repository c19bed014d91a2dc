#!/usr/bin/env bash
# Classifier-free guidance swept (issue "Conditioning"). For each labelled set and seed: the
# seed recipe trained with --classes; every class sampled at each guidance weight; each class's
# samples scored by `eval --class-of` against labelled reference points drawn by the PyTorch
# reference program's generators (benches/reference/ddpm.py: an independent implementation of
# each set and of its labels): class adherence (the share a 10-NN classifier assigns to the
# class asked for) and sliced W2 / MMD² against that class's points. The yardstick of
# per-class quality: an unconditional model trained on each class's reference points alone
# (`train --data FILE --normalize none`, the same recipe and seed), scored the same way.
#
# Usage: benches/guidance.sh [SET...]        (default: 8gaussians moons pinwheel)
#   SEEDS="42 1 2 3"  N=2000  SAMPLER=dpmpp-2m-sde  STEPS=20  WEIGHTS="0 1 1.5 2 3 5"
#   EMA=0.999 (both models keep the average of their weights, `train --ema`)
# Writes benches/results/guidance.md (the table) and guidance_scores.txt (one line per
# set, seed, weight and class), or guidance_ema.md and guidance_scores_ema.txt with EMA. Needs the PyTorch virtualenv for the reference points
# (scripts/install-torch.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(8gaussians moons pinwheel)
seeds=(${SEEDS:-42 1 2 3})
weights=(${WEIGHTS:-0 1 1.5 2 3 5})
n=${N:-2000}
sampler=(--sampler "${SAMPLER:-dpmpp-2m-sde}" --steps "${STEPS:-20}")
ema=()
suffix=""
if [ -n "${EMA:-}" ]; then
    ema=(--ema "$EMA")
    suffix="_ema"
fi
python="${TORCH_PYTHON:-$HOME/.cache/tinyddpm/torch-venv/bin/python}"
[ -x "$python" ] || { echo "guidance.sh: no PyTorch virtualenv at $python (scripts/install-torch.sh)" >&2; exit 1; }
cargo build --release -q -p tinyddpm
bin="$root/target/release/tinyddpm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$root/benches/results"
mkdir -p "$out"
scores="$out/guidance_scores$suffix.txt"
: > "$scores"

# The labelled reference points of a set: 20,000 of them, labels in the last column.
reference() {
    "$python" - "$1" "$2" <<'EOF'
import sys
sys.path.insert(0, "benches/reference")
import torch
import ddpm
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
draw, _ = ddpm.LABELLED_SETS[name]
x, y = draw(20_000)
with open(out, "w") as f:
    f.write("x,y,label\n")
    for p, l in zip(x.tolist(), y.tolist()):
        f.write("%.9g,%.9g,%d\n" % (p[0], p[1], l))
EOF
}

# One scored line: SET SEED WEIGHT CLASS adherence sliced_w2 mmd2 (WEIGHT "alone": the
# class's own unconditional model, adherence then of its samples too).
score() {
    local samples=$1 ref=$2 class=$3
    "$bin" eval --samples "$samples" --class-of "$ref" --class "$class" --json |
        "$python" -c 'import json,sys; j=json.load(sys.stdin); print(j["adherence"], j["sliced_w2"], j["mmd2"])'
}

for set in "${sets[@]}"; do
    ref="$work/$set.csv"
    reference "$set" "$ref"
    classes=$("$python" -c 'import sys; sys.path.insert(0, "benches/reference"); import ddpm; print(ddpm.LABELLED_SETS[sys.argv[1]][1])' "$set")
    for seed in "${seeds[@]}"; do
        model="$work/$set-$seed.tdm"
        "$bin" train --data "$set" --classes --seed "$seed" "${ema[@]}" --out "$model" > /dev/null
        for w in "${weights[@]}"; do
            for ((c = 0; c < classes; c++)); do
                s="$work/s.csv"
                "$bin" sample --model "$model" --class "$c" --guidance "$w" -n "$n" \
                    --seed "$seed" "${sampler[@]}" --out "$s" > /dev/null
                echo "$set $seed $w $c $(score "$s" "$ref" "$c")" | tee -a "$scores"
            done
        done
        # Each class alone: its reference points (labels dropped), an unconditional model.
        for ((c = 0; c < classes; c++)); do
            points="$work/$set-$c.csv"
            awk -F, -v c="$c" 'NR == 1 { print "x,y"; next } $3 == c { print $1 "," $2 }' "$ref" > "$points"
            alone="$work/$set-$seed-$c.tdm"
            "$bin" train --data "$points" --normalize none --seed "$seed" "${ema[@]}" \
                --out "$alone" > /dev/null
            s="$work/s.csv"
            "$bin" sample --model "$alone" -n "$n" --seed "$seed" "${sampler[@]}" --out "$s" > /dev/null
            echo "$set $seed alone $c $(score "$s" "$ref" "$c")" | tee -a "$scores"
        done
    done
done

"$python" - "$scores" "$out/guidance$suffix.md" "${sampler[*]} ${ema[*]}" "$n" <<'EOF'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(list)
for s, seed, w, c, adh, sw2, mmd in rows:
    by[(s, w)].append((seed, float(adh), float(sw2), float(mmd)))
sets = list(dict.fromkeys(r[0] for r in rows))
weights = list(dict.fromkeys(r[2] for r in rows))
with open(sys.argv[2], "w") as f:
    f.write("# Classifier-free guidance swept\n\n")
    f.write(f"`benches/guidance.sh`: {sys.argv[4]} samples per class and seed ({sys.argv[3]}); "
            "each class's samples scored against that class's points of 20,000 labelled "
            "reference points (the PyTorch reference program's generators); adherence by a "
            "10-NN classifier on them. Means over every class and seed; \"alone\": an "
            "unconditional model trained on the class's points only (the same recipe).\n\n")
    f.write("| set | w | seeds | adherence | sliced W2 | MMD² | sliced W2 / alone |\n")
    f.write("|---|---|---:|---:|---:|---:|---:|\n")
    for s in sets:
        alone = by.get((s, "alone"))
        base = statistics.mean(r[2] for r in alone) if alone else None
        for w in weights:
            r = by.get((s, w))
            if not r:
                continue
            seeds = len({x[0] for x in r})
            sw2 = statistics.mean(x[2] for x in r)
            ratio = f"{sw2 / base:.2f}" if base else ""
            f.write(f"| {s} | {w} | {seeds} | {statistics.mean(x[1] for x in r):.4f} | "
                    f"{sw2:.4f} | {statistics.mean(x[3] for x in r):.5f} | {ratio} |\n")
print(open(sys.argv[2]).read())
EOF
