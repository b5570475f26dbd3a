#!/usr/bin/env bash
# tools/gpu-check.sh: on a machine with an NVIDIA GPU, builds retort with the CUDA backend and runs
# every test (the CUDA ones included, which skip elsewhere), writing logs to $OUT (default:
# ./gpu-check-out). One command, so a borrowed GPU's time goes to running, not to typing.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
{
  nvidia-smi || echo "nvidia-smi not available"
  nvcc --version | tail -2
} >"$OUT/machine.txt" 2>&1

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
archs="${RETORT_CUDA_ARCHITECTURES:-90}"
cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRETORT_CUDA=ON \
  -DRETORT_CUDA_ARCHITECTURES="$archs" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$(nproc)" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

status=0
# the CUDA tests first, verbosely, so their messages (device name, differences) are in the log
"$BUILD_DIR/tests/retort_tests" -tc="cuda*" -s >"$OUT/cuda-tests.log" 2>&1 || status=1
ctest --test-dir "$BUILD_DIR" -j "$(nproc)" --output-on-failure >"$OUT/all-tests.log" 2>&1 || status=1
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck "$BUILD_DIR/tests/retort_tests" -tc="cuda*" \
    >"$OUT/memcheck.log" 2>&1 || status=1
fi
tail -5 "$OUT/cuda-tests.log" "$OUT/all-tests.log"
exit $status
