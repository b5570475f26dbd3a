#!/usr/bin/env bash
# tools/gpu-check.sh: on a machine with an NVIDIA GPU, in one command: builds retort with the
# CUDA backend, runs every test (the CUDA ones verbosely first: they skip elsewhere), runs the
# CUDA tests under compute-sanitizer, and benchmarks training and forward steps on the GPU against
# PyTorch on the same GPU (tools/peer_bench.py --device cuda, TF32 off on both sides). Everything
# goes to $OUT (default ./gpu-check-out); the exit status is non-zero if a build or test failed.
#
#   OUT=/tmp/out tools/gpu-check.sh            # everything
#   GPU_CHECK_BENCH=0 tools/gpu-check.sh       # tests only
#   PYTHON=python3.12 tools/gpu-check.sh       # the Python whose torch is the GPU peer
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
PYTHON="${PYTHON:-python3}"
{
  nvidia-smi || echo "nvidia-smi not available"
  nvcc --version | tail -2
} >"$OUT/machine.txt" 2>&1

# cuDNN: the toolkit's, or else the one PyTorch's wheels bring (nvidia-cudnn), if any
if [ -z "${CUDNN_ROOT:-}" ] && ! ls /usr/local/cuda/include/cudnn.h >/dev/null 2>&1; then
  CUDNN_ROOT="$("$PYTHON" -c 'import os, nvidia.cudnn as c; print(os.path.dirname(c.__file__))' 2>/dev/null || true)"
  export CUDNN_ROOT
fi
echo "CUDNN_ROOT=${CUDNN_ROOT:-}" >>"$OUT/machine.txt"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
archs="${RETORT_CUDA_ARCHITECTURES:-90}"
cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRETORT_CUDA=ON \
  -DRETORT_CUDA_ARCHITECTURES="$archs" -DRETORT_TEST_SUBDIRECTORY=OFF \
  >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$(nproc)" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

status=0
# the CUDA tests first, verbosely, so their messages (device name, differences) are in the log
"$BUILD_DIR/tests/retort_tests" -tc="cuda*" -s >"$OUT/cuda-tests.log" 2>&1 || status=1
ctest --test-dir "$BUILD_DIR" -j "$(nproc)" --output-on-failure >"$OUT/all-tests.log" 2>&1 || status=1
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 1 "$BUILD_DIR/tests/retort_tests" \
    -tc="cuda ops*" >"$OUT/memcheck.log" 2>&1 || status=1
fi
tail -5 "$OUT/cuda-tests.log" "$OUT/all-tests.log"

if [ "${GPU_CHECK_BENCH:-1}" != "0" ]; then
  # retort and PyTorch on the same GPU, same workloads, same threads; bench_table.py pairs them
  bench="$OUT/bench-gpu.jsonl"
  : >"$bench"
  threads="$(nproc)"
  workloads=(
    "resnet20 --train --batch 128 --input 3x32x32"
    "resnet18:stem=cifar --train --batch 128 --input 3x32x32"
    "mobilenet_v2:stem=cifar --train --batch 128 --input 3x32x32"
    "vit_tiny_patch16_224:img_size=32,patch_size=4 --train --batch 128 --input 3x32x32"
    "resnet18 --batch 64 --input 3x224x224"
  )
  for precision in f32 bf16; do
    for w in "${workloads[@]}"; do
      # shellcheck disable=SC2086
      "$BUILD_DIR/retort" bench model $w --device cuda --precision "$precision" --threads "$threads" \
        --steps 20 --json >>"$bench" 2>>"$OUT/bench.log" ||
        { echo "retort bench failed: $w $precision" >>"$OUT/bench.log"; status=1; }
      # shellcheck disable=SC2086
      "$PYTHON" tools/peer_bench.py model $w --device cuda --precision "$precision" \
        --threads "$threads" --steps 20 >>"$bench" 2>>"$OUT/bench.log" ||
        echo "peer bench failed: $w $precision" >>"$OUT/bench.log"
    done
  done
  # the largest GEMMs, in each precision: TFLOP/s against the card's data-sheet peak
  for precision in f32 tf32 bf16; do
    "$BUILD_DIR/retort" bench gemm --device cuda --precision "$precision" \
      --shapes 4096x4096x4096,8192x8192x8192 --seconds 1 --json >>"$OUT/gemm-gpu.jsonl" \
      2>>"$OUT/bench.log" || status=1
  done
  cat "$OUT/gemm-gpu.jsonl"
  "$PYTHON" tools/bench_table.py "$bench" >"$OUT/bench-gpu.md" 2>>"$OUT/bench.log"
  cat "$OUT/bench-gpu.md"
fi
exit $status
