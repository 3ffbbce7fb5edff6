#!/usr/bin/env bash
# The GPU check in one command (bench/gpu_check.py says what it measures): the full-size engine
# on CUDA against the CPU, engine/floor and real-time factor, knock-out, every family's model
# checks, a 1,440-clip study-sized sweep; one JSON (default bench/results/gpu-check.json).
#
#   bench/gpu_check.sh                                   # a machine with a GPU: under 8 minutes
#   bench/gpu_check.sh --model tiny --device cpu --clips 8 --out /tmp/gpu-check.json
#
# Uses .venv/bin/python when it exists (make setup), else $PYTHON or python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec "$PYTHON" bench/gpu_check.py "$@"
