#!/usr/bin/env bash
# Training speed side by side, per model shape: the seed notebook's PyTorch loop
# (`benches/reference/ddpm.py bench-train`: batch 128, 2 threads) and our trainer (`cargo
# bench --bench train`, which also measures this machine's multiply-add peak in its own
# process), then for each shape the ratio of their best and of their median milliseconds per
# step, and our fraction of the peak on 1 and 2 threads.
#
#   benches/vs_torch_train.sh                          # the seed shape; the venv: benches/torch_env.sh
#   SHAPES="128x3x2 64x3x2 256x3x2 128x3x16" benches/vs_torch_train.sh   # H×B×D each
#   TORCH_STEPS=200 benches/vs_torch_train.sh          # shorter PyTorch runs (default 2000 steps)
#
# The machine is shared: both sides report the best and the median of repeated runs, and the
# load average is printed with them. Exits 0 with a message when PyTorch is not installed;
# exits 1 naming the shape when either side printed no result for it.
set -euo pipefail

# shellcheck source=benches/torch_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" vs_torch_train

shapes="${SHAPES:-128x3x2}"
field() { # field NAME LINE: the value of NAME=… in LINE
    printf '%s\n' "$2" | sed -nE "s/.*[ (]$1=([0-9.]+).*/\1/p"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A torch_best torch_median
for shape in $shapes; do
    IFS=x read -r h b d <<<"$shape"
    echo "== PyTorch $shape: ddpm.py --threads 2 bench-train --hidden $h --blocks $b --dim $d --steps ${TORCH_STEPS:-2000} --repeats 3"
    json="$("$py" "$ref" --threads 2 bench-train --hidden "$h" --blocks "$b" --dim "$d" \
        --steps "${TORCH_STEPS:-2000}" --repeats 3 | tail -n 1)" || true
    echo "$json"
    if ! best="$(printf '%s' "$json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step_best"])' 2>/dev/null)"; then
        echo "vs_torch_train: PyTorch printed no result for shape $shape" >&2
        exit 1
    fi
    torch_best[$shape]="$best"
    torch_median[$shape]="$(printf '%s' "$json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')"
done

echo "== tinyddpm: TRAIN_SHAPES=${shapes// /,} cargo bench --bench train"
ours="$(cd "$root" && TRAIN_SHAPES="${shapes// /,}" cargo bench -p tinyddpm --bench train 2>/dev/null | grep '^train shape=' || true)"
echo "$ours"

echo "== summary (2 threads each side unless named; fraction of the same-process peak, unfused / fused)"
printf '%-10s %12s %12s %8s %8s %18s %18s\n' shape "PyTorch ms" "ours ms" best× median× "2 threads peak" "1 thread peak"
for shape in $shapes; do
    two="$(printf '%s\n' "$ours" | grep "^train shape=$shape threads=2 " || true)"
    one="$(printf '%s\n' "$ours" | grep "^train shape=$shape threads=1 " || true)"
    if [ -z "$two" ] || [ -z "$one" ]; then
        echo "vs_torch_train: cargo bench --bench train printed no summary line for shape $shape" >&2
        exit 1
    fi
    awk -v s="$shape" -v t="${torch_best[$shape]}" -v tm="${torch_median[$shape]}" \
        -v o="$(field ms_best "$two")" -v om="$(field ms_median "$two")" \
        -v u2="$(field unfused_peak "$two")" -v f2="$(field fused_peak "$two")" \
        -v u1="$(field unfused_peak "$one")" -v f1="$(field fused_peak "$one")" 'BEGIN {
        printf "%-10s %12.3f %12.3f %7.1fx %7.1fx %8s%% / %3s%% %8s%% / %3s%%\n", s, t, o, t / o, tm / om, u2, f2, u1, f1
    }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
