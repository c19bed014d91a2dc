#!/usr/bin/env bash
# The CUDA backend's checks and benchmarks, for a machine with an NVIDIA GPU.
#
#   1. builds the CLI, the CUDA test target and the CUDA benchmark (release, one cargo run);
#   2. runs every CUDA test, GPU-only ones included (bit-identical sampling for every
#      sampler, the training kernels against the CPU references);
#   3. runs two small GPU tests under compute-sanitizer (memcheck, racecheck), if installed;
#   4. times the seed jobs on the GPU: 10,000 training steps at batch 128 (CUDA graph
#      replay, plus 1,000 steps with plain launches for comparison) and 10,000 samples ×
#      1,000 DDPM steps — targets on an H200: ≤ 1 s and ≤ 0.2 s;
#   5. scores the GPU-trained model against a CPU-trained one with `tinyddpm eval`, and checks
#      that the GPU's samples are the CPU sampler's bits;
#   6. times PyTorch's notebook code on the same GPU for the ratios
#      (`benches/reference/ddpm.py gpu-bench`).
#
# Every step runs whatever the earlier ones gave, under a time limit taken from one deadline, so
# the whole script ends within 8 minutes on one H200 (builds included) and closes with a
# verdict: each check passed, failed or skipped, with why, and each timing against its target.
# It exits 1 when a check failed.
#
# Usage: benches/gpu.sh [OUT_DIR]      (default target/gpu-bench; a log goes there too)
# Env:   NVRTC_LIB_DIR        folder holding libnvrtc.so (default: the CUDA toolkit's lib64)
#        TORCH_VENV           the PyTorch venv for step 6 (see benches/torch_env.sh); its torch
#                             must be a CUDA build (PyPI's Linux wheel is)
#        CARGO_TARGET_DIR     as usual
#        CUDA_TEST_BIN, CUDA_BENCH_BIN, TINYDDPM_BIN
#                             prebuilt release binaries (the cuda test, the cuda benchmark, the
#                             CLI) to use instead of building: needed without cargo
#        GPU_SH_SECONDS       the deadline (default 470: 8 minutes less a margin)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

out="${1:-target/gpu-bench}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee "$out/gpu.log") 2>&1

deadline=$((SECONDS + ${GPU_SH_SECONDS:-470}))
verdict=()
failed=0
# record STATUS TEXT: one verdict line (PASS, FAIL, SKIP or INFO).
record() {
    verdict+=("$(printf '%-4s  %s' "$1" "$2")")
    if [[ "$1" == FAIL ]]; then failed=1; fi
}
# limited SECONDS CMD...: runs CMD for at most SECONDS, or what is left before the deadline
# (status 124 when it ran out of time; 125 when no time was left to start it).
limited() {
    local want=$1 left=$((deadline - SECONDS))
    shift
    ((left < want)) && want=$left
    if ((want <= 0)); then
        echo "out of time: not started: $*"
        return 125
    fi
    timeout --kill-after=10 "$want" "$@"
}
# why STATUS: an exit status in words.
why() {
    case $1 in
    124) echo "ran out of time" ;;
    125) echo "no time left to start" ;;
    *) echo "exit status $1" ;;
    esac
}

# NVRTC: cudarc's 12.x bindings look for libnvrtc.so / libnvrtc.so.12 on the library path.
nvrtc_dir="${NVRTC_LIB_DIR:-}"
if [[ -z "$nvrtc_dir" ]]; then
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        if compgen -G "$d/libnvrtc.so*" >/dev/null; then nvrtc_dir="$d"; break; fi
    done
fi
if [[ -n "$nvrtc_dir" ]]; then
    export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "NVRTC from: ${nvrtc_dir:-library path}"

echo "== build"
if command -v cargo >/dev/null && [[ -z "${CUDA_TEST_BIN:-}${CUDA_BENCH_BIN:-}${TINYDDPM_BIN:-}" ]]; then
    # One cargo run for the three binaries; their paths come from cargo's JSON messages.
    limited 300 cargo build --release -p tinyddpm --bin tinyddpm --test cuda --bench cuda \
        --message-format=json-render-diagnostics >"$out/build.json"
    status=$?
    if ((status == 0)); then
        record PASS "build (${SECONDS} s)"
        executable() { # KIND NAME
            python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("executable") and sys.argv[2] in t.get("kind", []) and t.get("name") == sys.argv[3]:
        print(m["executable"])' "$out/build.json" "$1" "$2" | tail -1
        }
        TINYDDPM_BIN="$(executable bin tinyddpm)"
        CUDA_TEST_BIN="$(executable test cuda)"
        CUDA_BENCH_BIN="$(executable bench cuda)"
    else
        record FAIL "build: $(why $status)"
    fi
