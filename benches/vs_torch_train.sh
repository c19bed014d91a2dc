#!/usr/bin/env bash
# Training speed side by side: PyTorch's seed notebook (`seed_ddpm.py bench-train`: the
# notebook's loop, batch 128, 2 threads) and our trainer (`cargo bench --bench train`),
# one after the other, then the ratios of their best and of their median milliseconds per step.
#
#   benches/vs_torch_train.sh            # TORCH_VENV defaults to /work/torch-venv
#   TORCH_STEPS=2000 benches/vs_torch_train.sh
#
# The machine is shared: both sides report the best and the median of repeated runs, and the
# load average is printed with them. Exits 0 with a message when PyTorch is not installed.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" vs_torch_train

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== PyTorch: seed_ddpm.py bench-train --steps ${TORCH_STEPS:-2000} --repeats 3"
torch_json="$("$py" "$ref" bench-train --steps "${TORCH_STEPS:-2000}" --repeats 3 | tail -n 1)"
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
