#!/usr/bin/env bash
# The project's test command (README, CI): installs what the tests need — thumb targets,
# QEMU, NVRTC — then builds the no_std core for both microcontroller targets and the
# firmware's real-board images, and runs every
# test of the workspace in release mode (the bit-identity runs are too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-firmware-tools.sh
# NVRTC (from PyPI) lets the CUDA tests compile every kernel on a machine without a GPU.
eval "$(scripts/install-nvrtc.sh)"

for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    cargo build --release -p tinyddpm-core --target "$target"
done
# The firmware's real-board builds (RTT through a probe instead of semihosting), compiled,
# not run: the M4F with the float and the integer model, the M0 with its default, the
# integer seed model. (From firmware/, whose .cargo/config.toml holds the link flags.)
for build in "thumbv7em-none-eabihf models/seed.tdm" "thumbv7em-none-eabihf models/seed.q.tdm" \
    "thumbv6m-none-eabi models/seed.q.tdm"; do
    read -r target model <<<"$build"
    (cd firmware && TINYDDPM_MODEL="$PWD/$model" cargo build --release --target "$target" \
        --no-default-features --features rtt)
done
# tests/cuda-emu (a workspace member) runs the CUDA kernels on the CPU; it runs again below
# built with AddressSanitizer and UndefinedBehaviorSanitizer, where an access past a buffer
# or a shared array, or undefined behaviour, in a kernel stops the test.
cargo test --workspace --release
cargo test --release -p tinyddpm-cuda-emu --features sanitize
# The GPU-only tests pass without a GPU; show what they skipped.
cargo test --release --test cuda -- --nocapture 2>&1 | grep -i "skipped" || true
