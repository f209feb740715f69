#!/usr/bin/env bash
# Install what is missing, build, and run every test twice: plain, and under
# AddressSanitizer + UndefinedBehaviorSanitizer. Ends with one line:
# "N passed, N failed, N skipped". Exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
evs_install_deps || { echo "could not install dependencies"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
run_suite() {  # name, build dir, meson setup args...
  local name=$1 dir=$2; shift 2
  echo "=== $name build ($dir)"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; failed=$((failed + 1)); return; }
  fi
  if ! meson compile -C "$dir" >"$dir.compile.log" 2>&1; then
    cat "$dir.compile.log"; failed=$((failed + 1)); return
  fi
  echo "=== $name tests"
  meson test -C "$dir" --print-errorlogs --num-processes 2 2>&1 | tee "$dir.test.log"
  local ok fail skip tout
  ok=$(awk '/^Ok:/ {print $2}' "$dir.test.log")
  fail=$(awk '/^Fail:/ {print $2}' "$dir.test.log")
  skip=$(awk '/^Skipped:/ {print $2}' "$dir.test.log")
  tout=$(awk '/^Timeout:/ {print $2}' "$dir.test.log")
  if [ -z "$ok" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + ok)); failed=$((failed + ${fail:-0} + ${tout:-0})); skipped=$((skipped + ${skip:-0}))
}

run_suite plain build
run_suite sanitized build-san -Db_sanitize=address,undefined -Db_lundef=false

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
