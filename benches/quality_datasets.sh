#!/usr/bin/env bash
# Sample quality on every built-in data set, side by side: for every set and seed, the PyTorch
# reference (`benches/reference/ddpm.py train --data SET --seed S`, then `sample --seed S`) and
# ours (`tinyddpm train --data SET --seed S` + `sample --seed S`), both with the seed recipe
# (10,000 steps, batch 128, lr 1e-3, no EMA) and 10,000 DDPM-1000 samples, all scored by the same
# `tinyddpm eval --data SET --seed R --json` (generic scores against fresh samples of the set,
# reference seed R = 1000 + S for both sides). Prints a Markdown table, one row per set: the
# seeds scored on both sides, the mean over them of sliced W2 and of MMD² per side, PyTorch's
# seed-to-seed spread (min–max) of each,
# and whether our mean lies within PyTorch's spread or below it ("within/better") or above it
# ("worse", naming the score).
#
#   benches/quality_datasets.sh                          # all ten sets, seeds 42 1 2 3
#   SETS="moons 8gaussians" SEEDS="42" benches/quality_datasets.sh
#   OUT=/tmp/datasets_out benches/quality_datasets.sh    # also keep each side's samples of the
#                                  # first seed, OUT/SET_{ours,pytorch}.csv, and append each run's
#                                  # scores to OUT/scores.txt ("set side seed sliced_w2 mmd2")
#   THREADS=1 benches/quality_datasets.sh                # threads of both sides (default: PyTorch
#                                  # 2, ours all cores); use 1 on a loaded machine, where 2 torch
#                                  # threads can run 10x slower than one
#   SCORES=/tmp/datasets_out/scores.txt benches/quality_datasets.sh   # only the table, from that
#                                  # file (partial or merged runs): the SETS that have lines in it,
#                                  # each over the seeds both sides have there
#   EMA=0.999 benches/quality_datasets.sh                # both sides keep an exponential moving
#                                  # average of the weights and sample it (`train --ema`)
#
# Uses the release binary in ${CARGO_TARGET_DIR:-target}/release and builds it only when it is
# missing (build it first if the sources changed). Progress goes to stderr, the table to stdout.
# Time per set and seed on an idle 2-core machine: about 2 minutes (PyTorch ~80 s, ours ~35 s, as
# in quality_vs_torch.sh; scoring ~1 s), ~80 minutes for the full 10 x 4. On a loaded machine
# (2026-12-07, other builds running, nice -n 10, THREADS=1) it took 7-15 minutes per set and seed.
# Exits 0 with a message when PyTorch is not installed.
set -euo pipefail

# shellcheck source=benches/torch_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" quality_datasets
sets="${SETS:-swissroll circles rings moons 8gaussians pinwheel 2spirals checkerboard line cos}"
seeds="${SEEDS:-42 1 2 3}"
first_seed="${seeds%% *}"
keep="${OUT:-}"
torch_threads="${THREADS:-2}"
ours_threads="${THREADS:-0}"
ema=()
[ -z "${EMA:-}" ] || ema=(--ema "$EMA")

bin="${CARGO_TARGET_DIR:-$root/target}/release/tinyddpm"
[ -x "$bin" ] || (cd "$root" && cargo build -q --release -p tinyddpm)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[ -z "$keep" ] || mkdir -p "$keep"
start=$SECONDS

step() { # label command...: run it with its output in a log; on failure say which run it was
    local label="$1" log
    log="$tmp/$(echo "$label" | tr ' ' '_').log"
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "quality_datasets: $label failed:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
}

score() { # set side seed csv: append "set side seed sliced_w2 mmd2" to scores.txt
    local json line
    json="$("$bin" eval --samples "$4" --data "$1" --seed $((1000 + $3)) --json 2>"$tmp/eval.err")" \
        || true
    if ! line="$(printf '%s' "$json" | "$py" -c '
import json, math, sys
m = json.load(sys.stdin)
v = [float(m["sliced_w2"]), float(m["mmd2"])]
assert all(math.isfinite(x) for x in v), v
print(*sys.argv[1:], *v)
' "$1" "$2" "$3" 2>/dev/null)" || [ -z "$line" ]; then
        echo "quality_datasets: no score line for set $1, $2, seed $3:" >&2
        cat "$tmp/eval.err" >&2
        exit 1
    fi
    echo "$line" >>"$tmp/scores.txt"
    [ -z "$keep" ] || echo "$line" >>"$keep/scores.txt"
}

