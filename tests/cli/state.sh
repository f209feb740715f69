#!/usr/bin/env bash
# evs state: the merge-patch fold of a stream, now, as of a time, as of a
# position.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
evs_ok append acct-1 Opened '{"owner":"ann","balance":0,"tags":{"vip":true}}'
evs_ok append acct-2 Opened '{"owner":"bob"}'
evs_ok append acct-1 Deposited '{"balance":5,"tags":{"vip":null,"new":1}}'

evs_ok state acct-1
assert_eq "$OUT" '{"stream":"acct-1","version":2,"position":3,"state":{"owner":"ann","balance":5,"tags":{"new":1}}}' "current state"
evs_ok state acct-1 --at-position 2
assert_eq "$OUT" '{"stream":"acct-1","version":1,"position":1,"state":{"owner":"ann","balance":0,"tags":{"vip":true}}}' "state at position 2"
evs_ok read acct-1
t3=$(json_get recorded_at "$(sed -n 2p <<<"$OUT")"); t3=${t3//\"/}
ns3=$(date -u -d "$t3" +%s%N)
evs_ok state acct-1 --as-of $((ns3 - 1))
assert_eq "$(json_get version "$OUT")" 1 "state just before the deposit"
evs_ok state acct-1 --as-of "$t3"
assert_eq "$(json_get version "$OUT")" 2 "state at the deposit"
evs_ok state acct-1 --as-of 1970-01-01T00:00:00Z
assert_eq "$OUT" '{"stream":"acct-1","version":0,"position":0,"state":{}}' "state before any event"
evs_ok state nobody
assert_eq "$OUT" '{"stream":"nobody","version":0,"position":0,"state":{}}' "state of a missing stream"

expect_fail 2 'exclude each other' state acct-1 --as-of 0 --at-position 1
expect_fail 2 'invalid value "soon" for option --as-of' state acct-1 --as-of soon
expect_fail 2 'missing arguments for command "state"' state

echo "state: ok"
