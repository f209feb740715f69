#!/usr/bin/env bash
# The process-manager example in README.md compiles against the built
# library, runs, and prints exactly the block after it.
# Args: README path, include dir, library dir, meson's b_sanitize value.
set -euo pipefail
readme=$1 inc=$2 libdir=$3 sanitize=${4:-none}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk '/<!-- example: pm -->/ {grab=1; next} grab && /^```c/ {on=1; next} on && /^```/ {exit} on {print}' \
  "$readme" >"$work/example.c"
awk '/<!-- output: pm -->/ {grab=1; next} grab && /^```/ {if (on) exit; on=1; next} on {print}' \
  "$readme" >"$work/want.txt"
[ -s "$work/example.c" ] || { echo "no pm example found in $readme"; exit 1; }
[ -s "$work/want.txt" ] || { echo "no pm output block found in $readme"; exit 1; }
san=()
[ "$sanitize" = none ] || san=(-fsanitize="$sanitize")
cc "${san[@]}" -std=c11 -Wall -Wextra -Werror -I"$inc" "$work/example.c" -o "$work/example" \
  -L"$libdir" -Wl,-rpath,"$libdir" -levstore
"$work/example" "$work/store" >"$work/got.txt"
cat "$work/got.txt"
diff -u "$work/want.txt" "$work/got.txt"
