#!/usr/bin/env bash
# tools/bench-dist.sh: what data parallel costs and gives on this machine's CPU. The same training
# run (Fashion-MNIST if installed, else generated data; batch 128, N steps, no evaluation between)
# three ways, in one sitting so that only same-run ratios count:
#   plain    one process, every core
#   ranks-1  the data-parallel path with one rank (mpirun -np 1): the machinery's own cost
#   ranks-C  C ranks (C = the cores), one thread each, each taking 128 / C images of every batch
# and prints images/s of training, the ratios to plain, the gradient volume per step and the time
# rank 0 waited for the all-reduce after backward (what overlapping with backward did not hide).
# Then the peer: training steps alone (one fixed batch, no data loading) of `retort bench model
# --train` and of PyTorch (tools/peer_bench.py, Debian's python3-torch, OpenBLAS when it is
# there), each as one process with every core and as one rank per core (retort's data parallel
# against PyTorch's DistributedDataParallel over gloo).
#
#   tools/bench-dist.sh [--model SPEC] [--steps N] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="resnet8:in_chans=1,num_classes=10"
STEPS=120
OUT=runs/bench-dist
RETORT="${RETORT:-build/retort}"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="${2:?--model needs a spec}"; shift 2 ;;
    --steps) STEPS="${2:?--steps needs a number}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-dist: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$RETORT" ] || { echo "bench-dist: no retort binary at $RETORT (run tools/setup.sh)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench-dist: mpirun not found (tools/setup.sh installs OpenMPI)" >&2; exit 1; }
CORES="$(nproc)"
DATA=/usr/share/datasets/fashion-mnist
[ -d "$DATA" ] || DATA="synthetic:num_classes=10,size=20000,test_size=100,channels=1,height=28,width=28"
rm -rf "$OUT"
mkdir -p "$OUT"
cat >"$OUT/bench.conf" <<CONF
[model]
spec = $MODEL
[data]
path = $DATA
val_size = 0
batch_size = 128
workers = 1
train_transforms = flip
[run]
epochs = 1
max_steps_per_epoch = $STEPS
eval_batch_size = 1024
CONF

run() {  # NAME ARGS...: one run, then its training images/s
  local name="$1"
  shift
  "$RETORT" train --config "$OUT/bench.conf" --out "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1 ||
    { echo "bench-dist: run $name failed, see $OUT/$name.log" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
  grep -o "[0-9.]* img/s" "$OUT/$name.log" | tail -1 | cut -d' ' -f1
}

plain=$(run plain --set run.threads="$CORES")
one=$(run ranks-1 --ranks 1)
many=$(run "ranks-$CORES" --ranks "$CORES")
{
  echo "| run | images/s | vs plain |"
  echo "|---|---|---|"
  awk -v p="$plain" -v o="$one" -v m="$many" -v c="$CORES" 'BEGIN {
    printf "| plain, %d threads | %.0f | 1.00 |\n", c, p
    printf "| data parallel, 1 rank, %d threads | %.0f | %.3f |\n", c, o, o / p
    printf "| data parallel, %d ranks, 1 thread each | %.0f | %.3f |\n", c, m, m / p }'
  echo
  echo "model $MODEL, batch 128, $STEPS steps, data ${DATA}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  grep -h "data parallel:" "$OUT/ranks-1.log" "$OUT/ranks-$CORES.log"
} | tee "$OUT/bench.md"

# ---- training steps against PyTorch, one process and one rank per core ----
PYTHON="${PYTHON:-/usr/bin/python3}"
OPENBLAS=""
for d in /usr/lib/*/openblas-pthread "$PWD"/build-openblas/usr/lib/*/openblas-pthread; do
  [ -e "$d/libblas.so.3" ] && OPENBLAS="$d"
done
steps="$OUT/steps.jsonl"
: >"$steps"
input="1x28x28"
for split in "$CORES 1" "1 $CORES"; do
  read -r threads ranks <<<"$split"
  dp=()
  [ "$ranks" -gt 1 ] && dp=(--ranks "$ranks")
  "$RETORT" bench model "$MODEL" --train --batch 128 --input "$input" --steps 20 --threads "$threads" \
    "${dp[@]}" --json >>"$steps"
  LD_LIBRARY_PATH="$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PYTHON" tools/peer_bench.py model "$MODEL" \
    --train --batch 128 --input "$input" --steps 20 --threads "$threads" "${dp[@]}" >>"$steps" ||
    echo "bench-dist: the PyTorch peer failed" >&2
done
"$PYTHON" - "$steps" <<'PY' | tee -a "$OUT/bench.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def pick(peer, ranks):
    for r in rows:
        if ("peer" in r) == peer and r.get("ranks", 1) == ranks:
            return r["img_per_s"]
ranks = max(r.get("ranks", 1) for r in rows)
print()
print("| training steps (batch 128) | retort | PyTorch | retort / PyTorch |")
print("|---|---|---|---|")
for label, n in (("1 process, all cores", 1), ("%d ranks x 1 thread" % ranks, ranks)):
    a, b = pick(False, n), pick(True, n)
    print("| %s | %s | %s | %s |" % (label, a, b, "%.2f" % (a / b) if a and b else "-"))
a1, an, b1, bn = pick(False, 1), pick(False, ranks), pick(True, 1), pick(True, ranks)
if a1 and an and b1 and bn:
    print("| data-parallel speed-up | %.2fx | %.2fx | |" % (an / a1, bn / b1))
PY
