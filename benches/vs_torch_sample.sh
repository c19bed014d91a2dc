#!/usr/bin/env bash
# Side-by-side sampling speed: PyTorch (the seed notebook's code, benches/reference/ddpm.py)
# against the host sampler (benches/sampler.rs summary), on the same trained model
# (tests/fixtures/torch_model_3k.safetensors), then the ratios. Needs the PyTorch venv with
# diffusers (scripts/install-torch.sh; see benches/torch_env.sh); without it, says so and exits 0.
# Both sides use 2 threads; the machine is shared, so the load average is printed.
#
# Usage: benches/vs_torch_sample.sh [repeats]   (repeats of each PyTorch job, default 1)
set -euo pipefail

# shellcheck source=benches/torch_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/torch_env.sh" vs_torch_sample torch numpy safetensors diffusers
model="$root/tests/fixtures/torch_model_3k.safetensors"
repeats="${1:-1}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "load: $(cat /proc/loadavg)"
echo "== ours (cargo bench --bench sampler, summary with the full 10,000 x 1,000 job)"
(cd "$root" && TINYDDPM_BENCH_FULL=1 cargo bench -q -p tinyddpm --bench sampler -- none) \
    | tee "$out/ours.txt"

echo "== PyTorch"
"$py" "$ref" --threads 2 bench-sample --model "$model" --n 10000 --repeats "$repeats" \
    | tee "$out/torch_sample.json"
"$py" "$ref" --threads 2 ddim --model "$model" --n 10000 --steps 50 --repeats "$repeats" \
    | tee "$out/torch_ddim.json"
"$py" "$ref" --threads 2 bench-forward --model "$model" --repeats "$repeats" \
    | tee "$out/torch_forward.json"

"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
ours = {}
for line in open(f"{out}/ours.txt"):
    if line.startswith("RESULT "):
        _, k, v = line.split()
        ours[k] = float(v)
last = lambda f: json.loads([l for l in open(f"{out}/{f}") if l.startswith("{")][-1])
ts, td, tf = last("torch_sample.json"), last("torch_ddim.json"), last("torch_forward.json")
rows = [
    ("DDPM 10,000 x 1,000 (s)", ts["wall_s_min"],
     ours.get("ddpm1000_full_s", ours["ddpm1000_per10k_s"])),
    ("DDIM-50 10,000, plain torch (s)", td["plain_torch_wall_s_min"], ours["ddim50_per10k_s"]),
    ("DDIM-50 10,000, diffusers (s)", td["diffusers_wall_s_min"], ours["ddim50_per10k_s"]),
    ("batch-1 forward, no_grad (us)", min(tf["no_grad"]["us_per_call_each"]),
     ours["batch1_temb_us"]),
]
print(f"\n{'job':34} {'PyTorch':>10} {'ours':>10} {'speed-up':>9}")
for name, t, o in rows:
    print(f"{name:34} {t:10.4g} {o:10.4g} {t / o:8.1f}x")
print("(ours: best of 3 runs; batch-1 includes the time embedding, as torch's forward does)")
PY
