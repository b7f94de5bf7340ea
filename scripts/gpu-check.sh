#!/usr/bin/env bash
# The GPU checks of issue 12, as one prepared script for a lent GPU machine (an H200 with torch,
# transformers and peft but no network, no vLLM, and none of this checkout's ignored files).
#
#   bash scripts/gpu-check.sh prepare        # here: the SmolLM2 tokenizer into .gpu-carry/ (ignored)
#   bash scripts/gpu-check.sh run            # there, with .gpu-carry carried; figures into $OUT (or ./gpu-out)
#
# run: the engines' bf16 tests on CUDA (tests/test_gpu.py), then bench/round.py at Qwen2.5-7B's shape in
# bf16 (random weights: nothing to download) and bench/train_pass-like MFU from the same script's
# figures. About 8 minutes on an H200; every figure goes to $OUT/gpu-check.log and round.json.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-run}" in
  prepare)
    mkdir -p .gpu-carry
    grep -qx ".gpu-carry/" .git/info/exclude 2>/dev/null || echo ".gpu-carry/" >> .git/info/exclude
    .venv/bin/python -c "from transformers import AutoTokenizer; from seal.models import embedded_model_path; \
AutoTokenizer.from_pretrained(embedded_model_path()).save_pretrained('.gpu-carry/tokenizer')"
    # small pure-Python packages the GPU image may lack (installed there only if missing)
    .venv/bin/pip download -q --no-deps -d .gpu-carry/wheels pytest pluggy iniconfig pyyaml tqdm
    du -sh .gpu-carry ;;
  run)
    OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
    export PYTHONPATH=src PYTHONUNBUFFERED=1 SEAL_TEST_DEVICE=cuda HF_HUB_OFFLINE=1
    for mod in pytest pluggy iniconfig yaml tqdm; do
      python -c "import $mod" 2>/dev/null || pip install -q --no-index --no-deps .gpu-carry/wheels/*"${mod/yaml/pyyaml}"-*.whl || true
    done
    {
      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
      python -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
      timeout 150 python -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -5
      (cd bench && timeout 330 python round.py --shape qwen2.5-7b --device cuda --dtype bfloat16 \
         --tokenizer ../.gpu-carry/tokenizer --trials 48 --reference-trials 2 --sample-passages 4 \
         --sft-pairs 4 --adapters-per-pass 48 --pass-tokens 32768 --out "../$OUT/round.json" 2>&1 \
         | grep -v "it/s\]\|Warning\|warn")
    } 2>&1 | tee "$OUT/gpu-check.log" ;;
  *) echo "usage: bash scripts/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
