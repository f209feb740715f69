#!/usr/bin/env bash
# The example of README.md "Tags, categories and indexes" runs as written
# and prints what the README shows. Between the tags-example markers, a
# ```console block: each "$ " line is a command (evs and evs-query from
# this build, a free port for 8080, a read-model DSN the routes never use,
# curl on /events/stream cut once it has printed as many lines as the
# README shows, since a stream stays open: a condition with a 60 s bound,
# not a delay), the lines up to the next command its expected output;
# times aside (the commit time differs per run), everything is compared.
# Args: README path, evs binary, evs-query binary. With --print as a 4th
# argument, print what the commands print instead (to write the README).
set -euo pipefail
readme=$1 evs=$2 query=$3 mode=${4:-}
dir=$(mktemp -d /tmp/evs-tags-readme.XXXXXX)
qpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

block=$(sed -n '/<!-- tags-example/,/<!-- \/tags-example -->/p' "$readme" |
  sed -n '/^```console$/,/^```$/p' | sed '1d;$d')
[ -n "$block" ] || { echo "no tags example in $readme"; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/stream_lib.sh"
unset EVS_STORE
cd "$dir"

run() {  # one command line (and the lines the README shows for it): its output on stdout
  local line=$1
  case "$line" in
    "evs-query "*)
      line=${line%&}
      # exec: $! must be evs-query itself (a subshell in between would
      # be what cleanup kills, leaving the server running)
      (eval "exec \"\$query\" --port $port --log-level error ${line#evs-query }") </dev/null &
      qpid=$!
      for _ in $(seq 1 600); do curl -sf "localhost:$port/health" >/dev/null && return; sleep 0.1; done
      echo "evs-query did not start"; exit 1 ;;
    "evs "*) eval "\"\$evs\" ${line#evs }" ;;
    "curl "*)
      line=${line//localhost:8080/localhost:$port}
      if [[ $line == */events/stream* ]]; then first_lines "$2" "$line"; else eval "$line"; fi ;;
    *) echo "unexpected command in the example: $line"; exit 1 ;;
  esac
}

norm() {
  sed -E -e 's/"(recorded_at|time)":"[^"]*"/"\1":"T"/g' -e 's/"recorded_at_ns":[0-9]+/"recorded_at_ns":N/g'
}

got="" want="" cmd="" nwant=0
flush() {
  [ -n "$cmd" ] || return 0
  local out=
  if [[ $cmd == "evs-query "* ]]; then
    run "$cmd" >"$dir/query.out" 2>&1  # not in $(): it stays running
  else
    out=$(run "$cmd" "$nwant")
  fi
  got+="\$ $cmd"$'\n'
  [ -z "$out" ] || got+="$out"$'\n'
}
while IFS= read -r line; do
  if [[ $line == '$ '* ]]; then
    flush
    cmd=${line#\$ } nwant=0
  else
    nwant=$((nwant + 1))
  fi
  want+="$line"$'\n'
done <<<"$block"
flush
if [ "$mode" = --print ]; then
  printf '%s' "$got"
  exit 0
fi
if [ "$(printf '%s' "$got" | norm)" != "$(printf '%s' "$want" | norm)" ]; then
  echo "README tags example differs; got:"; printf '%s' "$got"
  echo "README shows:"; printf '%s' "$want"
  diff <(printf '%s' "$want" | norm) <(printf '%s' "$got" | norm) || true
  exit 1
fi
echo "README tags example: output as shown"
