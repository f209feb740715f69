#!/usr/bin/env bash
# Formatting is a tool's job: every C file of the project matches
# .clang-format (fix with: clang-format -i FILE). Without clang-format
# the test is skipped (exit 77, meson's skip), never silently passed.
set -euo pipefail
if ! command -v clang-format >/dev/null 2>&1; then
  echo "clang-format not found: format check skipped (Debian: apt-get install clang-format)"
  exit 77
fi
cd "$1"
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null ||
                     find store schema projector query cli examples tests -name '*.[ch]' 2>/dev/null)
[ ${#files[@]} -gt 0 ] || { echo "no C files found"; exit 1; }
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"
    bad=$((bad + 1))
  fi
done
echo "${#files[@]} files checked, $bad not formatted"
[ "$bad" -eq 0 ]
