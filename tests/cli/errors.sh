#!/usr/bin/env bash
# Bad input gives a clear message and a non-zero exit, never a crash.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command line
expect_fail 2 '^evs: unknown command "frobnicate"$' frobnicate
expect_fail 2 '^evs: unrecognized option "--bogus" for command "read"$' read --bogus
expect_fail 2 '^evs: unrecognized option "--bogus"$' --bogus read
expect_fail 2 '^evs: option "--limit" requires a value$' read --limit
expect_fail 2 '^evs: option "--backward" does not take a value$' read --backward=yes
expect_fail 2 'too many arguments for command "read"' read a b
expect_fail 2 'missing arguments for command "append"' append
rc=0; "$EVS" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 2 "evs without a command"
grep -q '^usage: evs' "$TMP/err" || fail "usage on stderr without a command"

# a missing store is not created by mistake
expect_fail 1 '^evs: store ".*/store" does not exist$' read
expect_fail 1 'does not exist' append s T '{}'
[ ! -e "$EVS_STORE" ] || fail "a command other than init created the store"
mkdir -p "$TMP/empty-dir"
expect_fail 1 'could not open store|does not exist' read --store "$TMP/empty-dir"
evs_ok init

# numbers and option values
expect_fail 2 'invalid value "-1" for option --from' read --from -1
expect_fail 2 'invalid value "1e3" for option --from' read --from 1e3
expect_fail 2 'invalid value " 5" for option --from' read --from " 5"
expect_fail 2 'invalid value "18446744073709551616" for option --from' read --from 18446744073709551616
expect_fail 2 'invalid value "0" for option --limit' read --limit 0
expect_fail 2 'invalid value "x" for option --count' tail --count x
expect_fail 2 'invalid value "maybe" for option --expected' append s T '{}' --expected maybe
expect_fail 2 'invalid value "-1" for option --expected' append s T '{}' --expected -1
expect_fail 2 'invalid value "12Q" for option --map-size' init --map-size 12Q
expect_fail 2 'invalid value "fast" for option --sync' append s T '{}' --sync fast
expect_fail 2 'invalid value "0" for option --type-version' append s T '{}' --type-version 0
expect_fail 2 'invalid value "4294967296" for option --type-version' append s T '{}' --type-version 4294967296
expect_fail 2 'invalid value "0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7" for option --correlation-id' \
	append s T '{}' --correlation-id 0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7
expect_fail 2 'invalid value "00000000-0000-0000-0000-000000000000" for option --id' \
	append s T '{}' --id 00000000-0000-0000-0000-000000000000
expect_fail 2 'invalid value "2024-01-01" for option --occurred-at' append s T '{}' --occurred-at 2024-01-01
expect_fail 2 'option --prefix cannot be used with a STREAM' read s --prefix x

# JSON data
expect_fail 2 '^evs: JSON-DATA: unexpected end of JSON input' append s T '{"a":'
expect_fail 2 '^evs: JSON-DATA: invalid JSON at column 8: ' append s T '{"a":1 "b":2}'
expect_fail 2 '^evs: JSON-DATA must be a JSON object, not an array$' append s T '[1,2]'
expect_fail 2 '^evs: JSON-DATA must be a JSON object, not a string$' append s T '"x"'
expect_fail 2 'integer out of range' append s T '{"a":18446744073709551616}'
expect_fail 2 'integer out of range' append s T '{"a":-9223372036854775809}'
expect_fail 2 'number out of range' append s T '{"a":1e999}'
expect_fail 2 'invalid token "NaN"' append s T '{"a":NaN}'
expect_fail 2 'invalid number' append s T '{"a":-Infinity}'
expect_fail 2 'object key with \\u0000' append s T '{"a\u0000b":1}'
expect_fail 2 'invalid JSON' append s T "$(printf '{"a":"\xff"}')"
expect_fail 2 '^evs: option --metadata: unexpected end of JSON input' append s T '{}' --metadata '{'
expect_fail 2 '^evs: --metadata must be a JSON object, not a number$' append s T '{}' --metadata 5
deep=$(printf '{"a":%.0s' $(seq 1 40))1$(printf '}%.0s' $(seq 1 40))
expect_fail 2 'nested deeper than' append s T "$deep"

# the library's own checks come through with its message
expect_fail 1 '^evs: could not append to stream "": ' append "" T '{}'
expect_fail 1 '^evs: could not append to stream "s": ' append s "" '{}'
long=$(head -c 300 /dev/zero | tr '\0' 'x')
expect_fail 1 '^evs: could not append to stream "'"$long"'": ' append "$long" T '{}'

# JSON Lines input
printf '{"type":"A"}\n\n\n{"type":"A"} trailing\n' >"$TMP/in"
rc=0; "$EVS" append s <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "trailing text status"
grep -q '^evs: line 4: invalid JSON at column 14' "$TMP/err" || fail "line number counts blank lines: $(cat "$TMP/err")"
printf '{"type":"A"}\n{"type":"A","data":{}}\000\n' >"$TMP/in"
rc=0; "$EVS" append s <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "NUL byte status"
grep -q '^evs: line 2 contains a NUL byte' "$TMP/err" || fail "NUL message: $(cat "$TMP/err")"
printf '{"type":"A","id":"not-a-uuid"}\n' >"$TMP/in"
rc=0; "$EVS" append s <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "bad id status"
grep -q '^evs: line 1: field "id" must be a UUID' "$TMP/err" || fail "bad id message"
printf '{"type":"A","type_version":-1}\n' >"$TMP/in"
rc=0; "$EVS" append s <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "bad type_version status"
grep -q 'field "type_version" must be a non-negative integer' "$TMP/err" || fail "bad type_version message"
printf '[1]\n' >"$TMP/in"
rc=0; "$EVS" append s <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "non-object line status"
grep -q '^evs: line 1: expected a JSON object, not an array' "$TMP/err" || fail "non-object line message"
# a line over 64 MiB is refused without reading it all into memory
{ printf '{"type":"A","data":{"x":"'; head -c $((65 << 20)) /dev/zero | tr '\0' 'a'; printf '"}}\n'; } >"$TMP/big"
rc=0; "$EVS" append s <"$TMP/big" >"$TMP/out" 2>"$TMP/err" || rc=$?
rm -f "$TMP/big"
assert_eq "$rc" 1 "long line status"
grep -q '^evs: line 1 is longer than 64 MiB' "$TMP/err" || fail "long line message: $(cat "$TMP/err")"

evs_ok stat
assert_eq "$(json_get last_position "$OUT")" 0 "nothing was written by bad input"

# output errors are reported
if [ -w /dev/full ]; then
	evs_ok append s T '{}'
	rc=0; "$EVS" read >/dev/full 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "writing to a full device"
	grep -q '^evs: could not write to standard output' "$TMP/err" || fail "write error message"
fi

echo "errors: ok"
