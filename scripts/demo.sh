#!/usr/bin/env bash
# The evstore demo, end to end on defaults: install what is missing, build,
# create a store in a temporary directory, append events (one at a time and
# as an atomic batch), show optimistic concurrency and idempotent retries,
# read streams and the global log, ask what the store looked like at an
# earlier time, follow the commit stream from another process, verify the
# store, then run the bank-account aggregates, the orders process manager
# (issue 14) and an auditor's as-of query,
# watch a live SSE stream of commits from evs-query, and deliver a signed
# webhook. Set EVS_DEMO_KEEP=1 to keep the store afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/pg.sh
evs_install_deps

[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
evs=$PWD/build/cli/evs

export EVS_STORE
EVS_STORE=$(mktemp -d /tmp/evstore-demo.XXXXXX)/store
chmod 755 "$(dirname "$EVS_STORE")"  # the PostgreSQL server user works in it too
cleanup() {
  [ -n "${tail_pid:-}" ] && kill "$tail_pid" 2>/dev/null
  [ -n "${query_pid:-}" ] && kill "$query_pid" 2>/dev/null
  [ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null
  [ -n "${hook_pid:-}" ] && kill "$hook_pid" 2>/dev/null
  [ -n "${page_proj_pid:-}" ] && kill "$page_proj_pid" 2>/dev/null
  evs_pg_stop
  [ "${EVS_DEMO_KEEP:-0}" = 1 ] || rm -rf "$(dirname "$EVS_STORE")"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "create a store"
show "$evs" init

step "follow the commit stream from another process (evs tail)"
"$evs" tail --from 1 --count 4 >"$EVS_STORE.tail" &   # from the first event: a late start misses nothing
tail_pid=$!

step "open an account: append with expected version no-stream"
show "$evs" append account-42 AccountOpened '{"owner":"Ada","currency":"EUR"}' --expected no-stream
before=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)

step "an atomic batch of two events, expecting version 1"
printf '%s\n' '{"type":"MoneyDeposited","data":{"amount":100}}' \
              '{"type":"MoneyWithdrawn","data":{"amount":30}}' |
  show "$evs" append account-42 --expected 1

step "a stale writer still expecting version 1 is refused (exit code 3)"
if "$evs" append account-42 MoneyWithdrawn '{"amount":500}' --expected 1; then
  echo "unexpected: the stale append succeeded"; exit 1
else
  echo "refused, as it should be (exit $?)"
fi

step "idempotent retry: the same event id twice is stored once"
id=0190f5a2-7c1e-7000-8000-00000000beef
show "$evs" append account-7 AccountOpened '{"owner":"Grace"}' --id $id
show "$evs" append account-7 AccountOpened '{"owner":"Grace"}' --id $id

step "read one stream"
show "$evs" read account-42

step "read everything of type MoneyDeposited"
show "$evs" read --type MoneyDeposited

step "the store as of a time between the first and the second append"
show "$evs" as-of "$before" account-42

step "head of the store and of a stream"
show "$evs" stat
show "$evs" head account-42

step "what the follower in the other process received"
for _ in $(seq 1 300); do kill -0 "$tail_pid" 2>/dev/null || break; sleep 0.1; done
kill "$tail_pid" 2>/dev/null && echo "the follower did not see 4 events in 30 s" >&2
wait "$tail_pid" || true
tail_pid=
cat "$EVS_STORE.tail"

step "verify every index against the log"
show "$evs" verify

step "aggregates: the bank example (examples/bank) decides commands against replayed accounts"
bank=$(dirname "$EVS_STORE")/bank
"$PWD/build/examples/bank/bank-demo" "$bank" | tee "$bank.out"
moment=$(sed -n 's/.*the auditor.s moment: \([^)]*\)).*/\1/p' "$bank.out")

# --- process managers (issue 14): the orders example ---
step "a process manager (examples/orders): OrderPlaced -> reserve stock -> charge -> ship; each step one transaction"
orders=$(dirname "$EVS_STORE")/orders
plugin=$PWD/build/examples/orders/liborders_pm.so
types() { printf '%-14s' "$1:"; "$evs" --store "$orders" read "$1" | python3 -c 'import json, sys; print(" ".join(json.loads(l)["type"] for l in sys.stdin))'; }
"$evs" --store "$orders" init >/dev/null
"$evs" --store "$orders" append stock-book StockAdded '{"qty":2}' >/dev/null
show "$evs" --store "$orders" append order-o1 OrderPlaced '{"order":"o1","sku":"book","qty":1,"amount":1200}'
show "$evs" --store "$orders" append order-o2 OrderPlaced '{"order":"o2","sku":"book","qty":5,"amount":6000}'
show "$evs" --store "$orders" pm run --plugin "$plugin" --until-idle
show "$evs" --store "$orders" pm timers orders
echo "-- the payment provider captures o1's payment (its answer comes back as an event):"
show "$evs" --store "$orders" append payment-o1 PaymentCaptured '{"order":"o1"}'
show "$evs" --store "$orders" pm run --plugin "$plugin" --until-idle
types pm:orders-o1; types pm:orders-o2; types order-o1; types order-o2; types stock-book; types payment-o1
show "$evs" --store "$orders" pm list-parked orders
# --- end of the process-manager step ---

step "schemas: an old AccountOpened (version 1) as stored, and read in today's shape (--upcast)"
show "$evs" --store "$bank" read account-carol --limit 1
show "$evs" --store "$bank" read account-carol --limit 1 --upcast

step "an auditor asks the store for account-alice now and as of $moment (no domain code: merge-patch fold)"
show "$evs" --store "$bank" state account-alice
show "$evs" --store "$bank" state account-alice --as-of "$moment"

step "read models in PostgreSQL: a throwaway cluster, migrations, one catch-up of the projector"
evs_pg_start "$(dirname "$EVS_STORE")/pg"
echo "PostgreSQL: $EVS_PG_DSN"
show "$evs" migrate --migrations migrations:examples/bank/migrations
show "$evs" --store "$bank" project --once --rules examples/bank/bank.projection

step "an analyst's SQL: balances, the ledger, and the generic state as of the auditor's moment"
show psql "$EVS_PG_DSN" -c "SELECT id, owner, balance, open, version FROM bank.accounts ORDER BY id"
show psql "$EVS_PG_DSN" -c "SELECT position, account, kind, amount, counterparty FROM bank.ledger ORDER BY position"
show psql "$EVS_PG_DSN" -c "SELECT evs.state_at('account-alice', '$moment') AS alice_then, (SELECT data FROM evs.state WHERE stream = 'account-alice') AS alice_now"

# --- auditor step (issue 10): the domain's state then and now, HTTP and SQL ---
step "the employee directory (examples/employees): joins, then changes; its own migration and temporal projection"
emp=$(dirname "$EVS_STORE")/employees
before=$(examples/employees/story.sh "$evs" "$emp")
before=${before#before=}
echo "the moment between the joins and the changes: $before"
show "$evs" migrate --migrations examples/employees/migrations
show "$evs" --store "$emp" project --once --no-builtin --rules examples/employees/employees.projection

step "an auditor over HTTP: evs-query serves the declared temporal models (loopback only)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PWD/build/query/evs-query" --dsn "$EVS_PG_DSN" --store "$bank" --projection bank \
  --rules examples/bank/bank.projection,examples/employees/employees.projection \
  --port "$port" --log-level 1 &
query_pid=$!
for _ in $(seq 1 100); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.1; done
enc_moment=${moment//+/%2B}
enc_before=${before//+/%2B}
echo "-- Alice's balance as of $moment, and now:"
show curl -s "localhost:$port/models/bank/accounts/account-alice?as_of=$enc_moment"; echo
show curl -s "localhost:$port/models/bank/accounts/account-alice"; echo
echo "-- john's role, sahra's address, culre's name before the changes:"
show curl -s "localhost:$port/models/employees/staff/employee-john?as_of=$enc_before"; echo
show curl -s "localhost:$port/models/employees/staff/employee-sahra?as_of=$enc_before"; echo
show curl -s "localhost:$port/models/employees/staff/employee-culre?as_of=$enc_before"; echo
show curl -s "localhost:$port/models/employees/staff/employee-john/history"; echo
echo "-- the generic state is the merge-patch fold of Alice's events (\"fold\"), not her balance:"
show curl -s "localhost:$port/streams/account-alice/state?as_of=$enc_moment"; echo
show curl -s "localhost:$port/streams/account-nobody/state"; echo

step "push: a live SSE stream (curl -N) from evs-query: the last two events, then a commit as it lands"
head=$("$evs" --store "$bank" stat | sed -n 's/.*"last_position":\([0-9]*\).*/\1/p')
echo "\$ curl -sN 'localhost:$port/events/stream?after=$((head - 2))'"
curl -sN --max-time 4 "localhost:$port/events/stream?after=$((head - 2))" >"$bank.sse" &
sse_pid=$!
for _ in $(seq 1 100); do grep -q '^id: '"$head"'$' "$bank.sse" 2>/dev/null && break; sleep 0.05; done
show "$evs" --store "$bank" append account-alice MoneyDeposited '{"amount":250}'
wait "$sse_pid" || true  # curl ends the open stream after 4 s
cat "$bank.sse"
kill "$query_pid"; wait "$query_pid" 2>/dev/null || true
query_pid=

step "an analyst's SQL: the same questions through the temporal functions"
show psql "$EVS_PG_DSN" -c "SELECT 'then' AS at, id, balance, open FROM bank.accounts_as_of('$moment') WHERE id = 'account-alice' UNION ALL SELECT 'now', id, balance, open FROM bank.accounts WHERE id = 'account-alice'"
show psql "$EVS_PG_DSN" -c "SELECT t.id, t.name AS name_then, t.role AS role_then, t.address AS address_then, n.name AS name_now, n.role AS role_now, n.address AS address_now FROM employees.staff_as_of('$before') t LEFT JOIN employees.staff n USING (id) ORDER BY id"
# --- end of the auditor step ---

step "a webhook: evs-relay posts each new order-* event, signed (Standard Webhooks); the receiver verifies the signature (docs/verify_webhook.py)"
hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hook_secret=whsec_$(head -c 32 /dev/urandom | base64 -w0)
relay_conf=$(dirname "$EVS_STORE")/relay.conf
printf '[sink demo-hook]\nkind = webhook\nurl = http://127.0.0.1:%s/hook\nsecret = %s\nstream-prefix = order-\n' \
  "$hook_port" "$hook_secret" >"$relay_conf"
show cat "$relay_conf"
python3 docs/verify_webhook.py --listen "$hook_port" --secret "$hook_secret" --count 1 2>/dev/null &
hook_pid=$!
for _ in $(seq 1 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $hook_port))" 2>/dev/null && break; sleep 0.1; done
"$PWD/build/relay/evs-relay" --store "$EVS_STORE" --config "$relay_conf" --log-level warning &
relay_pid=$!
show "$evs" append order-1 OrderPlaced '{"total":42}'
for _ in $(seq 1 300); do kill -0 "$hook_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$hook_pid" 2>/dev/null && { echo "demo: no webhook delivered in 30 s"; exit 1; }
wait "$hook_pid"
hook_pid=
kill "$relay_pid"; wait "$relay_pid" || true  # SIGTERM: the sink writes its checkpoint
relay_pid=
show "$evs" relay status demo-hook

# EVS_DEMO_SERVE=1: keep the service up with the auditor's page (issue 13)
if [ "${EVS_DEMO_SERVE:-0}" = 1 ]; then
  step "the auditor's page: evs-query with the page, the projector following the store (Ctrl-C ends)"
  page_port=${EVS_DEMO_PORT:-8080}
  page_token=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  page_rules=projector/bank.projection
  [ -f "$page_rules" ] || page_rules=examples/bank/bank.projection
  "$PWD/build/projector/evs-projector" --store "$bank" --dsn "$EVS_PG_DSN" \
    --rules "$page_rules" --migrations '' --log-level warning &
  page_proj_pid=$!
  EVS_QUERY_TOKEN=$page_token "$PWD/build/query/evs-query" --dsn "$EVS_PG_DSN" --store "$bank" \
    --rules "$page_rules" --projection bank --port "$page_port" --www query/www \
    --log-level 1 &
  query_pid=$!
  echo "open http://127.0.0.1:$page_port/?stream=account-alice and enter the token $page_token"
  echo "append more: $evs --store $bank append account-alice MoneyDeposited '{\"amount\":700}'"
  wait "$query_pid" || true
fi

echo
echo "demo done: store at $EVS_STORE$([ "${EVS_DEMO_KEEP:-0}" = 1 ] || echo ' (removed; EVS_DEMO_KEEP=1 keeps it)')"
