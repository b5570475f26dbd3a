#!/usr/bin/env bash
# tests/consumer/run.sh: builds and runs tests/consumer the two ways a project uses retort.
#
#   run.sh install BUILD_DIR WORK_DIR        `cmake --install BUILD_DIR` to WORK_DIR/prefix, the
#                                            tree moved elsewhere (it must be relocatable), then
#                                            find_package(retort) against it, and a plain compile
#                                            with pkg-config's flags when pkg-config is there
#   run.sh subdirectory SOURCE_DIR WORK_DIR  add_subdirectory(SOURCE_DIR) in a fresh project
#                                            (builds the library again, in Debug to keep it short)
# Prints "consumer ok" for each way that worked; any failure exits non-zero.
set -euo pipefail
mode="$1"
here=$(cd "$(dirname "$0")" && pwd)
work=$(realpath -m "$3")
rm -rf "$work"
mkdir -p "$work"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)

case "$mode" in
  install)
    build=$(realpath "$2")
    cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
    mv "$work/prefix" "$work/moved"  # nothing may point back to where it was installed
    prefix="$work/moved"
    test -f "$prefix/include/retort/retort.h"
    test -f "$prefix/include/retort/engine/tensor.h"
    cmake -S "$here" -B "$work/find-package" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log"
    cmake --build "$work/find-package" > "$work/build.log"
    "$work/find-package/consumer"
    if command -v pkg-config > /dev/null; then
      pc_dir=$(dirname "$(find "$prefix" -name retort.pc | head -n 1)")
      flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs retort)
      echo "pkg-config: $flags"
      # shellcheck disable=SC2086
      c++ -O1 "$here/main.cpp" -o "$work/consumer-pkg-config" $flags
      "$work/consumer-pkg-config"
    fi
    ;;
  subdirectory)
    source_dir=$(realpath "$2")
    cmake -S "$here" -B "$work/subdirectory" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug \
      -DRETORT_SOURCE="$source_dir" > "$work/configure.log"
    cmake --build "$work/subdirectory" -j "$(nproc)" > "$work/build.log"
    "$work/subdirectory/consumer"
    ;;
  *)
    echo "run.sh: unknown mode '$mode' (install or subdirectory)" >&2
    exit 2
    ;;
esac
