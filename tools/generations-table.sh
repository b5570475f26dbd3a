#!/usr/bin/env bash
# tools/generations-table.sh: the generations table on Fashion-MNIST: a resnet8 trained plainly,
# born-again generations 1 to 3 (each taught by the previous one), and self-distillation in one
# generation (the best checkpoint so far as teacher), with accuracy and total training time.
#
#   tools/generations-table.sh [--epochs N] [--seeds 0,1,2] [--runs DIR] [--time-seeds 0,1]
#
# Recipe: tools/born-again-fashion.conf and tools/self-distill-fashion.conf (the resnet8 recipe
# of the KD table: SGD, cosine, crop + flip, 5 epochs, 55,000 / 5,000 / 10,000 images). For each
# seed: one born-again run (its generation 0 is the plain run) and one self-distillation run,
# each in its own directory under RUNS (default runs/generations). A seed whose run finished is
# skipped; one that stopped part way is resumed. --time-seeds names the seeds whose times the
# table averages (those that ran on an otherwise idle machine; default: all). The table (tools/generations_table.py) goes to
# tools/results/generations.md, with every run's numbers in tools/results/generations.json.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=5
SEEDS=0,1,2
RUNS=runs/generations
TIME_SEEDS=""
RETORT="${RETORT:-build/retort}"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="${2:?--epochs needs a number}"; shift 2 ;;
    --seeds) SEEDS="${2:?--seeds needs a list}"; shift 2 ;;
    --runs) RUNS="${2:?--runs needs a directory}"; shift 2 ;;
    --time-seeds) TIME_SEEDS="${2:?--time-seeds needs a list}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "generations-table: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$RETORT" ] || { echo "generations-table: no retort binary at $RETORT (run tools/setup.sh)" >&2; exit 1; }

# run_one NAME CONFIG SEED DONE_FILE: a finished run is skipped, a stopped one resumed.
run_one() {
  local name="$1" config="$2" seed="$3" done_file="$4"
  local dir="$RUNS/$name/seed-$seed"
  if [ -f "$dir/$done_file" ]; then
    echo "== $name seed $seed: done" >&2
  elif [ -d "$dir" ]; then
    echo "== $name seed $seed: resuming" >&2
    "$RETORT" distill --resume "$dir"
  else
    echo "== $name seed $seed" >&2
    mkdir -p "$RUNS/$name"
    "$RETORT" distill --config "$config" --set run.seed="$seed" --set run.epochs="$EPOCHS" --out "$dir"
  fi
}

IFS=, read -r -a seed_list <<< "$SEEDS"
for seed in "${seed_list[@]}"; do
  run_one born-again tools/born-again-fashion.conf "$seed" generations.json
  # a self-distillation run is finished when its metrics hold the last epoch's test row
  if [ -f "$RUNS/self-distill/seed-$seed/metrics.csv" ] &&
     grep -q "^$EPOCHS.0000,[0-9]*,test," "$RUNS/self-distill/seed-$seed/metrics.csv"; then
    touch "$RUNS/self-distill/seed-$seed/.finished"
  fi
  run_one self-distill tools/self-distill-fashion.conf "$seed" .finished
  touch "$RUNS/self-distill/seed-$seed/.finished"
done

mkdir -p tools/results
python3 tools/generations_table.py "$RUNS" --json tools/results/generations.json \
  --time-seeds "$TIME_SEEDS" > tools/results/generations.md.tmp
mv tools/results/generations.md.tmp tools/results/generations.md
cat tools/results/generations.md
