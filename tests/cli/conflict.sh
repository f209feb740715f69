#!/usr/bin/env bash
# Optimistic concurrency: exit status 3 with the actual version; idempotent
# retries with --id; the same id with other content is refused.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
evs_ok append acct-1 Opened '{"owner":"bo"}' --expected no-stream
expect_fail 3 '^evs: could not append to stream "acct-1": expected version no-stream, actual version 1$' \
	append acct-1 Opened '{"owner":"al"}' --expected no-stream
evs_ok append acct-1 Deposited '{"amount":5}' --expected 1
evs_ok append acct-1 Deposited '{"amount":7}' --expected exists
expect_fail 3 'expected version 2, actual version 3$' append acct-1 Deposited '{"amount":1}' --expected 2
expect_fail 3 'expected version 0, actual version 3$' append acct-1 Deposited '{"amount":1}' --expected 0
expect_fail 3 'expected version exists, actual version 0$' append acct-2 Deposited '{"amount":1}' --expected exists
evs_ok append acct-1 Deposited '{"amount":1}' --expected any
evs_ok head acct-1
assert_eq "$(json_get version "$OUT")" 4 "version after conflicts"
evs_ok head acct-2
assert_eq "$(json_get version "$OUT")" 0 "conflict wrote nothing"

# a batch from stdin conflicts as a whole
printf '%s\n' '{"type":"A"}' '{"type":"B"}' >"$TMP/in"
rc=0; "$EVS" append acct-1 --expected 1 <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 3 "batch conflict status"
grep -q 'expected version 1, actual version 4$' "$TMP/err" || fail "batch conflict message"

# idempotent retry with --id: same result, nothing new
id=0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f
evs_ok append acct-1 Withdrawn '{"amount":3}' --id "$id" --expected 4
assert_eq "$OUT" '{"first_position":5,"last_position":5,"version":5,"idempotent":false}' "first try"
evs_ok append acct-1 Withdrawn '{"amount":3}' --id "$id" --expected 4
assert_eq "$OUT" '{"first_position":5,"last_position":5,"version":5,"idempotent":true}' "retry"
evs_ok stat
assert_eq "$(json_get last_position "$OUT")" 5 "retry appended nothing"
expect_fail 1 "^evs: could not append to stream \"acct-1\": .*$id" \
	append acct-1 Withdrawn '{"amount":4}' --id "$id"
expect_fail 2 'invalid value "nope" for option --id' append acct-1 X '{}' --id nope
expect_fail 2 'option --id needs a single event' append acct-1 --id "$id" </dev/null

evs_ok verify
echo "conflict: ok"
