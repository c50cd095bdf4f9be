#!/usr/bin/env bash
# Set up from nothing and run the main job (under 10 minutes on 2 idle CPU cores, set-up included): train one
# supernet (mbv3) on Fashion-MNIST, specialise it for this CPU (ONNX Runtime) at three latency budgets, export and
# check every model, compare with a search that trains from scratch; writes a report folder (report.html,
# summary.json, study.db, heldout.npz, models/). Extra flags go to `archscout demo` (see
# `.venv/bin/archscout demo --help`), e.g. `scripts/run.sh --quiet` or `scripts/run.sh --data /path/to/fashion_mnist.npz`.
# OUT=folder picks the output folder (default demo-report).
set -euo pipefail
cd "$(dirname "$0")/.."

has_data_flag=0
quiet=0
for arg in "$@"; do
  case "$arg" in
    --data|--data=*) has_data_flag=1 ;;
    --quiet) quiet=1 ;;
  esac
done
say() { if [ "$quiet" = 0 ]; then echo "$*" >&2; fi; }

# The data first (a missing dataset stops here, before the set-up): Debian's dataset-fashion-mnist puts the IDX files
# in /usr/share/datasets/fashion-mnist, where the demo looks, unless --data or $ARCHSCOUT_DATA says otherwise.
SYSTEM_DATA=/usr/share/datasets/fashion-mnist
system_data() { [ -e "$SYSTEM_DATA/train-images-idx3-ubyte.gz" ] || [ -e "$SYSTEM_DATA/train-images-idx3-ubyte" ]; }
if [ "$has_data_flag" = 0 ] && [ -z "${ARCHSCOUT_DATA:-}" ] && ! system_data; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Fashion-MNIST: apt-get install dataset-fashion-mnist"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || true
    fi
  fi
  if ! system_data; then
    cat >&2 <<EOF
Fashion-MNIST is not installed, and apt-get could not install it here (it needs root and Debian's package lists).
Do one of:
  sudo apt-get install dataset-fashion-mnist          # puts the IDX files in $SYSTEM_DATA
  export ARCHSCOUT_DATA=/folder/with/fashion-mnist    # the four IDX files (.gz or not) or fashion_mnist.npz
  scripts/run.sh --data /path/to/fashion_mnist.npz    # or --data /folder/with/the/IDX/files
EOF
    exit 2
  fi
fi

# The set-up (.venv with the CPU build of PyTorch, ONNX Runtime, matplotlib); its output is shown only on failure.
setup_log="$(mktemp)"
trap 'rm -f "$setup_log"' EXIT
say "setting up .venv: scripts/setup.sh nn,plot (PyTorch for the CPU, ONNX Runtime, matplotlib)"
t0=$SECONDS
if ! scripts/setup.sh nn,plot >"$setup_log" 2>&1; then
  cat "$setup_log" >&2
  echo "the set-up failed (its output is above); fix that and run scripts/run.sh again" >&2
  exit 1
fi
say "set-up done in $((SECONDS - t0)) s"
rm -f "$setup_log"

OUT="${OUT:-demo-report}"
if [ -e "$OUT/study.db" ] || [ -e "$OUT/summary.json" ]; then
  say "removing the previous run in $OUT"
  rm -rf "$OUT"
fi
exec .venv/bin/archscout demo --out "$OUT" "$@"
