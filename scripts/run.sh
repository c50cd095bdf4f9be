#!/usr/bin/env bash
# Set up from nothing and run the main job: compare random sampling, regularized evolution and local search
# on NAS-Bench-201 (CIFAR-10), 30 seeds x 300 queries. The table is not shipped with archscout: point
# NB201_TABLE at your copy (default: ../shared/data/nas-bench-201/nb201_cifar10.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plot
TABLE="${NB201_TABLE:-../shared/data/nas-bench-201/nb201_cifar10.csv}"
exec .venv/bin/archscout bench nb201 --table "$TABLE" --objective valid_acc_200ep --report test_acc_200ep \
  --strategies random,rea,ls --budget 300 --seeds 30 --out "${OUT:-results/nb201-c10}" "$@"
