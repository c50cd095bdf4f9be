#!/usr/bin/env bash
# Create .venv (if missing) and install archscout with the given extras, e.g. `scripts/setup.sh test,nn`.
# PyTorch is pinned first to the CPU build (2.13.0) so that no multi-GB CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-plot}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
if [[ ",$extras," == *",nn,"* || ",$extras," == *",all,"* ]]; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
