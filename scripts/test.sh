#!/usr/bin/env bash
# Builds dfs and runs every test, then prints one summary line
# "N passed, N failed, N skipped" counting test cases (and fuzz targets):
#   1. the plain build (gcc): the unit, integration, security, fuse and faults
#      suites;
#   2. clang with AddressSanitizer + UndefinedBehaviorSanitizer (and
#      -Werror=thread-safety): the same five suites;
#   3. clang with ThreadSanitizer: the unit and integration suites, whose code
#      runs threads against each other (pool, fan-out, store stripes, sessions);
#   4. every libFuzzer target: its corpus and past crashes replayed, then
#      fuzzed for FUZZ_SECONDS (scripts/fuzz.sh);
#   5. as root: the Debian packages built, installed, used and purged
#      (scripts/deb.sh; of the committed tree).
# A sanitizer report from any process (test, dfs_server, dfc, dfcfs) fails the
# run: reports go to files, which are printed and counted.
# Usage: scripts/test.sh [BUILD_DIR]   (default: build-test; the sanitizer and
#        fuzz builds go to BUILD_DIR-asan, BUILD_DIR-tsan, BUILD_DIR-fuzz)
# Environment: DFS_SANITIZERS=0 runs step 1 only (a quick local run);
#              DFS_DEB=0 skips step 5;
#              FUZZ_SECONDS (default 10) per fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-test}
sanitizers=${DFS_SANITIZERS:-1}
fuzz_seconds=${FUZZ_SECONDS:-10}
started=$(date +%s)

bash scripts/deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }

logs=()           # meson testlog.json of every step that ran
extra_passed=0    # fuzz targets
extra_failed=0    # fuzz targets, sanitizer reports, builds that failed
status=0

step() { echo "== $1 ($(($(date +%s) - started)) s)"; }

# Builds folder $1 (set up with the remaining arguments when new) and runs
# `meson test` with the suites in $suites; records its log.
build_and_test() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { extra_failed=$((extra_failed + 1)); status=1; return; }
  fi
  if ! meson compile -C "$dir"; then
    extra_failed=$((extra_failed + 1))
    status=1
    return
  fi
  # shellcheck disable=SC2086
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 $suites || status=1
  logs+=("$dir/meson-logs/testlog.json")
}

# Fails the run for every sanitizer report file in $1.
check_reports() {
  local found
  found=$(find "$1" -type f 2>/dev/null | sort)
  [ -z "$found" ] && return
  while IFS= read -r f; do
    echo "---- sanitizer report: $f"
    head -n 60 "$f"
    extra_failed=$((extra_failed + 1))
  done <<<"$found"
  status=1
}

step "plain build: unit, integration, security, fuse, faults"
suites=""
build_and_test "$build" --buildtype=debugoptimized

if [ "$sanitizers" != 0 ]; then
  reports=$(mktemp -d "${TMPDIR:-/tmp}/dfs-sanitizers.XXXXXX")

  step "clang, AddressSanitizer + UndefinedBehaviorSanitizer: unit, integration, security, fuse, faults"
  mkdir -p "$reports/asan"
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$reports/asan/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/asan/ubsan"
  suites=""
  export CXX=clang++
  build_and_test "$build-asan" -Db_sanitize=address,undefined -Db_lundef=false \
    --optimization=1 -Ddebug=false -Dcpp_args=-gline-tables-only
  unset ASAN_OPTIONS UBSAN_OPTIONS
  check_reports "$reports/asan"

  step "clang, ThreadSanitizer: unit, integration"
  mkdir -p "$reports/tsan"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan/tsan"
  suites="--suite unit --suite integration"
  build_and_test "$build-tsan" -Db_sanitize=thread -Db_lundef=false -Dfuse=disabled \
    --optimization=1 -Ddebug=false -Dcpp_args=-gline-tables-only
  unset TSAN_OPTIONS CXX
  check_reports "$reports/tsan"
  rm -rf "$reports"

  step "fuzz targets, ${fuzz_seconds} s each"
  fuzz_log=$(mktemp "${TMPDIR:-/tmp}/dfs-fuzz-log.XXXXXX")
  bash scripts/fuzz.sh "$build-fuzz" "$fuzz_seconds" 2>&1 | tee "$fuzz_log" || status=1
  if [[ $(tail -n 1 "$fuzz_log") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    extra_passed=$((extra_passed + BASH_REMATCH[1]))
    extra_failed=$((extra_failed + BASH_REMATCH[2]))
  else
    extra_failed=$((extra_failed + 1))
    status=1
  fi
  rm -f "$fuzz_log"
fi

if [ "${DFS_DEB:-$sanitizers}" != 0 ]; then
  step "Debian packages: build, install, a cluster of the installed programs, purge"
  if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: installing packages needs root"
  elif bash scripts/deb.sh; then
    extra_passed=$((extra_passed + 1))
  else
    extra_failed=$((extra_failed + 1))
    status=1
  fi
fi

step "done"
python3 scripts/test_summary.py --extra "$extra_passed" "$extra_failed" "${logs[@]}"
exit $status
