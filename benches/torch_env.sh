# Sourced by the PyTorch comparison scripts (`. "$(dirname "$0")/torch_env.sh" NAME [MODULE...]`):
# sets `root` (this repository), `py` (the virtualenv's python, ${TORCH_VENV:-/work/torch-venv})
# and `ref` (the notebook's code, ../shared/reference/seed_ddpm.py), or says why the comparison
# is skipped and exits 0. MODULEs are the Python modules the caller needs (default: torch).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TORCH_VENV:-/work/torch-venv}"
py="$venv/bin/python"
ref="$root/../shared/reference/seed_ddpm.py"
modules=("${@:2}")
[ ${#modules[@]} -gt 0 ] || modules=(torch)
if [ ! -x "$py" ] || ! "$py" -c "import $(IFS=,; echo "${modules[*]}")" 2>/dev/null; then
    echo "$1: no ${modules[*]} in $venv (set TORCH_VENV). Skipping."
    exit 0
fi
if [ ! -f "$ref" ]; then
    echo "$1: $ref missing. Skipping."
    exit 0
fi
