#!/usr/bin/env bash
# Set up from nothing and run the test suite: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test,nn,plot
scripts/postgres.sh  # PostgreSQL server binaries for the storage tests (installed if missing)
scripts/browser.sh   # Chromium for the dashboard's browser tests (installed if missing)
exec .venv/bin/python -m pytest -q "$@"