fi
tinyddpm="${TINYDDPM_BIN:-}"
for bin in "$tinyddpm" "${CUDA_TEST_BIN:-}" "${CUDA_BENCH_BIN:-}"; do
    if [[ -z "$bin" || ! -x "$bin" ]]; then
        record FAIL "binaries: set CUDA_TEST_BIN, CUDA_BENCH_BIN and TINYDDPM_BIN (or install cargo)"
        break
    fi
done
echo "tinyddpm: $tinyddpm; tests: ${CUDA_TEST_BIN:-}; bench: ${CUDA_BENCH_BIN:-}"

echo "== CUDA tests (none may print 'skipped' on a GPU machine)"
if [[ -x "${CUDA_TEST_BIN:-}" ]]; then
    limited 120 "$CUDA_TEST_BIN" --nocapture --test-threads 1 >"$out/tests.log" 2>&1
    status=$?
    cat "$out/tests.log"
    passed="$(grep -o '[0-9]* passed' "$out/tests.log" | tail -1)"
    if ((status != 0)); then
        record FAIL "CUDA tests: $(why $status) (see tests.log)"
    elif grep -qE "skipped: (no CUDA device|NVRTC)" "$out/tests.log"; then
        record FAIL "CUDA tests: the GPU tests were skipped ($(grep -m1 -oE 'skipped: .*' "$out/tests.log"))"
    else
        record PASS "CUDA tests: ${passed:-?}, bit-identical sampling and training checks included"
    fi
else
    record SKIP "CUDA tests: no test binary"
fi

echo "== compute-sanitizer (memcheck, racecheck) on two small GPU tests"
if ! command -v compute-sanitizer >/dev/null; then
    record SKIP "compute-sanitizer: not installed"
elif [[ -x "${CUDA_TEST_BIN:-}" ]]; then
    for tool in memcheck racecheck; do
        limited 90 compute-sanitizer --tool "$tool" --error-exitcode 1 "$CUDA_TEST_BIN" --exact \
            gpu_sampling_from_given_starts_matches_sample_from \
            gpu_training_step_matches_cpu_references --test-threads 1
        status=$?
        if ((status == 0)); then
            record PASS "compute-sanitizer $tool"
        else
            record FAIL "compute-sanitizer $tool: $(why $status)"
        fi
    done
fi

echo "== GPU timings (seed jobs)"
train_s="" sample_s=""
if [[ -x "${CUDA_BENCH_BIN:-}" ]]; then
    TINYDDPM_BENCH_DIR="$out" limited 90 "$CUDA_BENCH_BIN" >"$out/bench.log" 2>&1
    status=$?
    cat "$out/bench.log"
    train_s="$(sed -n 's/^gpu-train steps=10000 .* seconds=\([0-9.]*\).*/\1/p' "$out/bench.log")"
    sample_s="$(sed -n 's/^gpu-sample-ddpm n=10000 steps=1000 seconds=\([0-9.]*\).*/\1/p' "$out/bench.log")"
    if ((status != 0)); then
        record FAIL "GPU benchmark: $(why $status) (see bench.log)"
    elif grep -q '^skipped' "$out/bench.log"; then
        record FAIL "GPU benchmark: $(grep -m1 '^skipped' "$out/bench.log")"
    fi
    # at_most NAME SECONDS TARGET
    at_most() {
        if [[ -z "$2" ]]; then
            record FAIL "$1: not measured"
        elif python3 -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' "$2" "$3"; then
            record PASS "$1: $2 s (target <= $3 s)"
        else
            record FAIL "$1: $2 s (target <= $3 s)"
        fi
    }
    at_most "10,000 training steps on the GPU" "$train_s" 1
    at_most "10,000 x 1,000 DDPM samples on the GPU" "$sample_s" 0.2
else
    record SKIP "GPU timings: no benchmark binary"
fi

