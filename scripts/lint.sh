#!/usr/bin/env bash
# Lint and type-check: scripts/lint.sh (ruff and mypy, configured in pyproject.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy
