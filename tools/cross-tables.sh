#!/usr/bin/env bash
# tools/cross-tables.sh: the cross-architecture tables on Fashion-MNIST, a row at a time, so that
# they can be filled across several sittings.
#
#   tools/cross-tables.sh [--epochs N] [--seeds 0,1,2] [--runs DIR] [--results DIR]
#                         [--max-steps N] [--teacher-ranks N] TABLE [ROW ...]
#
# TABLE:
#   teacher   trains the ViT teacher (tools/fashion-vit-teacher.conf) into RUNS/teacher-vit, or
#             resumes it where it stopped (it checkpoints every 100 steps); the other tables
#             need it finished. --teacher-ranks N trains it data parallel over N CPU ranks (on
#             2 cores, 2 ranks of 1 thread train this ViT 1.3x faster than 1 process of 2; the
#             stochastic-depth draws then differ from a 1-rank run's). Whenever the training
#             stops (finished, or stopped with SIGTERM, which saves a checkpoint first), the run
#             is kept in RESULTS/teacher-vit/, the copy that goes into the repository: its config
#             and metrics.csv, best.safetensors and, until it finishes, last.safetensors (weights
#             and optimizer state, about 32 MB). A checkout without RUNS/teacher-vit resumes
#             from that copy, and the other tables read a finished one from there.
#   vit-cnn   table 1, that teacher into resnet8 and into mobilenet_v2 (stem=cifar, width 0.5):
#             rows {resnet8,mobilenet}-{alone,kd,fitnet,at,ofa,cakd,tat,fourier,fourier_nokd}
#             and, run by name only, tat_ce1 (tat with the cross-entropy at full weight)
#             (tools/cross-vit-cnn.conf); each method with its own default weights, fourier
#             with its documented recipe (ce:1, kd:1, fourier:1) and, as fourier_nokd, on the
#             footing of the other feature methods (cross-entropy and the method alone)
#   cnn-deit  table 2, the KD table's resnet20 teacher into a DeiT-style student: rows alone,
#             deit_hard, cskd_alpha1 (alpha fixed at 1), cskd_ckf (cumulative knowledge fusion)
#             (tools/cross-cnn-deit.conf)
# With no ROW, every row of the table (table 1 method by method, both students of a method one
# after the other, so that they share one file of the teacher's cached outputs, deleted after
# the last row that reads it). Each seed is its own run directory (RUNS/TABLE/ROW/seed-S,
# default RUNS = runs/cross); a stopped one is resumed. A finished seed is recorded in
# RESULTS/TABLE/seeds/ROW/seed-S/ (its config, metrics.csv and, in table 1, the first 16 hex
# digits of the teacher weights' SHA-256), so that a checkout of the repository knows it is done
# without the run directory. When a row's seeds are done, tools/cross_table.py writes its numbers
# to RESULTS/TABLE/ROW.json, and the table is printed from those files; the finished teacher's
# numbers go to RESULTS/teacher-vit.json. RESULTS defaults to tools/results/cross.
# --max-steps N caps every epoch at N steps (a quick check of the commands, not a result: nothing
# is recorded unless --results names a directory).
# Run one sitting of a table at a time: rows of one method share their cache file.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=5
SEEDS=0,1,2
RUNS=runs/cross
RESULTS=tools/results/cross
RESULTS_GIVEN=0
MAX_STEPS=0
TEACHER_RANKS=0
RETORT="${RETORT:-build/retort}"
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="${2:?--epochs needs a number}"; shift 2 ;;
    --seeds) SEEDS="${2:?--seeds needs a list}"; shift 2 ;;
    --runs) RUNS="${2:?--runs needs a directory}"; shift 2 ;;
    --results) RESULTS="${2:?--results needs a directory}"; RESULTS_GIVEN=1; shift 2 ;;
    --max-steps) MAX_STEPS="${2:?--max-steps needs a number}"; shift 2 ;;
    --teacher-ranks) TEACHER_RANKS="${2:?--teacher-ranks needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "cross-tables: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -gt 0 ] || { echo "cross-tables: name a table: teacher, vit-cnn or cnn-deit" >&2; exit 2; }
