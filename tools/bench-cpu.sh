#!/usr/bin/env bash
# tools/bench-cpu.sh: retort against PyTorch (Debian's python3-torch, tools/peer_bench.py) on this
# CPU, each measurement in its own process, retort first and PyTorch right after it:
#   - the FMA peak; GEMM on 512, 1024, 2048 squares and the skinny shapes of a training step, for
#     retort and for torch.mm on OpenBLAS's own kernel choice (AVX-512 where the CPU has it: the
#     OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE of the environment are unset for that one run), on
#     OpenBLAS with the environment as it is, and on the system's BLAS when that is not OpenBLAS;
#   - training steps of resnet18 (ImageNet stem), resnet18:stem=cifar, mobilenet_v2 and
#     vit_tiny_patch16_224:img_size=32,patch_size=4, and KD steps into mobilenet_v2 from the ViT
#     and from resnet18 (batch 64, 3x32x32 inputs).
# All JSON records go to one file (written whole at the end; progress and records on stderr), and
# tools/bench_table.py prints the tables from it on stdout.
#
# Debian's torch calls whatever libblas.so.3 the loader finds. When OpenBLAS is not installed, the
# package libopenblas0-pthread is unpacked into build-openblas/ (from apt's cache, or fetched with
# apt-get download) and put first on LD_LIBRARY_PATH of the PyTorch runs only; the system's BLAS
# is left as it is. --peer-blas system runs PyTorch's model and KD steps on the system's BLAS.
#
#   tools/bench-cpu.sh [--threads N] [--steps N] [--quick] [--out FILE] [--peer-blas openblas|system]
#   RETORT: the retort binary (build/retort)
set -uo pipefail
cd "$(dirname "$0")/.."

RETORT="${RETORT:-build/retort}"
PYTHON=/usr/bin/python3
THREADS="$(nproc)"
BATCH=64
STEPS=10
GEMM_SECONDS=0.3
OUT=tools/results/bench-cpu.jsonl
PEER_BLAS=openblas
INPUT=3x32x32

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

STEPS_GIVEN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="${2:?--threads needs a number}"; shift 2 ;;
    --steps) STEPS_GIVEN="${2:?--steps needs a number}"; shift 2 ;;
    --quick) BATCH=16; STEPS=2; GEMM_SECONDS=0.05; shift ;;
    --out) OUT="${2:?--out needs a file}"; shift 2 ;;
    --peer-blas) PEER_BLAS="${2:?--peer-blas needs openblas or system}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-cpu: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$STEPS_GIVEN" ] && STEPS="$STEPS_GIVEN"
for n in "$THREADS" "$STEPS"; do
  case "$n" in ''|*[!0-9]*|0) echo "bench-cpu: '$n' is not a positive count" >&2; exit 2 ;; esac
done
case "$PEER_BLAS" in openblas|system) ;; *) echo "bench-cpu: --peer-blas is openblas or system" >&2; exit 2 ;; esac
[ -x "$RETORT" ] || { echo "bench-cpu: no retort binary at $RETORT (build it, or set RETORT)" >&2; exit 1; }
"$PYTHON" -c "import torch, torchvision" 2>/dev/null ||
  { echo "bench-cpu: $PYTHON has no torch/torchvision (apt-get install python3-torch python3-torchvision)" >&2; exit 1; }

