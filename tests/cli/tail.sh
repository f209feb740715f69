#!/usr/bin/env bash
# evs tail follows commits made by other processes after it started;
# --count ends it, SIGTERM and SIGINT end it cleanly.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
evs_ok append feed-1 First '{"n":1}'

# 1. catch up from position 1, then receive live events from other processes
"$EVS" tail --from 1 --count 3 >"$TMP/tail1" 2>"$TMP/tail1.err" &
pid=$!
wait_for 60 "tail to print the stored event" lines_at_least "$TMP/tail1" 1
# the tail has caught up and is waiting: append from two other processes
evs_ok append feed-1 Second '{"n":2}'
printf '{"type":"Third","data":{"n":3}}\n' | "$EVS" append feed-2 >/dev/null 2>"$TMP/err" ||
	fail "append from stdin"
wait_for 60 "tail --count 3 to exit" not_running "$pid"
rc=0; wait "$pid" || rc=$?
assert_eq "$rc" 0 "tail --count exit status"
assert_eq "$(positions "$(cat "$TMP/tail1")")" "1 2 3 " "tail output"
grep -q '"stream":"feed-2","version":1,.*"type":"Third",.*"data":{"n":3}}$' "$TMP/tail1" ||
	fail "third event: $(cat "$TMP/tail1")"

# 2. without --from only new events are printed; filters apply
"$EVS" tail --count 1 --type Wanted --prefix feed- >"$TMP/tail2" 2>"$TMP/tail2.err" &
pid=$!
# the tail may subscribe at any moment: keep appending (bounded) until it
# has printed one event; skipped types and streams must never show up
deadline=$((SECONDS + 60))
while ! lines_at_least "$TMP/tail2" 1; do
	[ "$SECONDS" -lt "$deadline" ] || fail "tail without --from printed nothing"
	"$EVS" append other-1 Wanted '{}' >/dev/null 2>"$TMP/err" || fail "append other-1"
	"$EVS" append feed-1 Unwanted '{}' >/dev/null 2>"$TMP/err" || fail "append Unwanted"
	"$EVS" append feed-1 Wanted '{"w":1}' >/dev/null 2>"$TMP/err" || fail "append Wanted"
	sleep 0.1
done
wait_for 60 "tail --count 1 to exit" not_running "$pid"
rc=0; wait "$pid" || rc=$?
assert_eq "$rc" 0 "filtered tail exit status"
line=$(cat "$TMP/tail2")
assert_eq "$(json_get stream "$line")" '"feed-1"' "filtered stream"
assert_eq "$(json_get type "$line")" '"Wanted"' "filtered type"
[ "$(json_get position "$line")" -gt 3 ] || fail "tail without --from replayed old events"

# 3. SIGTERM and SIGINT: clean exit with status 0
# (a fresh output file each time: once it has a line, the handlers are in)
for sig in TERM INT; do
	"$EVS" tail --from 1 >"$TMP/tail-$sig" 2>"$TMP/tail-$sig.err" &
	pid=$!
	wait_for 60 "tail to start printing" lines_at_least "$TMP/tail-$sig" 1
	kill -s "$sig" "$pid"
	wait_for 60 "tail to exit on SIG$sig" not_running "$pid"
	rc=0; wait "$pid" || rc=$?
	assert_eq "$rc" 0 "exit status after SIG$sig"
	[ ! -s "$TMP/tail-$sig.err" ] || fail "tail printed on stderr: $(cat "$TMP/tail-$sig.err")"
done

echo "tail: ok"
