# shellcheck shell=bash disable=SC2034  # sets variables for the script that sources it
# Sourced by the PyTorch comparison scripts: `. "$(dirname "$0")/torch_env.sh" NAME [MODULE...]`.
# Sets `root` (this repository), `venv` and `py` (the PyTorch virtualenv and its python) and `ref`
# (the repository's PyTorch reference, benches/reference/ddpm.py). When the venv is missing or
# lacks a MODULE the caller needs (default: torch numpy safetensors, what ddpm.py imports), it
# prints one line naming the command that creates the venv and exits 0: the comparisons are
# optional extras, not tests.
#
# The venv: $TORCH_VENV if set, else ${XDG_CACHE_HOME:-$HOME/.cache}/tinyddpm/torch-venv, the
# place scripts/install-torch.sh creates it.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tinyddpm/torch-venv}"
py="$venv/bin/python"
ref="$root/benches/reference/ddpm.py"
modules=("${@:2}")
[ ${#modules[@]} -gt 0 ] || modules=(torch numpy safetensors)
if [ ! -x "$py" ] || ! "$py" -c "import $(IFS=,; echo "${modules[*]}")" 2>/dev/null; then
    echo "$1: skipped, no ${modules[*]} in $venv; create it with:" \
        "${TORCH_VENV:+TORCH_VENV=$TORCH_VENV }scripts/install-torch.sh"
    exit 0
fi
