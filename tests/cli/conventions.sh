#!/usr/bin/env bash
# One convention across the programs (issue 16, item 4): the typed option
# table's refusals (exit 2, one message in PostgreSQL's voice) for
# evs-projector and evs-query, --version on every program, --log-format
# json lines that parse, evs-query stopping on SIGTERM, and bank-demo
# --help creating nothing.
# Args: evs-projector, evs-query, bank-demo (paths of the built programs).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROJECTOR=${1:?path of evs-projector}
QUERY=${2:?path of evs-query}
BANK=${3:?path of bank-demo}
VERSION=$("$EVS" --version | sed -n 's/^evs \([0-9][0-9.]*\)$/\1/p')
[ -n "$VERSION" ] || fail "evs --version: $("$EVS" --version)"

# refused PROG STATUS REGEX ARG...: PROG exits STATUS, prints one
# "PROG: ..." line matching REGEX and a hint, nothing on stdout.
refused() {
	local prog=$1 want=$2 pattern=$3 name rc=0
	shift 3
	name=$(basename "$prog")
	(cd "$TMP" && "$prog" "$@") >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$name $*: exit status $rc, expected $want"
	grep -Eq -- "^$name: $pattern\$" "$TMP/err" ||
		fail "$name $*: stderr does not match /^$name: $pattern\$/"
	[ ! -s "$TMP/out" ] || fail "$name $*: printed on stdout: $(cat "$TMP/out")"
}

for prog in "$PROJECTOR" "$QUERY"; do
	refused "$prog" 2 'unrecognized option "--bogus"' --bogus
	refused "$prog" 2 'unrecognized option "--bogus"' --bogus=1
	refused "$prog" 2 'unexpected argument "extra"' extra
	refused "$prog" 2 'option "--log-level" given more than once' --log-level info --log-level=debug
	refused "$prog" 2 'option "--log-level" requires a value' --log-level
	refused "$prog" 2 'invalid value "loud" for option --log-level: not a log level .*' --log-level loud
	refused "$prog" 2 'invalid value "xml" for option --log-format: not a log format \(text or json\)' \
		--log-format xml
	refused "$prog" 2 'invalid value "" for option --log-format: empty' --log-format ''
done

# evs-projector
refused "$PROJECTOR" 2 'invalid value "" for option --store: empty' --store ''
refused "$PROJECTOR" 2 'invalid value "" for option --store: empty' --store=
refused "$PROJECTOR" 2 'invalid value "0" for option --batch: not an integer in 1\.\.100000' --batch 0
refused "$PROJECTOR" 2 'invalid value "100001" for option --batch: not an integer in 1\.\.100000' --batch=100001
refused "$PROJECTOR" 2 'invalid value "99999999999999999999" for option --batch: not an integer in 1\.\.100000' \
	--batch 99999999999999999999
refused "$PROJECTOR" 2 'invalid value " 5" for option --batch: not an integer in 1\.\.100000' --batch ' 5'
refused "$PROJECTOR" 2 'invalid value "maybe" for option --once: not a boolean .*' --once=maybe
refused "$PROJECTOR" 2 'option "--once" given more than once' --once --once=false
refused "$PROJECTOR" 2 'option "--batch-wait-ms" given more than once' --batch-wait-ms 1 --batch_wait_ms 2
EVS_PROJECTOR_BATCH=0 refused "$PROJECTOR" 2 \
	'invalid value "0" for EVS_PROJECTOR_BATCH: not an integer in 1\.\.100000'
EVS_PROJECTOR_STORE= refused "$PROJECTOR" 2 'invalid value "" for EVS_PROJECTOR_STORE: empty'

# evs-query
refused "$QUERY" 2 'invalid value "65536" for option --port: not an integer in 0\.\.65535' --port 65536
refused "$QUERY" 2 'invalid value "-1" for option --port: not an integer in 0\.\.65535' --port=-1
refused "$QUERY" 2 'invalid value "8080x" for option --port: not an integer in 0\.\.65535' --port 8080x
refused "$QUERY" 2 'option "--port" given more than once' --port 1 --port 2
refused "$QUERY" 2 'option "--page-max" given more than once' --page-max 5 --page_max 6
refused "$QUERY" 2 'invalid value "" for option --listen: empty' --listen ''
refused "$QUERY" 2 'invalid value "0" for option --threads: not an integer in 1\.\.256' --threads 0
EVS_QUERY_PORT=x refused "$QUERY" 2 'invalid value "x" for EVS_QUERY_PORT: not an integer in 0\.\.65535'
# a bad variable blocks neither --help/--version nor a flag that overrides it
EVS_QUERY_PORT=x "$QUERY" --help >/dev/null || fail "EVS_QUERY_PORT=x evs-query --help"
assert_eq "$(EVS_QUERY_PORT=x "$QUERY" --version)" "evs-query $VERSION" "EVS_QUERY_PORT=x --version"
EVS_QUERY_PORT=x refused "$QUERY" 2 'invalid value "65536" for option --port: not an integer in 0\.\.65535' --port 65536

# --help names every option with its variable; --version everywhere
"$PROJECTOR" --help >"$TMP/out" || fail "evs-projector --help"
grep -q -- '--batch N .*' "$TMP/out" && grep -q 'EVS_PROJECTOR_BATCH' "$TMP/out" ||
	fail "evs-projector --help: $(cat "$TMP/out")"
