#!/usr/bin/env bash
# Training speed side by side: the seed notebook's PyTorch loop (`benches/reference/ddpm.py
# bench-train`: batch 128, 2 threads) and our trainer (`cargo bench --bench train`), one after
# the other, then the ratios of their best and of their median milliseconds per step.
#
#   benches/vs_torch_train.sh            # the venv: see benches/torch_env.sh
#   TORCH_STEPS=200 benches/vs_torch_train.sh   # shorter PyTorch runs (default 2000 steps)
#
# The machine is shared: both sides report the best and the median of repeated runs, and the
# load average is printed with them. Exits 0 with a message when PyTorch is not installed.
set -euo pipefail

# shellcheck source=benches/torch_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" vs_torch_train

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== PyTorch: ddpm.py --threads 2 bench-train --steps ${TORCH_STEPS:-2000} --repeats 3"
torch_json="$("$py" "$ref" --threads 2 bench-train --steps "${TORCH_STEPS:-2000}" --repeats 3 | tail -n 1)"
echo "$torch_json"
torch_ms="$(printf '%s' "$torch_json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step_best"])')"
torch_median="$(printf '%s' "$torch_json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')"

echo "== tinyddpm: cargo bench --bench train"
ours_line="$(cd "$root" && cargo bench -p tinyddpm --bench train 2>/dev/null | grep '^train_step_ms_best=')"
echo "$ours_line"
ours_ms="$(printf '%s' "$ours_line" | sed -E 's/^train_step_ms_best=([0-9.]+).*/\1/')"
ours_median="$(printf '%s' "$ours_line" | sed -E 's/.*train_step_ms_median=([0-9.]+).*/\1/')"

awk -v t="$torch_ms" -v o="$ours_ms" -v tm="$torch_median" -v om="$ours_median" 'BEGIN {
    printf "best:   PyTorch %.3f ms/step, tinyddpm %.3f ms/step: %.1fx faster\n", t, o, t / o
    printf "median: PyTorch %.3f ms/step, tinyddpm %.3f ms/step: %.1fx faster\n", tm, om, tm / om
}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
