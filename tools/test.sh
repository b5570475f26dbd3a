#!/usr/bin/env bash
# tools/test.sh: set up, build, and run the whole test suite through CTest.
# Extra arguments go to ctest (e.g. -R autograd).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" -j "$(nproc)" --output-on-failure "$@"
