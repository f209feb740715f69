#!/usr/bin/env bash
# init, append, read round trip; flags of append; read filters; head, stat.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok --help
grep -q '^  append' <<<"$OUT" || fail "--help lists no append"
evs_ok append --help
grep -q -- '--expected' <<<"$OUT" || fail "append --help lacks --expected"
evs_ok help read
grep -q -- '--backward' <<<"$OUT" || fail "help read lacks --backward"

evs_ok init
[ -d "$EVS_STORE" ] || fail "init made no store directory"
expect_fail 1 "store \".*\" already exists" init

evs_ok stat
assert_eq "$OUT" '{"last_position":0,"last_recorded_at":null,"streams":0,"map_size":1073741824,"used_bytes":'"$(json_get used_bytes "$OUT")"'}' "stat of an empty store"
evs_ok read
assert_eq "$OUT" "" "read of an empty store"

# every JSON kind; integers stay integers, 1.0 stays a float
data='{"i":1,"neg":-42,"big":18446744073709551615,"min":-9223372036854775808,"f":2.5,"one":1.0,"tiny":1e-300,"s":"x/y \"q\" é \u0001\n","t":true,"n":null,"arr":[1,[2,{"k":[]}],{}],"obj":{"nested":{"deep":false}}}'
expect='{"i":1,"neg":-42,"big":18446744073709551615,"min":-9223372036854775808,"f":2.5,"one":1.0,"tiny":1e-300,"s":"x/y \"q\" é \u0001\n","t":true,"n":null,"arr":[1,[2,{"k":[]}],{}],"obj":{"nested":{"deep":false}}}'
evs_ok append order-1 OrderPlaced "$data" --expected no-stream
assert_eq "$OUT" '{"first_position":1,"last_position":1,"version":1,"idempotent":false}' "first append"

evs_ok append order-1 OrderPaid '{"amount":12.5}' \
	--id 0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f \
	--metadata '{"user":"ann"}' \
	--correlation-id 0190C7E2-5B1A-7CC3-9F5E-000000000001 \
	--causation-id 0190c7e2-5b1a-7cc3-9f5e-000000000002 \
	--occurred-at 2024-05-01T12:34:56.5+02:00 \
	--type-version 3 --expected 1 --sync meta
assert_eq "$OUT" '{"first_position":2,"last_position":2,"version":2,"idempotent":false}' "second append"
evs_ok append customer-7 CustomerCreated '{}' --sync none --expected no-stream

evs_ok read order-1
assert_eq "$(wc -l <<<"$OUT")" 2 "events in order-1"
first=$(sed -n 1p <<<"$OUT")
second=$(sed -n 2p <<<"$OUT")
assert_eq "${first#*\"data\":}" "$expect}" "data round trip"
assert_eq "$(json_get position "$first")" 1 "position"
assert_eq "$(json_get stream "$first")" '"order-1"' "stream"
assert_eq "$(json_get version "$first")" 1 "version"
assert_eq "$(json_get type "$first")" '"OrderPlaced"' "type"
assert_eq "$(json_get type_version "$first")" 1 "default type_version"
grep -Eq '"id":"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"' <<<"$first" ||
	fail "generated id is not a lowercase UUIDv7: $first"
grep -Eq '"recorded_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z"' <<<"$first" ||
	fail "recorded_at is not RFC 3339 with nanoseconds: $first"
for absent in occurred_at correlation_id causation_id; do
	! grep -q "\"$absent\"" <<<"$first" || fail "$absent printed although none"
done
grep -q '"metadata":{},"data":' <<<"$first" || fail "empty metadata: $first"

assert_eq "$(json_get id "$second")" '"0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f"' "given id"
assert_eq "$(json_get type_version "$second")" 3 "given type_version"
assert_eq "$(json_get occurred_at "$second")" '"2024-05-01T10:34:56.500000000Z"' "occurred_at in UTC"
assert_eq "$(json_get correlation_id "$second")" '"0190c7e2-5b1a-7cc3-9f5e-000000000001"' "correlation_id"
assert_eq "$(json_get causation_id "$second")" '"0190c7e2-5b1a-7cc3-9f5e-000000000002"' "causation_id"
grep -q '"metadata":{"user":"ann"},"data":{"amount":12.5}}$' <<<"$second" ||
	fail "metadata and data of the second event: $second"

# reading all, backward, with limits and filters
evs_ok read
assert_eq "$(positions "$OUT")" "1 2 3 " "read all"
evs_ok read --backward
assert_eq "$(positions "$OUT")" "3 2 1 " "read --backward"
evs_ok read --backward --limit 2 --from 2
assert_eq "$(positions "$OUT")" "2 1 " "read --backward --from 2 --limit 2"
evs_ok read --from 2 --limit 1
assert_eq "$(json_get position "$OUT")" 2 "read --from 2 --limit 1"
evs_ok read --prefix customer-
assert_eq "$(json_get stream "$OUT")" '"customer-7"' "read --prefix"
evs_ok read --type OrderPaid --type CustomerCreated
assert_eq "$(positions "$OUT")" "2 3 " "read --type twice"
evs_ok read order-1 --type OrderPaid
assert_eq "$(json_get version "$OUT")" 2 "read STREAM --type"
evs_ok read order-1 --from 2
assert_eq "$(json_get version "$OUT")" 2 "read STREAM --from"
evs_ok read order-1 --backward --limit 1
assert_eq "$(json_get version "$OUT")" 2 "read STREAM --backward --limit 1"
evs_ok read no-such-stream
assert_eq "$OUT" "" "read of a missing stream"

# head and stat
evs_ok head order-1
assert_eq "$OUT" '{"stream":"order-1","version":2,"last_position":2}' "head STREAM"
evs_ok head nobody
assert_eq "$OUT" '{"stream":"nobody","version":0,"last_position":0}' "head of a missing stream"
evs_ok stat
assert_eq "$(json_get last_position "$OUT")" 3 "stat last_position"
assert_eq "$(json_get streams "$OUT")" 2 "stat streams"
grep -Eq '"last_recorded_at":"[0-9-]{10}T[0-9:]{8}\.[0-9]{9}Z"' <<<"$OUT" || fail "stat last_recorded_at: $OUT"
evs_ok head
assert_eq "$(json_get last_position "$OUT")" 3 "head without STREAM"

# --store beats EVS_STORE, before or after the command
other="$TMP/other"
evs_ok --store "$other" init --map-size 2G
evs_ok stat --store "$other"
assert_eq "$(json_get last_position "$OUT")" 0 "the other store is empty"

echo "basic: ok"
