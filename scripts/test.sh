#!/usr/bin/env bash
# Builds dfs and runs every test suite (unit, integration, fuse), then prints
# one summary line "N passed, N failed, N skipped" counting test cases.
# Usage: scripts/test.sh [BUILD_DIR]   (default: build-test)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-test}
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debugoptimized >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$build" || { echo "0 passed, 1 failed"; exit 1; }
meson test -C "$build" --print-errorlogs --num-processes 2
status=$?
python3 scripts/test_summary.py "$build/meson-logs/testlog.json"
exit $status
