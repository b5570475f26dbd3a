#!/usr/bin/env bash
# tools/kill-trials.sh: kills training runs with SIGKILL at random moments, resumes them, and checks
# that each ends exactly where an uninterrupted run ends. Writes tools/results/kill-trials.md.
#
#   tools/kill-trials.sh [--trials N] [--build DIR] [--seed S] [--work DIR] [--signal KILL|INT]
#                        [--results FILE]
#
# The runs: `retort train` of resnet8 and `retort distill` of a resnet8 student from that run's
# best weights with CE + KD + FitNet (a connector whose state is in the checkpoint), on synthetic
# 12x12 images: 200 steps per epoch, 3 epochs. Trials alternate between the two commands.
#
# Each trial:
#   1. starts the run and kills it after a random delay, uniform over the length of an
#      uninterrupted run (so some kills land in the first epoch, some after the last checkpoint);
#   2. checks the run directory: last.safetensors must load (`retort eval` on it). A run saves
#      one of its starting point as it starts, so only a kill in the moment between writing the
#      run directory's config and that first save finds none: --resume must then refuse with its
#      clear message (the run is started again from scratch);
#   3. resumes the run to its end;
#   4. compares it with the uninterrupted run: metrics.csv equal in every column but `seconds`,
#      best.safetensors equal byte for byte, and last.safetensors equal byte for byte except the
#      8 bytes of progress.seconds (the wall time, the one thing a resumed run may change).
# --signal INT sends SIGINT instead (a stop at a step boundary, saved and resumed part way
# through the epoch; the exit status must then be 130).
#
# Exit status: 0 when every trial ended identical to the uninterrupted run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
trials=20
build="$root/build"
seed=$$
work=""
signal=KILL
results="$root/tools/results/kill-trials.md"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --trials) trials="$2"; shift 2 ;;
        --build) build=$(realpath -m "$2"); shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --work) work=$(realpath -m "$2"); shift 2 ;;
        --signal) signal="$2"; shift 2 ;;
        --results) results=$(realpath -m "$2"); shift 2 ;;
        -h|--help) sed -n '2,27p' "$0" | sed -E 's/^# ?//'; exit 0 ;;
        *) echo "kill-trials.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $signal == KILL || $signal == INT ]] || { echo "kill-trials.sh: --signal must be KILL or INT" >&2; exit 2; }
