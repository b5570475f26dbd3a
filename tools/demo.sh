#!/usr/bin/env bash
# tools/demo.sh: set up, build, and run the main job: train resnet8 on Fashion-MNIST (Debian's
# dataset-fashion-mnist, installed by setup) for two epochs and print its test accuracy.
# A few minutes on 2 cores. Extra arguments go to `retort train` (e.g. --set run.epochs=5).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >&2
run="runs/demo-$(date +%Y%m%d-%H%M%S)"
"${BUILD_DIR:-build}/retort" train --config tools/demo-fashion.conf --out "$run" "$@"
echo "run directory: $run (metrics.csv, best.safetensors, last.safetensors)"