: >"$tmp/scores.txt"
if [ -n "${SCORES:-}" ]; then
    cp "$SCORES" "$tmp/scores.txt"
    present=""
    for set in $sets; do
        grep -q "^$set " "$tmp/scores.txt" && present="$present $set"
    done
    sets="${present# }"
    seeds="$(awk '{print $3}' "$tmp/scores.txt" | awk '!seen[$0]++' | tr '\n' ' ')"
fi
for set in $sets; do
    [ -z "${SCORES:-}" ] || break
    for seed in $seeds; do
        t0=$SECONDS
        run="$tmp/${set}_$seed"
        step "pytorch train $set seed $seed" "$py" "$ref" --threads "$torch_threads" train --data "$set" \
            --seed "$seed" --out "$run.torch.safetensors" --losses "$run.torch.losses.csv" \
            "${ema[@]}"
        step "pytorch sample $set seed $seed" "$py" "$ref" --threads "$torch_threads" sample \
            --model "$run.torch.safetensors" --n 10000 --seed "$seed" --out "$run.pytorch.csv"
        score "$set" pytorch "$seed" "$run.pytorch.csv"
        t1=$SECONDS

        step "ours train $set seed $seed" "$bin" train --data "$set" --seed "$seed" \
            --threads "$ours_threads" --out "$run.ours.tdm" "${ema[@]}"
        step "ours sample $set seed $seed" "$bin" sample --model "$run.ours.tdm" -n 10000 \
            --seed "$seed" --threads "$ours_threads" --out "$run.ours.csv"
        score "$set" ours "$seed" "$run.ours.csv"

        if [ -n "$keep" ] && [ "$seed" = "$first_seed" ]; then
            cp "$run.pytorch.csv" "$keep/${set}_pytorch.csv"
            cp "$run.ours.csv" "$keep/${set}_ours.csv"
        fi
        echo "quality_datasets: $set seed $seed done (pytorch $((t1 - t0)) s, ours" \
            "$((SECONDS - t1)) s; $((SECONDS - start)) s so far)" >&2
    done
done

"$py" - "$tmp/scores.txt" "$sets" "$seeds" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
sets, seeds = sys.argv[2].split(), sys.argv[3].split()
got = {(s, side, seed): (float(w), float(m)) for s, side, seed, w, m in rows}
# Each set's seeds: those both sides were scored on (a merged file may hold more for one set).
both = {s: [x for x in seeds if (s, "ours", x) in got and (s, "pytorch", x) in got] for s in sets}
missing = [s for s in sets if not both[s]]
if missing:
    sys.exit("quality_datasets: no seed with both sides' score lines for " + ", ".join(missing))

def f(v):
    return f"{v:.4g}"

print(f"| set | seeds | SW2 ours | SW2 PyTorch | SW2 PyTorch min–max | MMD² ours | MMD² PyTorch "
      f"| MMD² PyTorch min–max | ours vs PyTorch's spread |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for s in sets:
    line, worse = [s, str(len(both[s]))], []
    for i, name in ((0, "SW2"), (1, "MMD²")):
        ours = statistics.fmean(got[(s, "ours", seed)][i] for seed in both[s])
        torch = [got[(s, "pytorch", seed)][i] for seed in both[s]]
        line += [f(ours), f(statistics.fmean(torch)), f"{f(min(torch))}–{f(max(torch))}"]
        if ours > max(torch):
            worse.append(name)
    line.append(f"worse ({', '.join(worse)})" if worse else "within/better")
    print("| " + " | ".join(line) + " |")
EOF
echo "quality_datasets: $(wc -w <<<"$sets") sets x $(wc -w <<<"$seeds") seeds in" \
    "$((SECONDS - start)) s" >&2
