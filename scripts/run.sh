#!/usr/bin/env bash
# Set up from nothing and run the main job: a hardware-aware search on digits for this CPU (ONNX Runtime),
# accuracy vs latency under a latency budget, real training in 2 worker processes; writes a report folder
# (report.html, pareto.png, trials.csv, heldout.npz, models/). Extra flags go to `archscout demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh nn,plot
OUT="${OUT:-demo-report}"
if [ -e "$OUT/study.db" ]; then
  echo "removing the previous run in $OUT" >&2
  rm -rf "$OUT"
fi
exec .venv/bin/archscout demo --out "$OUT" "$@"
