#!/usr/bin/env bash
# ON THE DEVICE: compile causal-conv1d and mamba-ssm's CUDA extensions for sm_90 only, from the sdists
# that docs/gpu/prepare_carry.sh put in .whl/src, into the folder $1 (default /tmp/kern). Meant to run in
# the background while the PyTorch checks proceed; prints the seconds each build took. Stock setup.py files
# compile for 9 architectures (sm_75 .. sm_121 with nvcc 13); only the -gencode for sm_90 is kept.
set -euo pipefail
target=${1:-/tmp/kern}
work=$(mktemp -d /tmp/kbuild.XXXX)
for sdist in .whl/src/causal_conv1d-*.tar.gz .whl/src/mamba_ssm-*.tar.gz; do
    tar xzf "$sdist" -C "$work"
done
for setup in "$work"/*/setup.py; do
    python3 - "$setup" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
pair = re.compile(r'cc_flag\.append\("-gencode"\)\s*\n\s*cc_flag\.append\("arch=compute_(\d+)\w*,code=sm_\d+\w*"\)')
kept = pair.sub(lambda m: m.group(0) if m.group(1) == "90" else "pass", text)
assert 'arch=compute_90,code=sm_90' in kept, f"{path}: no sm_90 gencode found to keep"
open(path, "w").write(kept)
print(f"{path}: kept sm_90 only ({len(pair.findall(text))} -gencode pairs before)")
PY
done
export MAX_JOBS=${MAX_JOBS:-16} NVCC_THREADS=${NVCC_THREADS:-2} TORCH_CUDA_ARCH_LIST=9.0
export CAUSAL_CONV1D_FORCE_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE
for pkg in "$work"/causal_conv1d-* "$work"/mamba_ssm-*; do
    start=$(date +%s)
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$target" "$pkg"
    echo "built $(basename "$pkg") in $(( $(date +%s) - start )) s"
done
