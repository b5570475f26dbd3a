#!/usr/bin/env bash
# tools/setup.sh: installs what retort needs (from Debian's archive) and builds it (Release).
# Idempotent: when everything is installed and nothing changed it only runs a no-op build.
#   BUILD_DIR   build directory (default: build)
#   RETORT_CMAKE_ARGS  extra arguments for the first configure (e.g. -DRETORT_NATIVE=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"

# Debian packages: compiler and build tools, the test framework (OpenMP comes with g++), zlib for
# gzip IDX files, stb for images and PNG plots, the Fashion-MNIST dataset the demo trains on, and
# pkg-config (pkgconf), with which the suite checks the installed package, and OpenMPI, which
# runs several ranks (data parallel: `--ranks N`, mpirun).
packages=(g++ cmake ninja-build pkgconf doctest-dev zlib1g-dev libstb-dev dataset-fashion-mnist
          libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${RETORT_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
