#!/usr/bin/env bash
# evs as-of: before the first event, between events, after the last.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
evs_ok as-of 2024-01-01T00:00:00Z
assert_eq "$OUT" '{"position":0}' "as-of on an empty store"

evs_ok append acct-1 Opened '{}'
evs_ok append acct-2 Opened '{}'
evs_ok append acct-1 Deposited '{"amount":5}'
evs_ok read
t1=$(json_get recorded_at "$(sed -n 1p <<<"$OUT")"); t1=${t1//\"/}
t2=$(json_get recorded_at "$(sed -n 2p <<<"$OUT")"); t2=${t2//\"/}
t3=$(json_get recorded_at "$(sed -n 3p <<<"$OUT")"); t3=${t3//\"/}
ns1=$(date -u -d "$t1" +%s%N)
ns2=$(date -u -d "$t2" +%s%N)
ns3=$(date -u -d "$t3" +%s%N)
if [ "$ns1" -ge "$ns2" ] || [ "$ns2" -ge "$ns3" ]; then
	fail "commits share a recorded_at: $t1 $t2 $t3"
fi

# before the first event
evs_ok as-of $((ns1 - 1))
assert_eq "$OUT" '{"position":0}' "before the first (ns)"
evs_ok as-of 1970-01-01T00:00:00Z
assert_eq "$OUT" '{"position":0}' "at the epoch"
evs_ok as-of $((ns1 - 1)) acct-1
assert_eq "$OUT" '{"version":0,"position":0}' "stream before the first"

# exactly at, and between, events (RFC 3339 and nanoseconds)
evs_ok as-of "$t1"
assert_eq "$OUT" '{"position":1}' "at the first (RFC 3339)"
evs_ok as-of "$ns1"
assert_eq "$OUT" '{"position":1}' "at the first (ns)"
evs_ok as-of $((ns2 - 1))
assert_eq "$OUT" '{"position":1}' "between the first and the second"
evs_ok as-of "$t2" acct-1
assert_eq "$OUT" '{"version":1,"position":1}' "acct-1 as of the second event"
evs_ok as-of "$t2" acct-2
assert_eq "$OUT" '{"version":1,"position":2}' "acct-2 as of the second event"
evs_ok as-of $((ns3 - 1))
assert_eq "$OUT" '{"position":2}' "just before the third"

# after the last
evs_ok as-of 2262-01-01T00:00:00Z
assert_eq "$OUT" '{"position":3}' "after the last"
evs_ok as-of 2262-01-01T00:00:00Z acct-1
assert_eq "$OUT" '{"version":2,"position":3}' "acct-1 after the last"
evs_ok as-of 2262-01-01T00:00:00Z nobody
assert_eq "$OUT" '{"version":0,"position":0}' "missing stream after the last"
# time zone offsets are honoured: the same instant written in +02:00
local_t3=$(date -u -d "$t3 + 2 hours" +%Y-%m-%dT%H:%M:%S).${t3#*.}
local_t3=${local_t3%Z}+02:00
evs_ok as-of "$local_t3"
assert_eq "$OUT" '{"position":3}' "offset time $local_t3"

expect_fail 2 'invalid time "yesterday"' as-of yesterday
expect_fail 2 'invalid time "2024-02-30T00:00:00Z": date out of range' as-of 2024-02-30T00:00:00Z
expect_fail 2 'time zone missing' as-of 2024-01-01T00:00:00
expect_fail 2 'more than 9 fractional digits' as-of 2024-01-01T00:00:00.1234567891Z
expect_fail 2 'out of range' as-of 2300-01-01T00:00:00Z
expect_fail 2 'integer nanoseconds out of range' as-of 99999999999999999999
expect_fail 2 'missing arguments' as-of

echo "as-of: ok"
