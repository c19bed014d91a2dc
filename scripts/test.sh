#!/usr/bin/env bash
# The project's test command (README, CI): installs what the tests need — thumb targets,
# QEMU, NVRTC — then builds the no_std core for both microcontroller targets and runs every
# test of the workspace in release mode (the bit-identity runs are too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-firmware-tools.sh
# NVRTC (from PyPI) lets the CUDA tests compile every kernel on a machine without a GPU.
eval "$(scripts/install-nvrtc.sh)"

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    cargo build --release -p tinyddpm-core --target "$target"
done
# tests/cuda-emu (a workspace member) runs the CUDA kernels on the CPU; it runs again below
# built with AddressSanitizer and UndefinedBehaviorSanitizer, where an access past a buffer
# or a shared array, or undefined behaviour, in a kernel stops the test.
cargo test --workspace --release
cargo test --release -p tinyddpm-cuda-emu --features sanitize
# The GPU-only tests pass without a GPU; show what they skipped.
cargo test --release --test cuda -- --nocapture 2>&1 | grep -i "skipped" || true