TABLE="${ARGS[0]}"
ROWS=("${ARGS[@]:1}")
[ -x "$RETORT" ] || { echo "cross-tables: no retort binary at $RETORT (run tools/setup.sh)" >&2; exit 1; }
TEACHER="$RUNS/teacher-vit"
KEPT_TEACHER="$RESULTS/teacher-vit"  # the teacher run as the repository keeps it
RECORD=1  # whether finished seeds, rows and the teacher are written under RESULTS
[ "$MAX_STEPS" -gt 0 ] && [ "$RESULTS_GIVEN" -eq 0 ] && RECORD=0
STUDENT_RESNET="resnet8:in_chans=1,num_classes=10"
STUDENT_MOBILE="mobilenet_v2:stem=cifar,width_mult=0.5,in_chans=1,num_classes=10"
DEIT_DIMS="img_size=28,patch_size=4,depth=4,embed_dim=96,num_heads=3,in_chans=1,num_classes=10"

# Whether the teacher run in directory $1 has finished all its epochs.
teacher_finished() {
  [ -f "$1/metrics.csv" ] && [ -f "$1/best.safetensors" ] && grep -q "^$(grep -m1 '^epochs' \
    tools/fashion-vit-teacher.conf | tr -dc 0-9).0000,[0-9]*,test," "$1/metrics.csv"
}

# Copies file $1 to directory $2 through a temporary name, so that a stop mid-copy leaves no
# half-written file under the final name.
copy_into() {
  cp "$1" "$2/$(basename "$1").tmp"
  mv "$2/$(basename "$1").tmp" "$2/$(basename "$1")"
}

# The teacher run into KEPT_TEACHER: what a later checkout needs to resume it, or, once it has
# finished, to read it (its best weights; the optimizer state is then dropped).
keep_teacher() {
  [ -f "$TEACHER/metrics.csv" ] || return 0
  mkdir -p "$KEPT_TEACHER"
  local f
  for f in config metrics.csv best.safetensors last.safetensors; do
    [ -f "$TEACHER/$f" ] && copy_into "$TEACHER/$f" "$KEPT_TEACHER"
  done
  if teacher_finished "$TEACHER"; then rm -f "$KEPT_TEACHER/last.safetensors"; fi
}

# The --set arguments of a row: the student, the objectives and the pairs each method reads.
# Pairs for the ViT teacher (6 blocks: tokens.0..5, attn.0..5; a 7x7 patch grid) and the CNN
# students on 28x28 images (layer1 28x28, layer2 14x14, layer3 7x7).
row_sets() {
  case "$TABLE:$1" in
    vit-cnn:resnet8-*) echo "model.spec=$STUDENT_RESNET" ;;
    vit-cnn:mobilenet-*) echo "model.spec=$STUDENT_MOBILE" ;;
    cnn-deit:alone) echo "model.spec=vit_tiny_patch16_224:$DEIT_DIMS" ;;
    cnn-deit:deit_hard) echo "model.spec=deit_tiny_distilled_patch16_224:$DEIT_DIMS" ;;
    cnn-deit:cskd_*) echo "model.spec=deit_tiny_distilled_patch16_224:$DEIT_DIMS,eval_head=cskd" ;;
    *) echo "cross-tables: unknown row '$1' of table $TABLE" >&2; return 1 ;;
  esac
  case "$TABLE:$1" in
    vit-cnn:*-alone|cnn-deit:alone) echo "distill.objectives=ce:1" ;;
    vit-cnn:*-kd) echo "distill.objectives=ce:0.1, kd:0.9" ;;
    vit-cnn:*-fitnet) echo "distill.objectives=ce:1, fitnet:100"; echo "fitnet.pairs=layer2:tokens.3" ;;
    vit-cnn:*-at) echo "distill.objectives=ce:1, at:1000"
                  echo "at.pairs=layer1:tokens.1, layer2:tokens.3, layer3:tokens.5" ;;
    vit-cnn:*-ofa) echo "distill.objectives=ce:1, ofa:1"  # teacher taps: only the deepest's width is read
                   echo "ofa.pairs=layer1:tokens.1, layer2:tokens.3, layer3:tokens.5" ;;
    # cakd's value term relates the teacher's block-output tokens (its stand-in for the values;
    # see distill/objectives/cakd.cpp): with this teacher's residual stream it starts near 2e4
    # and drove SGD at lr 0.1 to an infinite loss within 5 steps at cakd:1 and cakd:0.2, so the
    # row runs the attention and group-wise linear terms only.
    vit-cnn:*-cakd) echo "distill.objectives=ce:1, cakd:1"; echo "cakd.value_weight=0"
                    echo "cakd.pairs=layer3:attn.5, layer3:tokens.5" ;;
    vit-cnn:*-tat) echo "distill.objectives=ce:0.1, tat:0.2"; echo "tat.pairs=layer3:patch_tokens" ;;
    vit-cnn:*-tat_ce1) echo "distill.objectives=ce:1, tat:0.2"; echo "tat.pairs=layer3:patch_tokens" ;;
    vit-cnn:*-fourier) echo "distill.objectives=ce:1, kd:1, fourier:1"; echo "fourier.pairs=layer3:patch_tokens" ;;
    vit-cnn:*-fourier_nokd) echo "distill.objectives=ce:1, fourier:1"; echo "fourier.pairs=layer3:patch_tokens" ;;
    cnn-deit:deit_hard) echo "distill.objectives=ce:0.5, deit_hard:0.5" ;;
    cnn-deit:cskd_alpha1) echo "distill.objectives=ce:0.5, cskd:1"; echo "cskd.alpha=1" ;;
    cnn-deit:cskd_ckf) echo "distill.objectives=ce:0.5, cskd:1" ;;
    *) echo "cross-tables: unknown row '$1' of table $TABLE" >&2; return 1 ;;
  esac
}

