# shellcheck shell=bash disable=SC2154  # root and bin are set by the sourcing script
# Sourced by the quality scripts after they set `root` and `bin`: `seed_model SEED` prints the
# path of the model trained with the seed recipe (10,000 steps, or $STEPS, batch 128, lr 1e-3)
# and that seed, training it first when absent. The models live in one folder shared by every
# script ($MODELS, default target/seed-models), so each is trained once.
models="${MODELS:-$root/target/seed-models}"
mkdir -p "$models"

seed_model() {
    local steps="${STEPS:-10000}"
    local model="$models/model_seed$1_steps$steps.tdm"
    if [ ! -f "$model" ]; then
        "$bin" train --seed "$1" --steps "$steps" --out "$model" \
            --losses "$models/losses_seed$1_steps$steps.csv" >/dev/null
    fi
    echo "$model"
}
