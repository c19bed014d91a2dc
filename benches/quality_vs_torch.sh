#!/usr/bin/env bash
# Sample quality across seeds, side by side: for every seed, the notebook's PyTorch code
# (`benches/reference/ddpm.py train --seed`, then `sample --seed`) and
# ours (`tinyddpm train --seed` + `sample --seed`), both with the seed recipe (10,000 steps,
# batch 128, lr 1e-3, no EMA) and 10,000 DDPM samples, all scored by the same `tinyddpm eval`.
# Prints one row per run and the mean of each column per side.
#
#   benches/quality_vs_torch.sh              # seeds 42 1 2 3 (the README table); venv: benches/torch_env.sh
#   SEEDS="1 2 3 4 5" benches/quality_vs_torch.sh
#   EMA=0.999 benches/quality_vs_torch.sh    # our runs with an EMA of the weights
#
# About 80 s per PyTorch seed and 30–40 s per ours on a 2-core machine. Exits 0 with a message
# when PyTorch is not installed.
set -euo pipefail

# shellcheck source=benches/torch_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" quality_vs_torch
seeds="${SEEDS:-42 1 2 3}"

(cd "$root" && cargo build -q --release -p tinyddpm)
bin="${CARGO_TARGET_DIR:-$root/target}/release/tinyddpm"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
ema_args=()
[ -n "${EMA:-}" ] && ema_args=(--ema "$EMA")

score() { # label csv
    "$bin" eval --samples "$2" --json | "$py" -c '
import json, sys
m = json.load(sys.stdin)
print(sys.argv[1], m["mean_distance"], m["p95_distance"], m["energy_distance"], m["coverage_ks"])
' "$1" | tee -a "$out/scores.txt"
}

for seed in $seeds; do
    "$py" "$ref" --threads 2 train --seed "$seed" --out "$out/torch_$seed.safetensors" \
        --losses "$out/torch_$seed.losses.csv" >/dev/null
    "$py" "$ref" --threads 2 sample --model "$out/torch_$seed.safetensors" --n 10000 \
        --seed "$seed" --out "$out/torch_$seed.csv" >/dev/null
    score "pytorch_seed_$seed" "$out/torch_$seed.csv"

    "$bin" train --seed "$seed" ${ema_args[@]+"${ema_args[@]}"} --out "$out/ours_$seed.tdm" \
        >/dev/null 2>&1
    "$bin" sample --model "$out/ours_$seed.tdm" -n 10000 --seed "$seed" \
        --out "$out/ours_$seed.csv" >/dev/null 2>&1
    score "tinyddpm_seed_$seed${EMA:+_ema_$EMA}" "$out/ours_$seed.csv"
done

"$py" - "$out/scores.txt" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'over seeds':<20} {'mean dist':>15} {'p95 dist':>15} {'energy':>15} {'KS':>15}")
for side in ("pytorch", "tinyddpm"):
    vals = [[float(v) for v in r[1:]] for r in rows if r[0].startswith(side)]
    cols = list(zip(*vals))
    print(f"{side + ' mean':<20} " + " ".join(f"{sum(c) / len(c):>15.4f}" for c in cols))
    print(f"{side + ' range':<20} " + " ".join(f"{min(c):>7.4f}-{max(c):.4f}" for c in cols))
EOF
