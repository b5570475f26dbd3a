#!/usr/bin/env bash
# tools/bench-fashion.sh: trains resnet20 on Fashion-MNIST with retort and with PyTorch (Debian's
# python3-torch, same recipe, same thread count), one after the other in the same run, and prints
# both results side by side. Takes about 15 minutes on 2 cores.
#   EPOCHS (5), THREADS (2), OUT (runs/bench-fashion-<time>)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${EPOCHS:-5}"
THREADS="${THREADS:-2}"
OUT="${OUT:-runs/bench-fashion-$(date +%Y%m%d-%H%M%S)}"
tools/setup.sh >&2
mkdir -p "$(dirname "$OUT")"

echo "== retort"
OMP_NUM_THREADS="$THREADS" build/retort train --config tools/fashion-resnet20.conf \
  --set run.epochs="$EPOCHS" --set run.threads="$THREADS" --out "$OUT" | tee "$OUT.retort.log"
echo "== pytorch"
/usr/bin/python3 tools/peer_train_fashion.py --epochs "$EPOCHS" --threads "$THREADS" | tee "$OUT.pytorch.log"

echo "== summary (test top-1 after the last epoch, mean training seconds per epoch)"
awk -F, 'NR > 1 && $3 == "test" { acc = $5 } END { printf "retort:  test top-1 %.2f%%\n", acc }' "$OUT/metrics.csv"
grep -o "train_seconds [0-9.]*\|test_top1 [0-9.]*" "$OUT.pytorch.log" | tail -2 | tr '\n' ' '; echo
