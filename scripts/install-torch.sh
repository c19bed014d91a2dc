#!/usr/bin/env bash
# Creates the Python virtualenv that the PyTorch comparison scripts in benches/ and the reference
# program benches/reference/ddpm.py use: CPU PyTorch, NumPy, safetensors and diffusers, each
# held to one major version (the notebook's code and the fixtures were made with torch 2.x and
# diffusers 0.x). Idempotent: when the venv already has all four at those major versions, it
# changes nothing.
#
# torch comes from PyTorch's CPU-only wheel index when that index can be reached (a few hundred
# MB); otherwise from plain PyPI, whose Linux wheel also pulls NVIDIA's CUDA libraries (the venv
# is then about 5.5 GB) and runs on the CPU as well as on a GPU.
#
# Usage: scripts/install-torch.sh
# Env:   TORCH_VENV   where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/tinyddpm/torch-venv,
#                     the place benches/torch_env.sh looks too)
#        PYTHON       the interpreter to build it from (default python3, 3.10 or newer)
set -euo pipefail

venv="${TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tinyddpm/torch-venv}"
python="${PYTHON:-python3}"
cpu_index="https://download.pytorch.org/whl/cpu"
# Major versions only: minor releases keep the APIs the reference uses.
torch_req="torch>=2,<3"
other_reqs=("numpy>=2,<3" "safetensors>=0.4,<1" "diffusers>=0.30,<1")
modules="torch, numpy, safetensors, diffusers"
# Complete = all four import and each has the major version required above.
complete_check="import $modules, sys
majors = {torch: '2', numpy: '2', safetensors: '0', diffusers: '0'}
sys.exit(any(m.__version__.split('.')[0] != v for m, v in majors.items()))"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$complete_check" 2>/dev/null; then
    echo "install-torch: $venv is complete ($("$venv/bin/python" -c \
        'import torch, diffusers; print(f"torch {torch.__version__}, diffusers {diffusers.__version__}")'))"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)

if "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "${pip[@]}" "$torch_req" # a previous run got torch in: pip keeps it if its major version fits
elif "$venv/bin/python" -c "import urllib.request as u; u.urlopen('$cpu_index/', timeout=15)" \
    2>/dev/null; then
    echo "install-torch: torch from the CPU wheel index"
    "${pip[@]}" --index-url "$cpu_index" "$torch_req"
else
    echo "install-torch: CPU wheel index unreachable; torch from PyPI (with CUDA libraries)"
    "${pip[@]}" "$torch_req"
fi
"${pip[@]}" "${other_reqs[@]}"

if ! "$venv/bin/python" -c "$complete_check"; then
    echo "install-torch: $venv is still incomplete after installing; see pip's messages above" >&2
    exit 1
fi
"$venv/bin/python" -c "import $modules; print(f'install-torch: {torch.__version__=} \
{numpy.__version__=} {safetensors.__version__=} {diffusers.__version__=}')"
echo "install-torch: done; benches/torch_env.sh finds $venv"