"$QUERY" --help >"$TMP/out" || fail "evs-query --help"
grep -q -- '--log-format FORMAT' "$TMP/out" && grep -q 'EVS_QUERY_PAGE_MAX' "$TMP/out" ||
	fail "evs-query --help: $(cat "$TMP/out")"
assert_eq "$("$PROJECTOR" --version)" "evs-projector $VERSION" "evs-projector --version"
assert_eq "$("$QUERY" --version)" "evs-query $VERSION" "evs-query --version"
assert_eq "$("$QUERY" --port 1 --version)" "evs-query $VERSION" "evs-query --port 1 --version"
assert_eq "$(cd "$TMP" && "$BANK" --version)" "bank-demo $VERSION" "bank-demo --version"
grep -q "^project('evstore', 'c',$" "$(dirname "${BASH_SOURCE[0]}")/../../meson.build" ||
	fail "meson.build's project() moved: update this test"
grep -A1 "^project('evstore'" "$(dirname "${BASH_SOURCE[0]}")/../../meson.build" |
	grep -q "version: '$VERSION'," || fail "evs --version $VERSION is not meson's version"

# bank-demo: options are options, not directory names
mkdir "$TMP/bank" && cd "$TMP/bank"
"$BANK" --help >"$TMP/out" || fail "bank-demo --help"
grep -q '^usage: bank-demo' "$TMP/out" || fail "bank-demo --help: $(cat "$TMP/out")"
rc=0; "$BANK" --bogus >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 2 "bank-demo --bogus exit status"
grep -q '^bank-demo: unrecognized option "--bogus"$' "$TMP/err" || fail "bank-demo --bogus: $(cat "$TMP/err")"
rc=0; "$BANK" a b >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 2 "bank-demo a b exit status"
assert_eq "$(ls -A "$TMP/bank")" "" "files bank-demo made for --help, --version, --bogus, a b"
cd "$TMP"

# --log-format json: one JSON object per line with time, level, program
# and message, escaped (a store path with a quote, a backslash and a tab)
is_json_lines() {  # FILE PROGRAM
	python3 - "$1" "$2" <<-'PY' || fail "$2: log lines are not JSON: $(cat "$1")"
	import json, re, sys
	lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
	assert lines, "no lines"
	for l in lines:
	    o = json.loads(l)
	    assert list(o) == ["time", "level", "program", "message"], o
	    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o
	    assert o["level"] in ("error", "warning", "info", "debug"), o
	    assert o["program"] == sys.argv[2], o
	PY
}
odd="$TMP/no \"such\" \\ store	here"
rc=0
"$PROJECTOR" --store "$odd" --dsn "host=$TMP/nowhere" --once --migrations= --log-format json \
	>"$TMP/out" 2>"$TMP/log" || rc=$?
assert_eq "$rc" 1 "evs-projector on a missing store"
is_json_lines "$TMP/log" evs-projector
python3 -c 'import json,sys; m=json.loads(open(sys.argv[1]).readline())["message"]; sys.exit(sys.argv[2] not in m)' \
	"$TMP/log" "$odd" || fail "the store path did not survive JSON: $(cat "$TMP/log")"
EVS_PROJECTOR_LOG_FORMAT=json "$PROJECTOR" --store "$odd" --once >"$TMP/out" 2>"$TMP/log" || true
is_json_lines "$TMP/log" evs-projector
# bytes that are not UTF-8 (and a control character) still give JSON
"$PROJECTOR" --store "$TMP/bad-"$'\xff\xc3\x28\x01'"-utf8" --once --log-format=json \
	>"$TMP/out" 2>"$TMP/log" || true
is_json_lines "$TMP/log" evs-projector
grep -q 'bad-\\ufffd\\ufffd(\\u0001-utf8' "$TMP/log" || fail "bytes not UTF-8 in a JSON log line: $(cat "$TMP/log")"

# text lines: RFC 3339 UTC with ms, program, level
"$PROJECTOR" --store "$odd" --once >"$TMP/out" 2>"$TMP/log" || true
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z evs-projector error: could not open store' \
	"$TMP/log" || fail "evs-projector text log: $(cat "$TMP/log")"

# evs-query: starts without PostgreSQL (connects lazily), logs JSON, and
# stops on SIGTERM sent as soon as it says it listens: the signal must
# end the wait however it falls against the loop's check.
for i in 1 2 3 4 5; do
	"$QUERY" --port 0 --dsn "host=$TMP/nowhere" --log-format json --log-level debug \
		>"$TMP/out" 2>"$TMP/qlog$i" &
	pid=$!
	wait_for 30 "evs-query to listen" grep -q '"listening on' "$TMP/qlog$i"
	kill -TERM "$pid"
	deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || fail "evs-query did not stop on SIGTERM (round $i)"
		sleep 0.05
	done
	rc=0; wait "$pid" || rc=$?
	assert_eq "$rc" 0 "evs-query exit status after SIGTERM"
	grep -q '"message":"stopping"' "$TMP/qlog$i" ||
		fail "evs-query: no stopping line: $(cat "$TMP/qlog$i")"
	is_json_lines "$TMP/qlog$i" evs-query
done

# evs: --log-format is checked; library log lines use the same sink
expect_fail 2 '^evs: invalid value "xml" for option --log-format: not a log format \(text or json\)$' \
	--log-format xml read
EVS_LOG_FORMAT= expect_fail 2 '^evs: invalid value "" for EVS_LOG_FORMAT: not a log format' read
assert_eq "$("$EVS" --log-format json --version)" "evs $VERSION" "evs --log-format json --version"
"$EVS" --version >/dev/null || fail "evs --version"
echo ok
