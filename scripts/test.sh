#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: unit tests on a tiny random Llama,
# doctests of the graders and parsers, and a few integration tests on the real embedded SmolLM2.
# Tests that need ../shared/data skip when it is absent. The `seal report` page is rendered in
# headless Chromium (Debian's package, installed here when missing and apt-get can; without it
# that one test skips and says why).
#
#   bash scripts/test.sh            # extra arguments go to pytest, e.g. -m "not integration"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 \
    && apt-get install -y -q chromium >/dev/null 2>&1; }) || echo "test: chromium could not be installed; its test skips"
fi
. .venv/bin/activate
python -c "import tensorboard, wandb, mlflow, ray, xgrammar" 2>/dev/null \
  || pip install -q -e ".[track,ray,structured]"  # trackers, Ray, structured generation
python -m pytest -q "$@"
