#!/usr/bin/env bash
# "evs pm": run the orders plugin until idle, the timers and parked lists,
# resume refusals, and command-line misuse (exit 2) / failures (exit 1).
# Args: the evs binary, the orders plugin.
set -uo pipefail
evs=$1 plugin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EVS_STORE=$work/store
fail() { echo "FAIL: $*"; exit 1; }
expect() { # status, command...
  local want=$1; shift
  "$@" >"$work/out" 2>"$work/err"; local got=$?
  [ "$got" = "$want" ] || { cat "$work/out" "$work/err"; fail "exit $got, want $want: $*"; }
}

expect 0 "$evs" init
expect 0 "$evs" append stock-s1 StockAdded '{"qty":2}'
expect 0 "$evs" append order-o1 OrderPlaced '{"order":"o1","sku":"s1","qty":1,"amount":5}'
expect 0 "$evs" append order-o2 OrderPlaced '{"order":"o2","sku":"s1","qty":9,"amount":5}'
expect 0 "$evs" pm run --plugin "$plugin" --until-idle --plugin-arg 60 --metrics-file "$work/m.prom"
grep -q '^evs_pm_steps_total{manager="orders",partition="0"} [1-9]' "$work/m.prom" ||
  fail "metrics: $(cat "$work/m.prom")"
grep -q '^evs_pm_lag_events{manager="orders",partition="0"} 0$' "$work/m.prom" || fail "lag"
expect 0 "$evs" pm timers orders
grep -q '^{"manager":"orders","instance":"o1","timer":"payment","due":[0-9]*}$' "$work/out" ||
  fail "timers: $(cat "$work/out")"
[ "$(wc -l <"$work/out")" = 1 ] || fail "one timer expected"
expect 0 "$evs" pm list-parked orders
[ -s "$work/out" ] && fail "nothing is parked: $(cat "$work/out")"
expect 0 "$evs" read order-o2
grep -q '"type":"OrderCancelled"' "$work/out" || fail "o2 is not cancelled"
expect 0 "$evs" append payment-o1 PaymentCaptured '{"order":"o1"}'
expect 0 "$evs" pm run --plugin "$plugin" --until-idle
expect 0 "$evs" read order-o1
grep -q '"type":"OrderShipped"' "$work/out" || fail "o1 is not shipped"
expect 0 "$evs" pm timers orders
[ -s "$work/out" ] && fail "the timer is left: $(cat "$work/out")"
# a second run has nothing to do: every input is behind the checkpoint
n=$("$evs" head | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_position"])')
expect 0 "$evs" pm run --plugin "$plugin" --until-idle
m=$("$evs" head | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_position"])')
[ "$n" = "$m" ] || fail "a second run wrote events ($n -> $m)"

expect 1 "$evs" pm resume orders o1
grep -q 'instance "o1" of process manager "orders" is not parked' "$work/err" || fail "$(cat "$work/err")"
expect 1 "$evs" pm run --plugin "$work/nope.so"
grep -q 'could not load plugin' "$work/err" || fail "$(cat "$work/err")"
expect 1 "$evs" pm run --plugin "$plugin" --plugin-arg abc
expect 2 "$evs" pm run
expect 2 "$evs" pm run --plugin "$plugin" --partitions 2 --partition 2
expect 2 "$evs" pm run --plugin "$plugin" --partitions 0
expect 2 "$evs" pm run --plugin "$plugin" --progress-ms 0
expect 2 "$evs" pm run --plugin ''
expect 2 "$evs" pm run --plugin "$plugin" --metrics-file ''
expect 2 "$evs" pm timers orders --metrics-file "$work/x"
expect 2 "$evs" pm list-parked
expect 2 "$evs" pm list-parked Orders
expect 2 "$evs" pm list-parked orders --until-idle
expect 2 "$evs" pm resume orders
expect 2 "$evs" pm resume orders 'a/b'
expect 2 "$evs" pm resume orders ''
expect 2 "$evs" pm bogus orders
echo "evs pm: ok"
