#!/usr/bin/env bash
# Prepare the carry folder `.whl/` for benchmarks/gpu_check.py on the device machine (run HERE,
# where the package registry is reachable; the device machine reaches nothing).
#
#   .whl/mamba_ssm-2.3.2.post1-*.whl   the Python part of mamba-ssm, built with MAMBA_SKIP_CUDA_BUILD=TRUE:
#                                      its Triton selective_state_update (the decode-step kernel) needs no
#                                      compiler; m1eval imports it past the package __init__ (which needs the
#                                      compiled selective_scan_cuda)
#   .whl/src/*.tar.gz                  the mamba-ssm and causal-conv1d sdists, for the optional sm_90 compile
#                                      on the device (docs/gpu/build_kernels.sh)
#
# einops, triton, transformers, safetensors, typer, rich, pandas, pyarrow and matplotlib are already in the
# device image (KINDS.md), so nothing else travels. See docs/gpu/README.md for sizes and the device command.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
MAMBA=${MAMBA_VERSION:-2.3.2.post1}
CONV=${CAUSAL_CONV1D_VERSION:-1.7.0}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
rm -rf .whl && mkdir -p .whl/src

# the sdists; SKIP keeps pip's metadata step from compiling anything
MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE python3 -m pip download -q --no-deps \
    --no-binary :all: --no-build-isolation -d .whl/src "mamba-ssm==$MAMBA" "causal-conv1d==$CONV"

# the Python-only mamba-ssm wheel (FORCE_BUILD: no attempt to fetch a prebuilt wheel from GitHub)
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE python3 -m pip wheel -q --no-deps --no-build-isolation \
    -w .whl ".whl/src/mamba_ssm-$MAMBA.tar.gz"

ls -l .whl .whl/src
du -sh .whl
# the working tree travels too (64 MiB in all): say how much that is
echo "tracked + untracked (not ignored) files: $(git ls-files -co --exclude-standard -z | du -ch --files0-from=- 2>/dev/null | tail -1)"
