#!/usr/bin/env bash
# evs schema add|check|list|show|unknown, and validation through evs append,
# with the bank example's schema files.
# shellcheck source=../cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
SCHEMAS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/bank/schemas" && pwd)"

# check without a store: the documents alone (for CI on a pull request)
evs_ok schema check "$SCHEMAS"/AccountOpened.v1.json
grep -q 'ok (no store: document only)' <<<"$OUT" || fail "check without a store: $OUT"
printf '{"type":"T","version":1,"schema":{"minimun":1}}' >"$TMP/typo.json"
expect_fail 1 'typo.json: invalid schema document: schema at "\$": unknown keyword "minimun"' \
	schema check "$TMP/typo.json"
[ ! -e "$EVS_STORE" ] || fail "schema check created the store"

evs_ok init
evs_ok schema add "$SCHEMAS"/*.v1.json
evs_ok schema add "$SCHEMAS"/AccountOpened.v2.json
evs_ok schema add "$SCHEMAS"/AccountOpened.v2.json   # the same again: fine
evs_ok schema list
assert_eq "$(wc -l <<<"$OUT")" 8 "schema list lines"
grep -q '^{"type":"AccountOpened","version":2,"upcast":"steps","bytes":[0-9]*}$' <<<"$OUT" ||
	fail "list: $OUT"
evs_ok schema show AccountOpened
grep -q '"version": 2' <<<"$OUT" || fail "show latest: $OUT"
evs_ok schema show AccountOpened 1
grep -q '"version": 1' <<<"$OUT" || fail "show 1: $OUT"
expect_fail 1 'has no schema version 3' schema show AccountOpened 3
expect_fail 2 'unknown schema command "frob"' schema frob

# version 2 of a type without an upcaster and not compatible
sed 's/"minimum": 1/"minimum": 5/' "$SCHEMAS"/MoneyDeposited.v1.json |
	sed 's/"version": 1/"version": 2/' >"$TMP/dep2.json"
expect_fail 1 'dep2.json: schema "MoneyDeposited" version 2 is not a compatible change of version 1 \(property "amount" changed\) and has no upcaster' \
	schema check "$TMP/dep2.json"

# validation on append: index, path and rule; nothing written
evs_ok append account-1 AccountOpened '{"owner":"Ann","currency":"SEK"}'
expect_fail 1 'event 0: data at "\$.amount" breaks rule "minimum" of schema "MoneyDeposited" version 1: 0 is less than 1' \
	append account-1 MoneyDeposited '{"amount":0}'
printf '%s\n' '{"type":"MoneyDeposited","data":{"amount":5}}' \
	'{"type":"MoneyDeposited","data":{"amount":7,"memo":"x"}}' >"$TMP/batch.jsonl"
rc=0; "$EVS" append account-1 <"$TMP/batch.jsonl" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "batch with a bad event"
grep -q 'event 1: data at "\$.memo" breaks rule "additionalProperties"' "$TMP/err" ||
	fail "batch message: $(cat "$TMP/err")"
evs_ok head account-1
assert_eq "$(json_get version "$OUT")" 1 "nothing written by the refused batch"

# unknown types
evs_ok schema unknown
assert_eq "$OUT" '{"unknown_types":"accept"}' "default setting"
evs_ok append other Whatever '{}'
evs_ok schema unknown refuse
expect_fail 1 'event 0: type "Whatever" has no schema and the store refuses types without one' \
	append other Whatever '{}'
expect_fail 2 'invalid value "maybe"' schema unknown maybe

# an old event (version 1) is stored as written
evs_ok append account-2 AccountOpened '{"owner":"Old"}' --type-version 1
evs_ok read account-2
grep -q '"type_version":1' <<<"$OUT" || fail "stored version: $OUT"
# ... and read in today's shape with --upcast, the stored bytes unchanged
evs_ok read account-2 --upcast
grep -q '"type_version":2,.*"data":{"owner":"Old","currency":"EUR"}' <<<"$OUT" ||
	fail "read --upcast: $OUT"
evs_ok read account-2
grep -q '"type_version":1,.*"data":{"owner":"Old"}' <<<"$OUT" || fail "after upcast read: $OUT"
evs_ok verify

# A retry stays a retry whatever the registry says now: the same id and
# content with "the latest" type version, after a compatible version 2 was
# added, and after the store began to refuse types without schemas.
evs_ok init --store "$TMP/retry"
printf '{"type":"R","version":1,"schema":{"type":"object","additionalProperties":false,"properties":{"a":{"type":"integer"}}}}' >"$TMP/r1.json"
printf '{"type":"R","version":2,"schema":{"type":"object","additionalProperties":false,"properties":{"a":{"type":"integer"},"b":{"type":"string"}}}}' >"$TMP/r2.json"
evs_ok --store "$TMP/retry" schema add "$TMP/r1.json"
ID=0190f5a2-7c1e-7000-8000-0000000000aa
ID2=0190f5a2-7c1e-7000-8000-0000000000bb
evs_ok --store "$TMP/retry" append r-1 R '{"a":1}' --id $ID
evs_ok --store "$TMP/retry" append free-1 Untyped '{"x":1}' --id $ID2
evs_ok --store "$TMP/retry" schema add "$TMP/r2.json"
evs_ok --store "$TMP/retry" append r-1 R '{"a":1}' --id $ID
grep -q '"idempotent":true' <<<"$OUT" || fail "retry after a new schema version: $OUT"
evs_ok --store "$TMP/retry" schema unknown refuse
evs_ok --store "$TMP/retry" append free-1 Untyped '{"x":1}' --id $ID2
grep -q '"idempotent":true' <<<"$OUT" || fail "retry after unknown types were refused: $OUT"
expect_fail 1 'has no schema' --store "$TMP/retry" append free-2 Untyped '{"x":1}'
