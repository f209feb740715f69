#!/usr/bin/env bash
# The C example in README.md compiles against the built library and runs.
# Args: README path, include dir, library dir, meson's b_sanitize value.
set -euo pipefail
readme=$1 inc=$2 libdir=$3 sanitize=${4:-none}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk '/<!-- example: api -->/ {grab=1; next} grab && /^```c/ {on=1; next} on && /^```/ {exit} on {print}' \
  "$readme" >"$work/example.c"
[ -s "$work/example.c" ] || { echo "no example found in $readme"; exit 1; }
# a sanitized library needs a sanitized program (the runtime must come first)
san=()
[ "$sanitize" = none ] || san=(-fsanitize="$sanitize")
cc "${san[@]}" -std=c11 -Wall -Wextra -Werror -I"$inc" "$work/example.c" -o "$work/example" \
  -L"$libdir" -Wl,-rpath,"$libdir" -levstore $(pkg-config --cflags --libs msgpack)
out=$("$work/example" "$work/store")
echo "$out"
grep -q "appended at position 1, stream version 1" <<<"$out"
grep -q "conflict: the stream is at version 1" <<<"$out"
grep -q "^1 MoneyDeposited v1" <<<"$out"
