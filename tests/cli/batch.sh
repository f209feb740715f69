#!/usr/bin/env bash
# JSON Lines from stdin: one atomic batch, defaults from the command line,
# refusal of the whole batch on any bad line, --batch-size chunks.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init

# CRLF endings and blank lines are fine; TYPE and --metadata fill gaps
printf '%s\r\n' \
	'{"data":{"n":1}}' \
	'' \
	'{"type":"Special","data":{"n":2},"metadata":{"own":true}}' \
	'{"data":{"n":3},"type_version":2,"occurred_at":1700000000123456789}' >"$TMP/in"
OUT=$("$EVS" append cart-1 Added --metadata '{"src":"cli"}' --expected no-stream <"$TMP/in") ||
	fail "batch append failed"
assert_eq "$OUT" '{"first_position":1,"last_position":3,"version":3,"idempotent":false}' "batch result"
evs_ok read cart-1
assert_eq "$(positions "$OUT")" "1 2 3 " "batch positions"
l1=$(sed -n 1p <<<"$OUT"); l2=$(sed -n 2p <<<"$OUT"); l3=$(sed -n 3p <<<"$OUT")
assert_eq "$(json_get type "$l1")" '"Added"' "default type"
assert_eq "$(json_get type "$l2")" '"Special"' "own type"
grep -q '"metadata":{"src":"cli"},"data":{"n":1}}$' <<<"$l1" || fail "default metadata: $l1"
grep -q '"metadata":{"own":true},"data":{"n":2}}$' <<<"$l2" || fail "own metadata: $l2"
assert_eq "$(json_get type_version "$l3")" 2 "own type_version"
assert_eq "$(json_get occurred_at "$l3")" '"2023-11-14T22:13:20.123456789Z"' "integer occurred_at"
# one batch is one commit: one recorded_at
assert_eq "$(json_get recorded_at "$l3")" "$(json_get recorded_at "$l1")" "recorded_at of one batch"

# a bad line anywhere refuses the whole input, naming the line
printf '%s\n' '{"type":"A"}' '{"type":"B"}' '{"type":"C","data":{"x":1,}}' >"$TMP/in"
rc=0; "$EVS" append cart-1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for bad JSON on line 3"
grep -q '^evs: line 3: invalid JSON at column' "$TMP/err" || fail "message for bad JSON: $(cat "$TMP/err")"
printf '%s\n' '{"type":"A"}' '{"type":"B","data":[1,2]}' >"$TMP/in"
rc=0; "$EVS" append cart-1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for array data"
grep -q '^evs: line 2: data must be a JSON object, not an array' "$TMP/err" || fail "message for array data: $(cat "$TMP/err")"
printf '%s\n' '{"type":"A"}' '{"data":{}}' >"$TMP/in"
rc=0; "$EVS" append cart-1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for a line without type"
grep -q '^evs: line 2: field "type" is missing' "$TMP/err" || fail "message for missing type: $(cat "$TMP/err")"
printf '%s\n' '{"type":"A","colour":"red"}' >"$TMP/in"
rc=0; "$EVS" append cart-1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for an unknown field"
grep -q '^evs: line 1: unknown field "colour"' "$TMP/err" || fail "message for unknown field: $(cat "$TMP/err")"
# the library refuses event 3 (empty type): nothing of the batch is written
printf '%s\n' '{"type":"A"}' '{"type":"B"}' '{"type":""}' >"$TMP/in"
rc=0; "$EVS" append cart-1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for an empty type"
grep -q '^evs: could not append to stream "cart-1": ' "$TMP/err" || fail "message for empty type: $(cat "$TMP/err")"
rc=0; "$EVS" append cart-1 </dev/null >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for empty input"
grep -q '^evs: no events on standard input' "$TMP/err" || fail "message for empty input"
evs_ok head cart-1
assert_eq "$OUT" '{"stream":"cart-1","version":3,"last_position":3}' "nothing written by refused batches"

# ids per line make a retried batch idempotent
printf '%s\n' \
	'{"type":"P","id":"0190c7e2-5b1a-7cc3-9f5e-0000000000a1","data":{"k":1}}' \
	'{"type":"P","id":"0190c7e2-5b1a-7cc3-9f5e-0000000000a2","data":{"k":2}}' >"$TMP/in"
OUT=$("$EVS" append pay-1 --expected no-stream <"$TMP/in") || fail "id batch"
assert_eq "$OUT" '{"first_position":4,"last_position":5,"version":2,"idempotent":false}' "id batch"
OUT=$("$EVS" append pay-1 --expected no-stream <"$TMP/in") || fail "id batch retry"
assert_eq "$OUT" '{"first_position":4,"last_position":5,"version":2,"idempotent":true}' "id batch retry"

# msgpack given directly in base64: {"b": bin 0x01 0x02}
b64=$(printf '\x81\xa1b\xc4\x02\x01\x02' | base64 -w0)
printf '{"type":"Raw","data_msgpack":"%s"}\n' "$b64" >"$TMP/in"
OUT=$("$EVS" append raw-1 <"$TMP/in") || fail "data_msgpack append"
evs_ok read raw-1
grep -q "\"data_msgpack\":\"$b64\"}\$" <<<"$OUT" || fail "bin data read back: $OUT"

# --batch-size: chunks chained by exact expected versions
for i in 1 2 3 4 5; do printf '{"type":"T","data":{"i":%d}}\n' "$i"; done >"$TMP/in"
OUT=$("$EVS" append chunked-1 --batch-size 2 --expected no-stream <"$TMP/in") || fail "--batch-size"
assert_eq "$(wc -l <<<"$OUT")" 3 "result lines of 3 chunks"
assert_eq "$(sed -n 3p <<<"$OUT")" '{"first_position":11,"last_position":11,"version":5,"idempotent":false}' "last chunk"
evs_ok read chunked-1
assert_eq "$(wc -l <<<"$OUT")" 5 "events appended in chunks"

evs_ok verify
echo "batch: ok"
