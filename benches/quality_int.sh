#!/usr/bin/env bash
# The integer model against its float parent: the README's four models (the seed recipe —
# 10,000 steps, batch 128, lr 1e-3 — with seeds 42, 1, 2, 3), each quantized by
# `tinyddpm quantize` (default calibration), 10,000 samples of each model with DDPM-1000 and
# with the best few-step sampler (dpmpp-2m-sde, 20 steps), the same seed and noise streams for
# both kinds, every set scored by `tinyddpm eval`. Writes one CSV row per (sampler, seed, kind)
# with the sampling time, prints the float/int table per seed, the four-seed means against the
# goal (mean and p95 distance within 10 % of the float model's, coverage KS within +0.02,
# energy distance within the float runs' spread), and the integer/float speed of `sample`
# (float and integer runs alternate, so both see the same load), and draws seed 42's DDPM
# samples of both kinds side by side.
#
#   benches/quality_int.sh [OUT_DIR]          # default target/quality_int; docs/quality_int.png
#   SEEDS="1 2" benches/quality_int.sh
#   STEPS=500 SEEDS=1 COUNT=1000 benches/quality_int.sh /tmp/qi   # a quick look at the wiring
#
# The trained models are kept in target/seed-models (benches/seed_models.sh, shared with
# benches/quality_samplers.sh), trained once and reused. About
# 3 minutes on two cores with the models at hand (16 sampling runs of 10,000 samples).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/quality_int}"
seeds="${SEEDS:-42 1 2 3}"
count="${COUNT:-10000}"
threads="${THREADS:-0}"
mkdir -p "$out"

(cd "$root" && cargo build -q --release -p tinyddpm)
bin="${CARGO_TARGET_DIR:-$root/target}/release/tinyddpm"
. "$root/benches/seed_models.sh"

# Configurations: sampler:K; DDPM runs all 1,000 timesteps.
configs=(ddpm:1000 dpmpp-2m-sde:20)
first_seed="${seeds%% *}"

rows="$out/quality_int_runs.csv"
echo "sampler,steps,seed,kind,mean_distance,p95_distance,energy_distance,coverage_ks,seconds" >"$rows"
for seed in $seeds; do
    model="$(seed_model "$seed")"
    "$bin" quantize --model "$model" --out "$out/model_seed$seed.q.tdm" >/dev/null
    for config in "${configs[@]}"; do
        IFS=: read -r sampler k <<<"$config"
        args=(--sampler "$sampler")
        [ "$sampler" = ddpm ] || args+=(--steps "$k")
        for kind in float int; do
            file="$model"
            [ "$kind" = float ] || file="$out/model_seed$seed.q.tdm"
            samples="$out/samples_${kind}_${sampler}_seed$seed.csv"
            begin=$(date +%s.%N)
            "$bin" sample --model "$file" -n "$count" --seed "$seed" --threads "$threads" \
                "${args[@]}" --out "$samples" >/dev/null
            end=$(date +%s.%N)
            json="$("$bin" eval --samples "$samples" --json)"
            value() { sed -E "s/.*\"$1\":([^,}]*).*/\1/" <<<"$json"; }
            echo "$sampler,$k,$seed,$kind,$(value mean_distance),$(value p95_distance),$(value energy_distance),$(value coverage_ks),$(awk "BEGIN { print $end - $begin }")" |
                tee -a "$rows"
            # Only the figure's samples are kept.
            [ "$sampler:$seed" = "ddpm:$first_seed" ] || rm -f "$samples"
        done
    done
done

echo
echo "| seed | sampler | mean dist. float / int | p95 dist. | energy | coverage KS |"
echo "|---|---|---|---|---|---|"
# Rows come in pairs, float then int, of one sampler and seed.
awk -F, 'NR > 1 && $4 == "float" { split($0, f, ",") }
NR > 1 && $4 == "int" {
    printf "| %s | %s-%s | %.4f / %.4f | %.4f / %.4f | %.4f / %.4f | %.3f / %.3f |\n",
        $3, $1, $2, f[5], $5, f[6], $6, f[7], $7, f[8], $8
}' "$rows"

echo
echo "Means over the seeds, integer against float, and the goal:"
awk -F, 'NR > 1 {
    key = $1 "-" $2
    if (!(key in n)) order[++count] = key
    if ($4 == "float") {
        n[key]++
        fm[key] += $5; fp[key] += $6; fe[key] += $7; fk[key] += $8; ft[key] += $9
        if (!(key in emin) || $7 < emin[key]) emin[key] = $7
        if (!(key in emax) || $7 > emax[key]) emax[key] = $7
        if (!(key in fbest) || $9 < fbest[key]) fbest[key] = $9
    } else {
        im[key] += $5; ip[key] += $6; ie[key] += $7; ik[key] += $8; it[key] += $9
        if (!(key in ibest) || $9 < ibest[key]) ibest[key] = $9
    }
} END {
    for (i = 1; i <= count; i++) {
        k = order[i]; c = n[k]
        dm = (im[k] / fm[k] - 1) * 100; dp = (ip[k] / fp[k] - 1) * 100
        dk = (ik[k] - fk[k]) / c; e = ie[k] / c
        printf "| **mean** | %s | %.4f / %.4f (%+.1f %%) | %.4f / %.4f (%+.1f %%) | %.4f / %.4f | %.3f / %.3f (%+.3f) |\n",
            k, fm[k] / c, im[k] / c, dm, fp[k] / c, ip[k] / c, dp, fe[k] / c, e, fk[k] / c, ik[k] / c, dk
        printf "  goal %s: mean distance %s, p95 %s, coverage KS %s, energy %s (float runs %.4f..%.4f)\n", k,
            (dm <= 10 ? "met" : "MISSED"), (dp <= 10 ? "met" : "MISSED"), (dk <= 0.02 ? "met" : "MISSED"),
            (e <= emax[k] ? "met" : "MISSED"), emin[k], emax[k]
    }
    print ""
    print "Speed of `tinyddpm sample` (wall time, float and integer runs alternating):"
    for (i = 1; i <= count; i++) {
        k = order[i]; c = n[k]
        printf "  %s: float %.0f samples/s, int %.0f samples/s (sums over the seeds): int %.2fx float; best runs %.2fx\n",
            k, c * '"$count"' / ft[k], c * '"$count"' / it[k], ft[k] / it[k], fbest[k] / ibest[k]
    }
}' "$rows"

float="$out/samples_float_ddpm_seed$first_seed.csv"
int="$out/samples_int_ddpm_seed$first_seed.csv"
"$bin" plot compare --samples "$int" --against "$float" \
    --labels "float model, DDPM-1000, seed $first_seed" "integer model, DDPM-1000, seed $first_seed" \
    --out "${FIGURE:-$root/docs/quality_int.png}"