echo "== quality: GPU-trained vs CPU-trained model (same seed, same CLI sampler)"
if [[ -x "$tinyddpm" && -f "$out/gpu_model.tdm" ]]; then
    # shellcheck disable=SC2016 # $1 and $2 are the inner script's
    limited 150 bash -ec '
        "$1" train --device cpu --steps 10000 --out "$2/cpu_model.tdm" >/dev/null
        for who in gpu cpu; do
            "$1" sample --device cpu --model "$2/${who}_model.tdm" -n 10000 --seed 1 \
                --sampler ddpm --out "$2/${who}_cli_samples.csv"
            "$1" eval --samples "$2/${who}_cli_samples.csv" --json >"$2/${who}_eval.json"
        done' quality "$tinyddpm" "$out"
    status=$?
    if ((status != 0)); then
        record FAIL "quality run: $(why $status)"
    else
        # The two runs differ only in rounding (the trainers agree to a part in 10^7 per step
        # in the emulated tests), so their models sample alike; a broken GPU trainer's model
        # scores far worse.
        line="$(python3 - "$out" <<'PY'
import json, sys
gpu = json.load(open(f"{sys.argv[1]}/gpu_eval.json"))
cpu = json.load(open(f"{sys.argv[1]}/cpu_eval.json"))
ok = (gpu["mean_distance"] <= 1.5 * cpu["mean_distance"] + 0.01
      and gpu["energy_distance"] <= 2.0 * cpu["energy_distance"] + 0.005)
print(("PASS" if ok else "FAIL") + f" quality of the GPU-trained model: mean distance {gpu['mean_distance']:.4f}, "
      f"energy distance {gpu['energy_distance']:.5f} (CPU-trained {cpu['mean_distance']:.4f}, "
      f"{cpu['energy_distance']:.5f}; bound 1.5x + 0.01 and 2x + 0.005)")
PY
)"
        record "${line%% *}" "${line#* }"
    fi
    # The GPU sampler's output (written by the benchmark) is the CPU sampler's, bit for bit:
    # both files hold the same model's samples 0 … 9,999 of seed 1 in shortest round-trip form.
    if [[ -f "$out/gpu_samples.csv" && -f "$out/gpu_cli_samples.csv" ]]; then
        if cmp -s <(tail -n +2 "$out/gpu_samples.csv") <(tail -n +2 "$out/gpu_cli_samples.csv"); then
            record PASS "GPU samples are the CPU sampler's bits (10,000 DDPM samples)"
        else
            record FAIL "GPU samples differ from the CPU sampler's (gpu_samples.csv, gpu_cli_samples.csv)"
        fi
    fi
else
    record SKIP "quality: no GPU-trained model from the benchmark"
fi

echo "== PyTorch on the same GPU"
# torch_env.sh ends its shell (exit 0) when the venv is missing: source it in a subshell.
(
    # shellcheck source=benches/torch_env.sh disable=SC2154 # py, venv and ref come from it
    . benches/torch_env.sh gpu.sh
    if ! "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        echo "gpu.sh: skipped, the torch in $venv cannot use a CUDA device (set TORCH_VENV to a CUDA build's venv)"
        exit 0
    fi
    # The notebook's training and sampling code on the GPU, timed after a warm-up.
    limited 150 "$py" "$ref" --threads "$(nproc)" gpu-bench
) >"$out/torch.log" 2>&1
status=$?
cat "$out/torch.log"
torch_json="$(grep -E '^\{"what": "torch-gpu"' "$out/torch.log" | tail -1)"
if [[ -n "$torch_json" ]]; then
    ratios="$(python3 - "$torch_json" "$train_s" "$sample_s" <<'PY'
import json, sys
torch = json.loads(sys.argv[1])
for what, key, ours in (("training 10,000 steps", "train_10000_steps_s", sys.argv[2]),
                        ("sampling 10,000 x 1,000 DDPM", "sample_ddpm_10000x1000_s", sys.argv[3])):
    theirs = torch[key]
    if ours:
        print(f"{what}: PyTorch {theirs:.3f} s, ours {float(ours):.4f} s: {theirs / float(ours):.1f}x faster")
    else:
        print(f"{what}: PyTorch {theirs:.3f} s, ours not measured")
PY
)"
    while IFS= read -r line; do record INFO "$line"; done <<<"$ratios"
elif grep -q "skipped" "$out/torch.log"; then
    record SKIP "PyTorch ratios: $(grep -m1 skipped "$out/torch.log")"
else
    record FAIL "PyTorch gpu-bench: $(why $status) (see torch.log)"
fi

echo
echo "== verdict (${SECONDS} s; log in $out)"
printf '%s\n' "${verdict[@]}"
exit "$failed"
