#!/usr/bin/env bash
# Sample quality against network evaluations, for every sampler: the README's four models (the
# seed recipe — 10,000 steps, batch 128, lr 1e-3 — with seeds 42, 1, 2, 3), 10,000 samples each,
# DDPM-1000 as the line to reach and DDIM and each multistep solver at K = 5, 10, 20, 50 (their
# default placements), every set scored by `tinyddpm eval`. Writes one CSV row per (sampler, K,
# seed) and the four-seed means, prints the means as a Markdown table, and draws them with
# `tinyddpm plot quality`.
#
#   benches/quality_samplers.sh [OUT_DIR]         # default target/quality; docs/quality.png
#   SEEDS="1 2" KS="10 20" benches/quality_samplers.sh
#   EXTRA="dpmpp-3m:20:karras unipc:20:karras" benches/quality_samplers.sh   # more rows
#   STEPS=500 SEEDS=1 KS=5 benches/quality_samplers.sh /tmp/q      # a quick look at the wiring
#
# The trained models are kept in target/seed-models (benches/seed_models.sh, shared with
# benches/quality_int.sh) and reused by a later run. About 5 minutes on two
# cores (four 10,000-step trainings, then ~6e7 sample-steps).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/quality}"
seeds="${SEEDS:-42 1 2 3}"
ks="${KS:-5 10 20 50}"
samplers="${SAMPLERS:-ddim dpmpp-2m dpmpp-3m dpmpp-2m-sde unipc}"
mkdir -p "$out"

(cd "$root" && cargo build -q --release -p tinyddpm)
bin="${CARGO_TARGET_DIR:-$root/target}/release/tinyddpm"
. "$root/benches/seed_models.sh"

# Configurations: sampler:K[:spacing]; DDPM runs all 1,000 timesteps.
configs=(ddpm:1000)
for s in $samplers; do
    for k in $ks; do configs+=("$s:$k"); done
done
# shellcheck disable=SC2206  # EXTRA is a space-separated list on purpose
configs+=(${EXTRA:-})

rows="$out/quality_runs.csv"
echo "sampler,steps,spacing,seed,mean_distance,p95_distance,energy_distance,coverage_ks" >"$rows"
for seed in $seeds; do
    model="$(seed_model "$seed")"
    for config in "${configs[@]}"; do
        IFS=: read -r sampler k spacing <<<"$config"
        args=(--sampler "$sampler")
        [ "$sampler" = ddpm ] || args+=(--steps "$k")
        [ -z "$spacing" ] || args+=(--spacing "$spacing")
        "$bin" sample --model "$model" -n 10000 --seed "$seed" "${args[@]}" \
            --out "$out/samples.csv" >/dev/null
        json="$("$bin" eval --samples "$out/samples.csv" --json)"
        value() { sed -E "s/.*\"$1\":([^,}]*).*/\1/" <<<"$json"; }
        echo "$sampler,$k,${spacing:-default},$seed,$(value mean_distance),$(value p95_distance),$(value energy_distance),$(value coverage_ks)" |
            tee -a "$rows"
    done
done
rm -f "$out/samples.csv"

# Four-seed means, one row per configuration, in the order run.
means="$out/quality.csv"
awk -F, 'NR > 1 {
    key = $1 "," $2 "," $3
    if (!(key in n)) order[++count] = key
    n[key]++; m[key] += $5; p[key] += $6; e[key] += $7; c[key] += $8
} END {
    print "sampler,evaluations,mean_distance,p95_distance,energy_distance,coverage_ks"
    for (i = 1; i <= count; i++) {
        k = order[i]
        split(k, f, ",")
        label = f[1]; if (f[3] != "default") label = label " (" f[3] ")"
        printf "%s,%s,%.5f,%.5f,%.5f,%.4f\n", label, f[2], m[k] / n[k], p[k] / n[k], e[k] / n[k], c[k] / n[k]
    }
}' "$rows" >"$means"

echo
echo "| sampler | network evaluations | mean dist. | p95 dist. | energy | coverage KS |"
echo "|---|---|---|---|---|---|"
awk -F, 'NR > 1 { printf "| %s | %s | %.4f | %.4f | %.4f | %.3f |\n", $1, $2, $3, $4, $5, $6 }' "$means"

# The figure: the sweeps over K at each sampler's default placement (EXTRA rows are table-only).
grep -v '(' "$means" >"$out/quality_sweep.csv"
"$bin" plot quality --table "$out/quality_sweep.csv" --out "${FIGURE:-$root/docs/quality.png}"
