#!/usr/bin/env bash
# Installs what the firmware build and its QEMU test (tests/firmware.rs) need: the Cortex-M
# Rust targets (M4F, M0, M33), llvm-tools (for `llvm-size` / `llvm-objdump` on the image), and
# QEMU's ARM system emulator. Idempotent: each step is skipped when already done.
set -euo pipefail

targets=(thumbv7em-none-eabihf thumbv6m-none-eabi thumbv8m.main-none-eabihf)
installed=$(rustup target list --installed)
for target in "${targets[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
        rustup target add "$target"
    fi
done

if ! rustup component list --installed | grep -q '^llvm-tools'; then
    rustup component add llvm-tools
fi

if ! command -v qemu-system-arm >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends qemu-system-arm
fi

qemu-system-arm --version | head -n 1
