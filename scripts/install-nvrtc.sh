#!/usr/bin/env bash
# Installs NVIDIA's NVRTC runtime library (PyPI wheel `nvidia-cuda-nvrtc-cu12`) outside the
# source tree so the CUDA kernels can be compiled, and the compile test run, on machines
# without a GPU or a CUDA toolkit. Idempotent: a second run only re-checks and re-prints.
#
# The 12.x wheel matches cudarc's `cuda-12080` feature, which looks for `libnvrtc.so` and
# `libnvrtc.so.12`; the wheel ships only the versioned name, so a `libnvrtc.so` link is made
# next to it.
#
# Usage:  eval "$(scripts/install-nvrtc.sh)"   (stdout is the `export LD_LIBRARY_PATH=…` line
#                                              to use; messages go to stderr)
# Env:    NVRTC_DIR      where to install (default ~/.cache/tinyddpm-nvrtc)
#         NVRTC_VERSION  wheel version (default 12.8.93, the release matching cuda-12080)
set -euo pipefail

dir="${NVRTC_DIR:-$HOME/.cache/tinyddpm-nvrtc}"
version="${NVRTC_VERSION:-12.8.93}"
lib="$dir/nvidia/cuda_nvrtc/lib"

if [[ ! -e "$lib/libnvrtc.so.12" || "$(cat "$dir/.version" 2>/dev/null)" != "$version" ]]; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --no-deps --upgrade --target "$dir" "nvidia-cuda-nvrtc-cu12==$version" >&2
    echo "$version" >"$dir/.version"
fi
if [[ ! -e "$lib/libnvrtc.so.12" ]]; then
    echo "install-nvrtc: $lib/libnvrtc.so.12 missing after installing the wheel" >&2
    exit 1
fi
ln -sfn libnvrtc.so.12 "$lib/libnvrtc.so"

echo "install-nvrtc: NVRTC $version in $lib" >&2
echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
