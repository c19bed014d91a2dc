#!/usr/bin/env bash
# The CUDA backend's checks and benchmarks, for a machine with an NVIDIA GPU (issue 6).
#
#   1. builds the CUDA test target and the CLI (release);
#   2. runs every CUDA test, GPU-only ones included (bit-identical sampling for every
#      sampler, the training kernels against the CPU references);
#   3. times the seed jobs on the GPU: 10,000 training steps at batch 128 (CUDA graph
#      replay, plus 1,000 steps with plain launches for comparison) and 10,000 samples ×
#      1,000 DDPM steps — targets on an H200: ≤ 1 s and ≤ 0.2 s;
#   4. scores the GPU-trained model against a CPU-trained one with `tinyddpm eval`;
#   5. times PyTorch's notebook code on the same GPU for the ratios
#      (`benches/reference/ddpm.py gpu-bench`).
#
# Usage: benches/gpu.sh [OUT_DIR]      (default target/gpu-bench; a log goes there too)
# Env:   NVRTC_LIB_DIR        folder holding libnvrtc.so (default: the CUDA toolkit's lib64)
#        TORCH_VENV           the PyTorch venv for step 5 (see benches/torch_env.sh); its torch
#                             must be a CUDA build (PyPI's Linux wheel is)
#        CARGO_TARGET_DIR     as usual; without cargo on the machine, set CUDA_TEST_BIN,
#                             CUDA_BENCH_BIN and TINYDDPM_BIN to prebuilt release binaries instead
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-target/gpu-bench}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee "$out/gpu.log") 2>&1

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
if command -v cargo >/dev/null; then
    cargo build --release -p tinyddpm --bin tinyddpm
    target="${CARGO_TARGET_DIR:-target}"
    TINYDDPM_BIN="${TINYDDPM_BIN:-$target/release/tinyddpm}"
    CUDA_TEST_BIN="${CUDA_TEST_BIN:-$(cargo test --release -p tinyddpm --test cuda --no-run 2>&1 |
        sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)}"
fi
: "${CUDA_TEST_BIN:?no cargo here: set CUDA_TEST_BIN to a prebuilt cuda test binary}"
: "${TINYDDPM_BIN:?no cargo here: set TINYDDPM_BIN to a prebuilt tinyddpm binary}"
tinyddpm="$TINYDDPM_BIN"
echo "tests: $CUDA_TEST_BIN"

echo "== CUDA tests (none may print 'skipped' on a GPU machine)"
"$CUDA_TEST_BIN" --nocapture --test-threads 1 2>&1 | tee "$out/tests.log"
if grep -E "skipped: (no CUDA device|NVRTC)" "$out/tests.log"; then
    echo "FAIL: GPU tests were skipped on a GPU machine" >&2
    exit 1
fi

if command -v compute-sanitizer >/dev/null; then
    echo "== compute-sanitizer (memcheck, racecheck) on the small GPU tests"
    for tool in memcheck racecheck; do
        compute-sanitizer --tool "$tool" --error-exitcode 1 "$CUDA_TEST_BIN" --exact \
            gpu_sampling_from_given_starts_matches_sample_from \
            gpu_training_step_matches_cpu_references --test-threads 1
    done
fi

echo "== GPU timings (seed jobs)"
TINYDDPM_BENCH_DIR="$out" "${CUDA_BENCH_BIN:-$(cargo bench -p tinyddpm --bench cuda --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)}"

echo "== quality: GPU-trained vs CPU-trained model (same seed, same CLI sampler)"
"$tinyddpm" train --device cpu --steps 10000 --out "$out/cpu_model.tdm"
for who in gpu cpu; do
    "$tinyddpm" sample --device cpu --model "$out/${who}_model.tdm" -n 10000 --seed 1 \
        --sampler ddpm --out "$out/${who}_cli_samples.csv"
    echo "-- $who-trained model:"
    "$tinyddpm" eval --samples "$out/${who}_cli_samples.csv"
done
# The GPU sampler's output is bit-identical to the CPU sampler's for the same model/seed.
if cmp -s <(tail -n +2 "$out/gpu_samples.csv") <(tail -n +2 "$out/gpu_cli_samples.csv"); then
    echo "GPU samples == CPU samples (same bits)"
else
    echo "note: GPU and CLI sample files differ in text (compare values, e.g. formatting)"
fi

echo "== PyTorch on the same GPU"
# Without the venv this prints how to make it and ends the script (exit 0).
# shellcheck source=benches/torch_env.sh
. benches/torch_env.sh gpu.sh
if ! "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "skipped: the torch in $venv cannot use a CUDA device (set TORCH_VENV to a CUDA build's venv)"
    exit 0
fi
# The notebook's training and sampling code on the GPU, timed after a warm-up.
"$py" "$ref" --threads "$(nproc)" gpu-bench

echo "== ratios"
python3 - "$out/gpu.log" <<'PY'
import json, re, sys
log = open(sys.argv[1]).read()
ours_train = float(re.search(r"gpu-train steps=10000 .*? seconds=([0-9.]+)", log).group(1))
ours_sample = float(re.search(r"gpu-sample-ddpm n=10000 steps=1000 seconds=([0-9.]+)", log).group(1))
torch = json.loads(re.findall(r'^\{"what": "torch-gpu".*$', log, re.M)[-1])
print(f"training 10,000 steps: ours {ours_train:.3f} s, PyTorch {torch['train_10000_steps_s']:.3f} s, "
      f"{torch['train_10000_steps_s'] / ours_train:.1f}x faster (target <= 1 s)")
print(f"sampling 10,000 x 1,000 DDPM: ours {ours_sample:.4f} s, PyTorch "
      f"{torch['sample_ddpm_10000x1000_s']:.4f} s, "
      f"{torch['sample_ddpm_10000x1000_s'] / ours_sample:.1f}x faster (target <= 0.2 s)")
PY