case "$TABLE" in
  teacher)
    ranks=()
    [ "$TEACHER_RANKS" -gt 1 ] && ranks=(--ranks "$TEACHER_RANKS")
    if [ "$RECORD" -eq 1 ] && [ ! -f "$TEACHER/last.safetensors" ] && ! teacher_finished "$TEACHER" &&
       [ -f "$KEPT_TEACHER/metrics.csv" ]; then
      if teacher_finished "$KEPT_TEACHER"; then echo "== teacher: finished ($KEPT_TEACHER)" >&2; exit 0; fi
      echo "== teacher: resuming from the kept copy in $KEPT_TEACHER" >&2
      rm -rf "$TEACHER"
      mkdir -p "$TEACHER"
      cp "$KEPT_TEACHER"/* "$TEACHER"/
    fi
    status=0
    if teacher_finished "$TEACHER"; then echo "== teacher: finished ($TEACHER)" >&2
    elif [ -f "$TEACHER/last.safetensors" ]; then
      "$RETORT" train --resume "$TEACHER" "${ranks[@]}" || status=$?
    else
      rm -rf "$TEACHER"
      extra=()
      [ "$MAX_STEPS" -gt 0 ] && extra=(--set "run.max_steps_per_epoch=$MAX_STEPS" --set run.epochs=6)
      "$RETORT" train --config tools/fashion-vit-teacher.conf "${extra[@]}" --out "$TEACHER" \
        "${ranks[@]}" || status=$?
    fi
    if [ "$RECORD" -eq 1 ]; then
      keep_teacher  # finished or stopped: what the next checkout resumes or reads
      if teacher_finished "$TEACHER"; then  # its accuracy and time, for table 1
        python3 tools/cross_table.py teacher "$TEACHER" > "$RESULTS/teacher-vit.json.tmp"
        mv "$RESULTS/teacher-vit.json.tmp" "$RESULTS/teacher-vit.json"
      fi
    fi
    exit "$status" ;;
  vit-cnn)
    CONFIG=tools/cross-vit-cnn.conf
    # The finished teacher: this checkout's run, or else the repository's kept copy.
    teacher_dir="$TEACHER"
    if ! teacher_finished "$TEACHER" && teacher_finished "$KEPT_TEACHER"; then teacher_dir="$KEPT_TEACHER"; fi
    if [ "$MAX_STEPS" -eq 0 ] && ! teacher_finished "$teacher_dir"; then
      echo "cross-tables: the ViT teacher has not finished (neither in $TEACHER nor in" \
           "$KEPT_TEACHER); run: $0 teacher" >&2; exit 1
    fi
    TABLE_SETS=(--set "distill.teacher_weights=$teacher_dir")
    TEACHER_WEIGHTS="$teacher_dir/best.safetensors"
    [ ${#ROWS[@]} -gt 0 ] || for m in alone kd fitnet at ofa cakd tat fourier fourier_nokd; do
      for s in resnet8 mobilenet; do ROWS+=("$s-$m"); done; done ;;
  cnn-deit)
    CONFIG=tools/cross-cnn-deit.conf
    TABLE_SETS=()
    TEACHER_WEIGHTS=""  # named by the config
    [ ${#ROWS[@]} -gt 0 ] || ROWS=(alone deit_hard cskd_alpha1 cskd_ckf) ;;
  *) echo "cross-tables: unknown table '$TABLE' (teacher, vit-cnn, cnn-deit)" >&2; exit 2 ;;
esac

# The rows that read the same teacher outputs (table 1: one method, either student; tat, fourier
# and fourier_nokd all tap the teacher's patch tokens) share a cache file, named by this key. The
# cache's fingerprint covers the taps, so a key shared by mistake would refill, not mislead.
cache_key() {
  case "$TABLE:$1" in
    vit-cnn:*-tat|vit-cnn:*-tat_ce1|vit-cnn:*-fourier|vit-cnn:*-fourier_nokd) echo patch_tokens ;;
    vit-cnn:*) echo "${1#*-}" ;;
    *) echo "$1" ;;
  esac
}

# Whether a seed's run directory (or its record) holds all EPOCHS epochs.
run_finished() { [ -f "$1/metrics.csv" ] && grep -q "^$EPOCHS.0000,[0-9]*,test," "$1/metrics.csv"; }

# A finished seed's record: its config, its metrics.csv and which teacher it read.
record_seed() {
  local record="$2"
  mkdir -p "$record"
  copy_into "$1/config" "$record"
  if [ -n "$TEACHER_WEIGHTS" ]; then
    sha256sum "$TEACHER_WEIGHTS" | cut -c1-16 > "$record/teacher.tmp"
    mv "$record/teacher.tmp" "$record/teacher"
  fi
  copy_into "$1/metrics.csv" "$record"  # last: it is what marks the record complete
}

IFS=, read -r -a seed_list <<< "$SEEDS"
for i in "${!ROWS[@]}"; do
  row="${ROWS[$i]}"
  key="$(cache_key "$row")"
  cache="$RUNS/$TABLE/teacher-cache-$key.bin"
  sets=("${TABLE_SETS[@]}" --set "run.epochs=$EPOCHS" --set "distill.teacher_cache_file=$cache")
  [ "$MAX_STEPS" -gt 0 ] && sets+=(--set "run.max_steps_per_epoch=$MAX_STEPS")
  while IFS= read -r s; do sets+=(--set "$s"); done < <(row_sets "$row")
  mkdir -p "$RUNS/$TABLE/$row"
  for seed in "${seed_list[@]}"; do
    dir="$RUNS/$TABLE/$row/seed-$seed"
    record="$RESULTS/$TABLE/seeds/$row/seed-$seed"
    if [ "$RECORD" -eq 1 ] && run_finished "$record"; then
      echo "== $TABLE $row seed $seed: done (recorded in $record)" >&2
      continue
    elif run_finished "$dir"; then
      echo "== $TABLE $row seed $seed: done" >&2
    elif [ -f "$dir/last.safetensors" ]; then
      echo "== $TABLE $row seed $seed: resuming" >&2
      "$RETORT" distill --resume "$dir"
    else
      echo "== $TABLE $row seed $seed" >&2
      rm -rf "$dir"
      "$RETORT" distill --config "$CONFIG" "${sets[@]}" --set "run.seed=$seed" --out "$dir"
    fi
    [ "$RECORD" -eq 1 ] && record_seed "$dir" "$record"
  done
  # A few GB: deleted once no later row reads it.
  later_reader=0
  for later in "${ROWS[@]:$((i + 1))}"; do
    if [ "$(cache_key "$later")" = "$key" ]; then later_reader=1; fi
  done
  [ "$later_reader" -eq 1 ] || rm -f "$cache"
  [ "$RECORD" -eq 1 ] || continue  # a check of the commands: nothing to record
  python3 tools/cross_table.py row "$RESULTS/$TABLE/seeds/$row" > "$RESULTS/$TABLE/$row.json.tmp"
  mv "$RESULTS/$TABLE/$row.json.tmp" "$RESULTS/$TABLE/$row.json"
done
[ "$RECORD" -eq 0 ] || python3 tools/cross_table.py table "$RESULTS/$TABLE"
