#!/usr/bin/env bash
# tools/kd-table.sh: the knowledge-distillation table on Fashion-MNIST, a row at a time, so it can
# be filled across several sittings (a row already in tools/results/kd-fashion/ is skipped).
#
# Recipe (the same for teacher and students): tools/fashion-resnet20.conf (SGD momentum 0.9
# nesterov, weight decay 5e-4, lr 0.1 with a per-step cosine, batch 128, random crop + flip),
# EPOCHS epochs, 55,000 training / 5,000 validation images, test top-1 on the 10,000 test images.
# Teacher: resnet20 (in_chans=1), one run, seed 0. Student: resnet8 with the same recipe, alone
# (objectives = ce:1) and with each objective, once per seed. The student-alone row also runs
# through `retort distill`, so every row sees the same batches.
#
#   tools/kd-table.sh [--epochs N] [--seeds 0,1,2] [--runs DIR] [ROW ...]
#   rows: student kd dkd dist logit_std fitnet at sp nst rkd pkt cc vid crd (default: all)
#
# Each finished row copies its summary.json / summary.md (mean +- std of the test top-1 at the
# best-by-validation epoch and at the last epoch) to tools/results/kd-fashion/ROW/, and
# tools/kd_table.py prints the table from them.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=5
SEEDS=0,1,2
RUNS=runs/kd-fashion
RETORT="${RETORT:-build/retort}"
ROWS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="${2:?--epochs needs a number}"; shift 2 ;;
    --seeds) SEEDS="${2:?--seeds needs a list}"; shift 2 ;;
    --runs) RUNS="${2:?--runs needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "kd-table: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) ROWS+=("$1"); shift ;;
  esac
done
[ ${#ROWS[@]} -gt 0 ] || ROWS=(student kd dkd dist logit_std fitnet at sp nst rkd pkt cc vid crd)

# The objectives of each row: RepDistiller's CIFAR-100 weights (loss = CE + weight * objective;
# KD: 0.1 CE + 0.9 KD), and the taps each method reads.
objectives_of() {
  case "$1" in
    student) echo "ce:1" ;;
    kd) echo "ce:0.1, kd:0.9" ;;
    dkd) echo "ce:1, dkd:1" ;;
    dist) echo "ce:1, dist:1" ;;
    logit_std) echo "ce:0.1, logit_std:9" ;;
    fitnet) echo "ce:1, fitnet:100" ;;
    at) echo "ce:1, at:1000" ;;
    sp) echo "ce:1, sp:3000" ;;
    nst) echo "ce:1, nst:50" ;;
    rkd) echo "ce:1, rkd:1" ;;
    pkt) echo "ce:1, pkt:30000" ;;
    cc) echo "ce:1, cc:0.02" ;;
    vid) echo "ce:1, vid:1" ;;
    crd) echo "ce:1, crd:0.8" ;;
    *) echo "kd-table: unknown row '$1'" >&2; return 1 ;;
  esac
}
extra_sets_of() {
  case "$1" in
    fitnet) echo "fitnet.pairs=layer2" ;;
    sp) echo "sp.pairs=layer3" ;;
    rkd|pkt|cc|crd) echo "$1.pairs=pre_logits" ;;
  esac
}

[ -x "$RETORT" ] || { echo "kd-table: no retort binary at $RETORT (run tools/setup.sh)" >&2; exit 1; }
TEACHER="$RUNS/teacher-resnet20"
if [ ! -f "$TEACHER/last.safetensors" ] || [ ! -f "$TEACHER/best.safetensors" ]; then
  echo "== teacher resnet20, $EPOCHS epochs" >&2
  rm -rf "$TEACHER"
  "$RETORT" train --config tools/fashion-resnet20.conf --set run.epochs="$EPOCHS" --out "$TEACHER"
fi

for row in "${ROWS[@]}"; do
  objectives="$(objectives_of "$row")"
  dest="tools/results/kd-fashion/$row"
  if [ -f "$dest/summary.json" ]; then echo "== $row: done already ($dest)" >&2; continue; fi
  echo "== $row: objectives = $objectives, seeds $SEEDS, $EPOCHS epochs" >&2
  sets=(--set "model.spec=resnet8:in_chans=1,num_classes=10" --set "run.epochs=$EPOCHS"
        --set "distill.teacher_weights=$TEACHER" --set "distill.objectives=$objectives"
        --set "distill.teacher=resnet20:in_chans=1,num_classes=10")
  for s in $(extra_sets_of "$row"); do sets+=(--set "$s"); done
  rm -rf "$RUNS/$row"
  "$RETORT" distill --config tools/distill-fashion-kd.conf "${sets[@]}" --out "$RUNS/$row" --seeds "$SEEDS"
  mkdir -p "$dest.tmp"
  cp "$RUNS/$row/summary.json" "$RUNS/$row/summary.md" "$dest.tmp/"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
done
/usr/bin/python3 tools/kd_table.py
