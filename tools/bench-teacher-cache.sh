#!/usr/bin/env bash
# tools/bench-teacher-cache.sh: what the teacher-output cache saves. On Fashion-MNIST with the
# flip-only recipe (a cache needs transforms with few variants), it times the training epochs of
#   student   resnet8 alone                                   (`retort train`)
#   kd        resnet8 + KD from a resnet56 teacher, no cache  (`retort distill`, teacher_cache = off)
#   cached    the same with teacher_cache = memory
# and prints each epoch's training seconds and the ratios to the student's. The cache fills in the
# first epoch (it also computes each missed sample's flipped variant), so epochs 2.. show the
# cached cost. The teacher's weights do not change the cost: a resnet56 trained for one epoch on a
# few generated images stands in for a real one.
#
#   tools/bench-teacher-cache.sh [--epochs N] [--threads T] [--out DIR]
# Writes DIR/bench.jsonl (one record per run and epoch) and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=3
THREADS=0
OUT=runs/bench-teacher-cache
RETORT="${RETORT:-build/retort}"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="${2:?--epochs needs a number}"; shift 2 ;;
    --threads) THREADS="${2:?--threads needs a number}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-teacher-cache: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$RETORT" ] || { echo "bench-teacher-cache: no retort binary at $RETORT (run tools/setup.sh)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"

TEACHER_SPEC="resnet56:in_chans=1,num_classes=10"
"$RETORT" train --config tools/fashion-resnet20.conf --set "model.spec=$TEACHER_SPEC" \
  --set "data.path=synthetic:num_classes=10,size=64,test_size=16,channels=1,height=28,width=28" \
  --set data.val_size=16 --set run.epochs=1 --out "$OUT/teacher" > /dev/null

common=(--set "model.spec=resnet8:in_chans=1,num_classes=10" --set "run.epochs=$EPOCHS"
        --set "run.threads=$THREADS"
        --set "data.train_transforms=flip; normalize:mean=0.2860,std=0.3530")
kd=(--set "distill.teacher=$TEACHER_SPEC" --set "distill.teacher_weights=$OUT/teacher"
    --set "distill.objectives=ce:0.1, kd:0.9")
echo "== student alone" >&2
"$RETORT" train --config tools/fashion-resnet20.conf "${common[@]}" --out "$OUT/student" > "$OUT/student.log"
echo "== kd, no cache" >&2
"$RETORT" distill --config tools/distill-fashion-kd.conf "${common[@]}" "${kd[@]}" \
  --set distill.teacher_cache=off --out "$OUT/kd" > "$OUT/kd.log"
echo "== kd, memory cache" >&2
"$RETORT" distill --config tools/distill-fashion-kd.conf "${common[@]}" "${kd[@]}" \
  --set distill.teacher_cache=memory --out "$OUT/cached" > "$OUT/cached.log"

/usr/bin/python3 - "$OUT" <<'EOF'
import csv, json, sys
out = sys.argv[1]

def epoch_seconds(run):
    """Training seconds of each epoch: from the last row of the epoch before (its evaluation
    included in neither) to the epoch's last train row."""
    rows = list(csv.DictReader(open(f"{out}/{run}/metrics.csv")))
    result, start = [], 0.0
    for e in range(1, 1000):
        train = [r for r in rows if r["split"] == "train" and float(r["epoch"]) <= e and float(r["epoch"]) > e - 1]
        if not train:
            break
        result.append(float(train[-1]["seconds"]) - start)
        after = [r for r in rows if r["split"] != "train" and float(r["epoch"]) == e]
        start = float(after[-1]["seconds"]) if after else float(train[-1]["seconds"])
    return result

runs = {name: epoch_seconds(name) for name in ("student", "kd", "cached")}
with open(f"{out}/bench.jsonl", "w") as f:
    for name, seconds in runs.items():
        for e, s in enumerate(seconds, 1):
            f.write(json.dumps({"run": name, "epoch": e, "train_seconds": round(s, 2)}) + "\n")
print("| epoch | student (s) | kd, no cache (s) | kd, cached (s) | kd / student | cached / student |")
print("|---|---|---|---|---|---|")
for e in range(len(runs["student"])):
    s, k, c = (runs[n][e] for n in ("student", "kd", "cached"))
    print(f"| {e + 1} | {s:.1f} | {k:.1f} | {c:.1f} | {k / s:.2f}x | {c / s:.2f}x |")
EOF
