#!/usr/bin/env bash
# The push example of README.md ("Push: the commit stream over HTTP") runs
# as written, and prints what the README shows: its ```sh block between the
# push-example markers is run (evs and evs-query from this build, a free
# port for 8080, a read-model DSN the route never uses, curl cut once it
# has printed as many lines as the README shows, since the stream stays
# open: a condition with a 60 s bound, not a delay) and the output is
# compared with the ```text block, "time" values aside (the commit time
# differs per run).
# Args: README path, evs binary, evs-query binary.
set -euo pipefail
readme=$1 evs=$2 query=$3
dir=$(mktemp -d /tmp/evs-push-readme.XXXXXX)
qpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

block=$(sed -n '/<!-- push-example/,/<!-- \/push-example -->/p' "$readme")
cmds=$(printf '%s\n' "$block" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
want=$(printf '%s\n' "$block" | sed -n '/^```text$/,/^```$/p' | sed '1d;$d')
[ -n "$cmds" ] && [ -n "$want" ] || { echo "no push example in $readme"; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/stream_lib.sh"
cd "$dir"
got=
while IFS= read -r line; do
  case "$line" in
    "evs "*) eval "\"\$evs\" ${line#evs }" >/dev/null ;;
    "evs-query "*)
      eval "\"\$query\" --port $port --log-level error ${line#evs-query }"
      qpid=$!
      for _ in $(seq 1 600); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.1; done ;;
    "curl "*)
      line=${line//localhost:8080/localhost:$port}
      got=$(first_lines "$(printf '%s\n' "$want" | wc -l)" "$line") ;;
    *) echo "unexpected line in the example: $line"; exit 1 ;;
  esac
done <<<"$cmds"
norm() { sed -E 's/"time":"[^"]*"/"time":"T"/g'; }
if [ "$(printf '%s\n' "$got" | norm)" != "$(printf '%s\n' "$want" | norm)" ]; then
  echo "README push example differs; got:"; printf '%s\n' "$got"
  echo "README shows:"; printf '%s\n' "$want"
  exit 1
fi
echo "README push example: output as shown"
