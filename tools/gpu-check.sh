#!/usr/bin/env bash
# tools/gpu-check.sh: on a machine with an NVIDIA GPU, in one command: builds retort with the
# CUDA backend, runs every test (the CUDA ones verbosely first: they skip elsewhere), runs the
# CUDA tests under compute-sanitizer, and benchmarks training and forward steps on the GPU against
# PyTorch on the same GPU (tools/peer_bench.py --device cuda, TF32 off on both sides), and, with
# OpenMPI and NCCL, the data-parallel checks on the GPU ranks and the data-parallel path's cost at
# 1 GPU. Everything
# goes to $OUT (default ./gpu-check-out); the exit status is non-zero if a build or test failed.
#
#   OUT=/tmp/out tools/gpu-check.sh            # everything
#   GPU_CHECK_BENCH=0 tools/gpu-check.sh       # build and tests only
#   GPU_CHECK_TESTS=0 tools/gpu-check.sh       # build (a no-op when done) and benchmarks only: the
#                                              # device machine allows 10 minutes per command
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
if [ "${GPU_CHECK_TESTS:-1}" != "0" ]; then
  # the CUDA tests first, verbosely, so their messages (device name, differences) are in the log
  "$BUILD_DIR/tests/retort_tests" -tc="cuda*" -s >"$OUT/cuda-tests.log" 2>&1 || status=1
  ctest --test-dir "$BUILD_DIR" -j "$(nproc)" --output-on-failure >"$OUT/all-tests.log" 2>&1 || status=1
  if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 1 "$BUILD_DIR/tests/retort_tests" \
      -tc="cuda ops*" >"$OUT/memcheck.log" 2>&1 || status=1
  fi
  tail -5 "$OUT/cuda-tests.log" "$OUT/all-tests.log"
fi

# Data parallel on the GPU (NCCL, started by mpirun; with the tests): needs OpenMPI and NCCL at
# build time. The
# gradient check over the GPU ranks, then the data-parallel path at 1 GPU against the plain path:
# the same training run, images/s of the last epoch of each.
if [ "${GPU_CHECK_TESTS:-1}" = "0" ]; then
  :  # benchmarks only
elif grep -q "NCCL ON" "$OUT/configure.log" && command -v mpirun >/dev/null; then
  ngpu="$(nvidia-smi -L 2>/dev/null | wc -l)"
  mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
  for ranks in 1 "$ngpu"; do
    "${mpi[@]}" -np "$ranks" "$BUILD_DIR/tests/retort_dist_check" grads cuda       >>"$OUT/dist-gpu.log" 2>&1 || status=1
  done
  "${mpi[@]}" -np 1 "$BUILD_DIR/tests/retort_dist_check" exact cuda >>"$OUT/dist-gpu.log" 2>&1 || status=1
  dp_conf="$OUT/dp-bench.conf"
  printf '%s\n' "[model]" "spec = resnet18:stem=cifar,num_classes=10" "[data]" \
    "path = synthetic:num_classes=10,size=25600,test_size=256,channels=3,height=32,width=32" \
    "val_size = 0" "batch_size = 128" "workers = 4" "[run]" "epochs = 2" "device = cuda" >"$dp_conf"
  rm -rf "$OUT/dp-plain" "$OUT/dp-ranks"
  "$BUILD_DIR/retort" train --config "$dp_conf" --out "$OUT/dp-plain" >"$OUT/dp-plain.log" 2>&1 || status=1
  "$BUILD_DIR/retort" train --config "$dp_conf" --out "$OUT/dp-ranks" --gpus 1 >"$OUT/dp-ranks.log" 2>&1 || status=1
  {
    echo "data-parallel path at 1 GPU against the plain path (resnet18 cifar, batch 128, last epoch):"
    grep -ho "epoch 2/2: .*img/s" "$OUT/dp-plain.log" "$OUT/dp-ranks.log"
    grep -h "data parallel:" "$OUT/dp-ranks.log"
  } | tee -a "$OUT/dist-gpu.log"
  if [ "$ngpu" -gt 1 ]; then
    "$BUILD_DIR/retort" train --config "$dp_conf" --out "$OUT/dp-all" --gpus "$ngpu" >"$OUT/dp-all.log" 2>&1 || status=1
    grep -ho "epoch 2/2: .*img/s" "$OUT/dp-all.log" | sed "s/^/$ngpu GPUs: /" | tee -a "$OUT/dist-gpu.log"
  fi
else
  echo "data parallel on the GPU: skipped (needs OpenMPI's mpirun and a build with NCCL ON)" | tee "$OUT/dist-gpu.log"
fi

if [ "${GPU_CHECK_BENCH:-1}" != "0" ]; then
  # retort and PyTorch on the same GPU, same workloads, same threads; bench_table.py pairs them
  bench="$OUT/bench-gpu.jsonl"
  : >"$bench"
  threads="$(nproc)"
  # The workloads of the GPU comparison: training steps at 224 px, batch 128, and KD steps.
  workloads=(
    "resnet18 --train --batch 128 --input 3x224x224"
    "resnet50 --train --batch 128 --input 3x224x224"
    "mobilenet_v2 --train --batch 128 --input 3x224x224"
    "vit_tiny_patch16_224 --train --batch 128 --input 3x224x224"
    "vit_small_patch16_224 --train --batch 128 --input 3x224x224"
  )
  kd_pairs=("vit_small_patch16_224 resnet18" "resnet50 mobilenet_v2")
  retort_bench() {  # ARGS...: one retort record, or a failure noted
    "$BUILD_DIR/retort" bench "$@" --device cuda --threads "$threads" --steps 10 --json >>"$bench" \
      2>>"$OUT/bench.log" || { echo "retort bench failed: $*" >>"$OUT/bench.log"; status=1; }
  }
  peer_bench() {  # ARGS...: one PyTorch record (a peer that cannot run is noted, not fatal)
    "$PYTHON" tools/peer_bench.py "$@" --device cuda --threads "$threads" --steps 10 >>"$bench" \
      2>>"$OUT/bench.log" || echo "peer bench failed: $*" >>"$OUT/bench.log"
  }
  for precision in f32 tf32 bf16; do
    for w in "${workloads[@]}"; do
      # shellcheck disable=SC2086
      retort_bench model $w --precision "$precision"
      # shellcheck disable=SC2086
      peer_bench model $w --precision "$precision"
    done
    for pair in "${kd_pairs[@]}"; do
      # shellcheck disable=SC2086
      retort_bench kd $pair --batch 128 --input 3x224x224 --precision "$precision"
      # shellcheck disable=SC2086
      peer_bench kd $pair --batch 128 --input 3x224x224 --precision "$precision"
    done
  done
  # PyTorch's faster variants where they run: channels_last, torch.compile (bf16 and f32)
  for precision in f32 bf16; do
    for w in "${workloads[@]}"; do
      # shellcheck disable=SC2086
      peer_bench model $w --precision "$precision" --channels-last
      # shellcheck disable=SC2086
      peer_bench model $w --precision "$precision" --compile
    done
  done
  # the two attention paths (batched GEMMs + softmax, and the fused kernel) at ViT sizes
  for vit in vit_tiny_patch16_224 vit_small_patch16_224; do
    retort_bench model "$vit" --train --batch 128 --input 3x224x224 --attention fused
  done
  # depthwise convolutions: the direct kernel against cuDNN (the default rows above)
  retort_bench model mobilenet_v2 --train --batch 128 --input 3x224x224 --depthwise kernel
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
