#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: unit tests on a tiny random Llama,
# doctests of the graders and parsers, and a few integration tests on the real embedded SmolLM2.
# Tests that need ../shared/data skip when it is absent.
#
#   bash scripts/test.sh            # extra arguments go to pytest, e.g. -m "not integration"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q "$@"
