#!/usr/bin/env bash
# tools/fuzz.sh: builds retort's libFuzzer targets (tools/fuzz/) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each one from its seed corpus (tests/fuzz_corpus/<target>).
#
#   tools/fuzz.sh [--runs N] [--build-only] [target ...]     (default: every target, 1000000 runs)
#
# Each target runs alone (one core), into a scratch corpus outside the repository
# ($RETORT_FUZZ_WORK, default /tmp/retort-fuzz), with libFuzzer's limits: -rss_limit_mb=2048 (a
# unit that takes more memory is a finding), -timeout=10 (a unit slower than 10 s is a finding)
# and a -max_len that suits the format. Findings (crash-*, leak-*, timeout-*, oom-* files) stay in
# the scratch directory; the script prints their paths. Afterwards it replays the inputs of
# earlier findings (tests/fuzz_corpus/regressions/<target>-*) and counts those that now pass.
# The summary goes to tools/results/fuzz.md (a table of every target's latest run) and the log of
# each run next to its findings. Exit status: 0 when no target found anything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
WORK="${RETORT_FUZZ_WORK:-/tmp/retort-fuzz}"
CORPUS="$ROOT/tests/fuzz_corpus"
SUMMARY="$ROOT/tools/results/fuzz.md"
ALL_TARGETS=(fuzz_safetensors fuzz_idx fuzz_cifar fuzz_image fuzz_config fuzz_model_spec)

runs=1000000
build_only=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
  esac
done
[[ ${#targets[@]} -eq 0 ]] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'" >&2; exit 2; }
done

# The largest input worth trying, per format: room for several records or chunks, small enough
# that each unit runs in microseconds.
max_len() {
  case "$1" in
    fuzz_cifar) echo 10000 ;;        # three CIFAR-100 records
    fuzz_image) echo 16384 ;;
    fuzz_model_spec) echo 512 ;;
    *) echo 4096 ;;
  esac
}

CLANG="${CLANG:-clang++}"
command -v "$CLANG" >/dev/null || { echo "fuzz.sh: $CLANG not found (apt-get install clang)" >&2; exit 1; }
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CLANG" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETORT_FUZZ=ON -DRETORT_CUDA=OFF -DRETORT_OPENMP=OFF \
  -DRETORT_BUILD_TESTS=OFF -DRETORT_BUILD_TOOLS=OFF >/dev/null
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target "${targets[@]}"
[[ $build_only -eq 1 ]] && exit 0

mkdir -p "$(dirname "$SUMMARY")"
total_found=0
for t in "${targets[@]}"; do
  out="$WORK/$t"
  mkdir -p "$out/corpus" "$out/findings"
  log="$out/fuzz.log"
  echo "== $t: $runs runs, -max_len=$(max_len "$t")"
  start=$(date +%s.%N)
  # libFuzzer's exit status is non-zero on a finding; the findings are counted below instead.
  "$BUILD/tools/fuzz/$t" "$out/corpus" "$CORPUS/$t" -runs="$runs" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$out/findings/" \
    >"$log" 2>&1 || true
  end=$(date +%s.%N)
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  executions=${executions:-0}
  # the findings of this run: the files libFuzzer wrote since it started
  found=$(find "$out/findings" -maxdepth 1 -newermt "@${start%.*}" \
            \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  n_found=$(printf '%s' "$found" | grep -c . || true)
  total_found=$((total_found + n_found))

  # earlier findings, kept as regression inputs: each must now run clean
  fixed=0; known=0
  for input in "$CORPUS"/regressions/"$t"-*; do  # README.md lists them
    [[ -e "$input" ]] || continue
    known=$((known + 1))
    if "$BUILD/tools/fuzz/$t" "$input" -rss_limit_mb=2048 -timeout=10 >/dev/null 2>&1; then
      fixed=$((fixed + 1))
    else
      echo "   regression input $input FAILS again"
    fi
  done

  echo "   executions: $executions   seconds: $seconds   findings: $n_found   earlier findings passing: $fixed/$known"
  [[ -n "$found" ]] && printf '   %s\n' $found
  echo "| $t | $executions | $seconds | $n_found | $fixed of $known |" >"$out/row.md"
done

{
  echo "# Fuzzing results"
  echo
  echo "tools/fuzz.sh, $(date -u +%Y-%m-%d), clang $("$CLANG" -dumpversion), libFuzzer with"
  echo "AddressSanitizer + UndefinedBehaviorSanitizer; -rss_limit_mb=2048 -timeout=10; one target"
  echo "at a time on $(nproc) shared cores; each row is the target's latest run. *Crashes found*:"
  echo "findings of that run (crash, leak, timeout, out-of-memory). *Fixed*: findings of earlier"
  echo "runs (tests/fuzz_corpus/regressions/, listed below) that now run clean."
  echo
  echo "| target | executions | seconds | crashes found | fixed |"
  echo "| --- | --- | --- | --- | --- |"
  # every target's latest run, so running one target does not drop the others' rows
  for t in "${ALL_TARGETS[@]}"; do
    [[ -f "$WORK/$t/row.md" ]] && cat "$WORK/$t/row.md"
  done
  echo
  # the list of earlier findings, as a section
  sed '1s/^# /## /' "$CORPUS/regressions/README.md"
} >"$SUMMARY"
echo "summary: $SUMMARY"
[[ $total_found -eq 0 ]]