retort="$build/retort"
[[ -x $retort ]] || { echo "kill-trials.sh: no retort binary at $retort (build it, or give --build DIR)" >&2; exit 1; }
if [[ -z $work ]]; then
    work=$(mktemp -d /tmp/retort-kill-trials.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
RANDOM=$seed

data="synthetic:num_classes=10,size=3400,test_size=200,channels=1,height=12,width=12"
model="resnet8:in_chans=1,num_classes=10"
cat > "$work/train.cfg" <<EOF
[model]
spec = $model

[data]
path = $data
val_size = 200
batch_size = 16
workers = 2
train_transforms = "random_crop:padding=2; flip"

[optim]
lr = 0.05

[run]
epochs = 3
log_every = 20
threads = 1
EOF

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# metrics.csv without its seconds column (the 8th).
metrics_without_seconds() { cut -d, -f1-7,9- "$1"; }

# Two checkpoints equal but for progress.seconds: every differing byte within one 8-byte value.
same_checkpoint() {
    [[ $(stat -c %s "$1") == $(stat -c %s "$2") ]] || return 1
    { cmp -l "$1" "$2" || true; } | awk 'NR == 1 { first = $1 } { last = $1 } END { exit (NR > 0 && last - first >= 8) }'
}

same_run() {
    local a=$1 b=$2
    diff -q <(metrics_without_seconds "$a/metrics.csv") <(metrics_without_seconds "$b/metrics.csv") > /dev/null &&
        cmp -s "$a/best.safetensors" "$b/best.safetensors" &&
        same_checkpoint "$a/last.safetensors" "$b/last.safetensors"
}

# The reference runs, timed: train first (its best weights teach the distillation runs).
echo "== uninterrupted runs (references) in $work"
start=$(now)
"$retort" train --config "$work/train.cfg" --out "$work/ref-train" > "$work/ref-train.log" 2>&1
train_seconds=$(seconds_since "$start")
cp "$work/ref-train/best.safetensors" "$work/teacher.safetensors"
{
    cat "$work/train.cfg"
    cat <<EOF

[distill]
teacher = $model
teacher_weights = $work/teacher.safetensors
objectives = ce:0.1, kd:0.9, fitnet:1

[kd]
T = 4
EOF
} > "$work/distill.cfg"
start=$(now)
"$retort" distill --config "$work/distill.cfg" --out "$work/ref-distill" > "$work/ref-distill.log" 2>&1
distill_seconds=$(seconds_since "$start")
steps=$(grep -m1 -oE "[0-9]+ steps per epoch" "$work/ref-train.log" | cut -d' ' -f1)
echo "   train: ${train_seconds} s, distill: ${distill_seconds} s ($steps steps per epoch, 3 epochs)"

rows=()
identical=0
for (( trial = 1; trial <= trials; ++trial )); do
    if (( trial % 2 == 1 )); then cmd=train; length=$train_seconds; else cmd=distill; length=$distill_seconds; fi
    dir="$work/trial-$trial"
    # A delay uniform over the run's length (plus a little, to catch the very end too).
    delay=$(awk -v r="$RANDOM" -v len="$length" 'BEGIN { printf "%.2f", r / 32767 * len * 1.05 }')
    "$retort" "$cmd" --config "$work/$cmd.cfg" --out "$dir" > "$work/trial-$trial.log" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -"$signal" "$pid" 2> /dev/null || true
    set +e
    wait "$pid" 2> /dev/null  # (without the shell's "Killed" notice)
    status=$?
    set -e
    reached=$(tail -n 1 "$dir/metrics.csv" 2> /dev/null | cut -d, -f1-3 | tr ',' ' ' || true)
    reached=${reached:-nothing written}

    if [[ $status == 0 ]]; then
        outcome="finished before the signal"
    elif [[ $signal == INT && $status != 130 ]]; then
        outcome="exit status $status after SIGINT (expected 130)"
    elif [[ ! -f $dir/config ]]; then
        outcome="before the run directory was written: run again"
        rm -rf "$dir"
        "$retort" "$cmd" --config "$work/$cmd.cfg" --out "$dir" > "$work/trial-$trial.rerun.log" 2>&1
    elif [[ ! -f $dir/last.safetensors ]]; then
        # Nothing to continue from: --resume must say so, and the run starts again.
        refusal=$("$retort" "$cmd" --resume "$dir" 2>&1 || true)
        if grep -q "has no last.safetensors: the run saved no checkpoint yet" <<< "$refusal"; then
            outcome="before the starting checkpoint: resume refused (as it should), run again"
        else
            outcome="before the starting checkpoint: resume did not refuse clearly"
        fi
        rm -rf "$dir"
        "$retort" "$cmd" --config "$work/$cmd.cfg" --out "$dir" > "$work/trial-$trial.rerun.log" 2>&1
    elif ! "$retort" eval --model "$model" --weights "$dir/last.safetensors" --data "$data" \
            --split val --val-size 200 > "$work/trial-$trial.eval.log" 2>&1; then
        outcome="last.safetensors does not load: $(tail -n 1 "$work/trial-$trial.eval.log")"
    else
        set +e
        "$retort" "$cmd" --resume "$dir" > "$work/trial-$trial.resume.log" 2>&1
        resume_status=$?
        set -e
        from=$(grep -m1 -oE "resuming .* (after|at) .*" "$work/trial-$trial.resume.log" | sed -E 's/^resuming [^ ]+ //')
        if [[ $resume_status == 0 ]]; then
            outcome="checkpoint loads; resumed $from"
        elif grep -q "has already done" "$work/trial-$trial.resume.log"; then
            outcome="killed after its last checkpoint: nothing left to resume"
        else
            outcome="resume failed: $(tail -n 1 "$work/trial-$trial.resume.log")"
        fi
    fi
    if [[ -f $dir/last.safetensors ]] && same_run "$work/ref-$cmd" "$dir"; then
        result="identical"
        identical=$(( identical + 1 ))
    else
        result="DIFFERENT"
    fi
    printf "trial %2d  %-7s  signal after %6.2f s  (last row: %s)  %s  -> %s\n" \
        "$trial" "$cmd" "$delay" "$reached" "$outcome" "$result"
    rows+=("| $trial | $cmd | $delay s | $reached | $outcome | $result |")
done

{
    echo "# Kill-and-resume trials"
    echo
    echo "Written by tools/kill-trials.sh on $(date -u '+%Y-%m-%d %H:%M UTC') ($(nproc) cores; seed $seed)."
    echo
    echo "Each trial starts a run, sends SIG$signal after a random delay (uniform over the length of an"
    echo "uninterrupted run), checks that last.safetensors loads (\`retort eval\`), resumes the run to its"
    echo "end and compares it with the uninterrupted run: metrics.csv in every column but \`seconds\`,"
    echo "best.safetensors byte for byte, last.safetensors byte for byte except progress.seconds."
    echo
    echo "- runs: resnet8 on synthetic 12x12 images, $steps steps per epoch of 16, 3 epochs;"
    echo "  \`retort train\` (${train_seconds} s uninterrupted) and \`retort distill\` of a resnet8"
    echo "  student with CE + KD + FitNet from the train run's best weights (${distill_seconds} s)"
    echo "- \"last row\": the last row of metrics.csv when the signal came (epoch, step, split); rows"
    echo "  after the checkpoint are dropped on resume"
    echo
    echo "**$identical of $trials trials ended identical to the uninterrupted run.**"
    echo
    echo "| trial | command | signal after | last row | outcome | result |"
    echo "|---|---|---|---|---|---|"
    printf "%s\n" "${rows[@]}"
} > "$results"
echo "== $identical of $trials trials identical to the uninterrupted run; wrote $results"
[[ $identical == "$trials" ]]
