#!/usr/bin/env bash
# tools/demo.sh: set up, build, and run the main job (see README.md). Arguments go to `retort demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >&2
"${BUILD_DIR:-build}/retort" demo "$@"
