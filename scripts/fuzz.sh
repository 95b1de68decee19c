#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz in a clang build folder
# (ASan + UBSan), then for each target: replays every file of
# tests/fuzz/corpus/TARGET and tests/fuzz/regressions/TARGET once, and fuzzes
# for SECONDS from a temporary copy of both (nothing is written into the
# repository). Prints one line per target and "N passed, N failed" (one per
# target); exits non-zero if any target crashed, with the crashing input kept
# in a temporary folder whose path is printed.
# Usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS_PER_TARGET]   (default: build-fuzz 20)
# Environment: FUZZ_TARGETS="names config" runs only those targets.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-20}
targets=${FUZZ_TARGETS:-frame_header messages piece_header config names handshake server_session}

fail_all() {
  echo "$1" >&2
  echo "0 passed, $(wc -w <<<"$targets") failed"
  exit 1
}

command -v clang++ >/dev/null || fail_all "fuzz: clang++ not found (Debian package clang)"
started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/dfs-fuzz.XXXXXX")
keep_work=0
cleanup() { [ "$keep_work" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

if [ ! -f "$build/build.ninja" ]; then
  CXX=${CXX:-clang++} meson setup "$build" -Dfuzz=true -Dfuse=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized \
    -Dcpp_args=-fsanitize=fuzzer-no-link >"$work/setup.log" 2>&1 ||
    { tail -n 40 "$work/setup.log" >&2; fail_all "fuzz: meson setup of $build failed"; }
fi
if ! meson compile -C "$build" fuzz >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  fail_all "fuzz: building the fuzz targets in $build failed (configured with -Dfuzz=true and clang?)"
fi
echo "fuzz: build ready in $(($(date +%s) - started)) s; ${seconds} s per target"

# Halt on the first UBSan report too, so that libFuzzer records the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

passed=0
failed=0
for t in $targets; do
  exe="$build/tests/fuzz/fuzz_$t"
  log="$work/$t.log"
  if [ ! -x "$exe" ]; then
    echo "$t: FAILED (no executable $exe)"
    failed=$((failed + 1))
    continue
  fi
  inputs=()
  for dir in "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"; do
    [ -d "$dir" ] || continue
    while IFS= read -r -d '' f; do inputs+=("$f"); done \
      < <(find "$dir" -type f ! -name README ! -name .gitkeep -print0 | sort -z)
  done

  # 1. Every seed and every past crash, once each.
  if [ "${#inputs[@]}" -gt 0 ] && ! "$exe" -rss_limit_mb=1024 -timeout=10 "${inputs[@]}" >"$log" 2>&1; then
    echo "$t: FAILED replaying the corpus and regressions (${#inputs[@]} inputs)"
    grep -E "^Running: |ERROR|SUMMARY|fuzz property violated|runtime error" "$log" | tail -n 20
    keep_work=1
    failed=$((failed + 1))
    continue
  fi

  # 2. Fuzz from a copy of both folders; new inputs land only in the copy.
  corpus="$work/corpus/$t"
  artifacts="$work/crashes/$t/"
  mkdir -p "$corpus" "$artifacts"
  [ "${#inputs[@]}" -gt 0 ] && cp "${inputs[@]}" "$corpus/" 2>/dev/null
  "$exe" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
    -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  stats="replayed ${#inputs[@]}, execs ${execs:-?}, cov ${cov:-?}, ft ${ft:-?}"
  crash=$(find "$artifacts" -type f | head -n 1)
  if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
    echo "$t: ok ($stats)"
    passed=$((passed + 1))
  else
    keep_work=1
    failed=$((failed + 1))
    echo "$t: CRASHED ($stats, exit $rc)"
    grep -E "ERROR|SUMMARY|fuzz property violated|runtime error|Test unit written" "$log" | head -n 20
    [ -n "$crash" ] && echo "$t: crashing input: $crash (log: $log)" &&
      echo "$t: reproduce: $exe $crash; keep it as tests/fuzz/regressions/$t/<name> once fixed"
  fi
done

[ "$keep_work" = 1 ] && echo "fuzz: logs and crashing inputs kept in $work"
echo "fuzz: done in $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