# The folder holding OpenBLAS's libblas.so.3: installed, or unpacked privately into build-openblas/.
openblas_dir() {
  local d deb tmp
  for d in /usr/lib/*/openblas-pthread "$PWD"/build-openblas/usr/lib/*/openblas-pthread; do
    [ -e "$d/libblas.so.3" ] && { echo "$d"; return 0; }
  done
  deb="$(ls /var/cache/apt/archives/libopenblas0-pthread_*.deb 2>/dev/null | tail -n 1)"
  if [ -z "$deb" ]; then
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download libopenblas0-pthread >/dev/null 2>&1)
    deb="$(ls "$tmp"/libopenblas0-pthread_*.deb 2>/dev/null | tail -n 1)"
  fi
  [ -n "$deb" ] && dpkg-deb -x "$deb" build-openblas
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
  for d in "$PWD"/build-openblas/usr/lib/*/openblas-pthread; do
    [ -e "$d/libblas.so.3" ] && { echo "$d"; return 0; }
  done
  return 1
}

OPENBLAS="$(openblas_dir)" || OPENBLAS=""
if [ -z "$OPENBLAS" ]; then
  echo "bench-cpu: OpenBLAS not found and could not be unpacked; PyTorch runs on the system's BLAS" >&2
  PEER_BLAS=system
fi
SYSTEM_IS_OPENBLAS=no
case "$OPENBLAS" in /usr/lib/*) SYSTEM_IS_OPENBLAS=yes ;; esac

# Other work on the machine skews everything, PyTorch's OpenMP steps most of all (threads wait for
# one another at every op): say so rather than print figures that look sound.
LOAD="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$LOAD" 'BEGIN { exit !(l > 0.5) }'; then
  echo "bench-cpu: warning: the machine is busy (load average $LOAD); the figures will be skewed" >&2
fi

mkdir -p "$(dirname "$OUT")"
TMP="$OUT.tmp.$$"
: > "$TMP"
trap 'rm -f "$TMP"' EXIT
FAILED=0

# run LABEL COMMAND...: one measurement in its own process; its JSON lines go to the file and to
# the screen, a failure is reported and the others still run.
run() {
  local label="$1"; shift
  echo "== $label" >&2
  local lines
  if lines="$(OMP_NUM_THREADS="$THREADS" "$@")"; then
    printf '%s\n' "$lines" | grep '^{' | tee -a "$TMP" >&2
  else
    echo "bench-cpu: '$label' failed: $*" >&2
    FAILED=$((FAILED + 1))
  fi
}

# PyTorch on OpenBLAS with the environment as it is (or on the system's BLAS).
peer() {
  if [ "$PEER_BLAS" = openblas ]; then
    LD_LIBRARY_PATH="$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PYTHON" tools/peer_bench.py "$@"
  else
    "$PYTHON" tools/peer_bench.py "$@"
  fi
}

SHAPES="512x512x512,1024x1024x1024,2048x2048x2048,64x65536x576,128x16384x1152,256x4096x2304,\
512x1024x4608,64x576x65536:nt,256x2304x4096:nt,4160x576x192,4160x768x192,4160x192x768,65x65x48,65x48x65"
GEMM=(--shapes "$SHAPES" --threads "$THREADS" --seconds "$GEMM_SECONDS")

run "retort peak" "$RETORT" bench peak --threads "$THREADS" --json
run "retort gemm" "$RETORT" bench gemm "${GEMM[@]}" --json
if [ -n "$OPENBLAS" ]; then
  run "pytorch gemm, OpenBLAS AVX-512" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    LD_LIBRARY_PATH="$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$PYTHON" tools/peer_bench.py gemm "${GEMM[@]}" --tag openblas-avx512
  run "pytorch gemm, OpenBLAS, env as is" env \
    LD_LIBRARY_PATH="$OPENBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$PYTHON" tools/peer_bench.py gemm "${GEMM[@]}" --tag as-is
fi
if [ "$SYSTEM_IS_OPENBLAS" = no ]; then
  run "pytorch gemm, system BLAS" "$PYTHON" tools/peer_bench.py gemm "${GEMM[@]}" --tag system
fi

STEP=(--batch "$BATCH" --input "$INPUT" --threads "$THREADS" --steps "$STEPS")
VIT="vit_tiny_patch16_224:img_size=32,patch_size=4"
for spec in resnet18 resnet18:stem=cifar mobilenet_v2 "$VIT"; do
  run "retort train $spec" "$RETORT" bench model "$spec" --train "${STEP[@]}" --json
  run "pytorch train $spec" peer model "$spec" --train "${STEP[@]}"
done
for teacher in "$VIT" resnet18; do
  run "retort kd $teacher -> mobilenet_v2" "$RETORT" bench kd "$teacher" mobilenet_v2 "${STEP[@]}" --json
  run "pytorch kd $teacher -> mobilenet_v2" peer kd "$teacher" mobilenet_v2 "${STEP[@]}"
done

mv -f "$TMP" "$OUT"
trap - EXIT
echo >&2
echo "records: $OUT" >&2
echo
"$PYTHON" tools/bench_table.py "$OUT"
[ "$FAILED" -eq 0 ] || { echo "bench-cpu: $FAILED measurement(s) failed" >&2; exit 1; }
