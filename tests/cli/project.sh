#!/usr/bin/env bash
# evs project --once ends with an honest exit status (issue 16): it gives
# up when PostgreSQL cannot be reached within --connect-timeout (an
# unreachable server, or no DSN at all), and a signal that stops it
# before the store's head is a failure that says how far it got. No
# server is needed: every DSN here points where none listens.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
evs_ok append acct-1 Deposited '{"amount":1}'
mkdir -p "$TMP/no-server"
nosock="host=$TMP/no-server dbname=evs"

# a socket directory without a server: retried, then given up
start=$SECONDS
expect_fail 1 '\(gave up after [0-9.]+ s\)$' \
	project --once --dsn "$nosock" --connect-timeout 1
grep -q '^evs: could not connect to the server: connection to server on socket' "$TMP/err" ||
	fail "no libpq reason in the message"
[ $((SECONDS - start)) -le 20 ] || fail "giving up took $((SECONDS - start)) s"
grep -q 'retrying in' "$TMP/err" || fail "no retry before giving up"

# a closed loopback port
expect_fail 1 'gave up after' \
	project --once --dsn "host=127.0.0.1 port=1 dbname=evs" --connect-timeout 1
grep -q '^evs: could not connect to the server: .*127\.0\.0\.1' "$TMP/err" ||
	fail "no address in the message"

# no DSN at all: libpq's defaults (here PGHOST) are tried, with a hint
PGHOST="$TMP/no-server" expect_fail 1 'gave up after' project --once --connect-timeout 1
grep -q '^hint: no --dsn or EVS_PG_DSN' "$TMP/err" || fail "no hint about the missing DSN"

expect_fail 2 'invalid value "soon" for option --connect-timeout' \
	project --once --connect-timeout soon

# SIGTERM before the head: non-zero, "stopped", how far it got
"$EVS" project --once --dsn "$nosock" --connect-timeout 600 >"$TMP/out" 2>"$TMP/err" &
pid=$!
wait_for 30 "a connection retry" grep -q 'retrying in' "$TMP/err"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 1 "exit status of a stopped evs project --once"
grep -Eq "^evs: stopped before reaching the store's head: 0 events applied, checkpoint 0 of 1$" \
	"$TMP/err" || fail "no 'stopped' message: $(cat "$TMP/err")"
[ ! -s "$TMP/out" ] || fail "printed on stdout: $(cat "$TMP/out")"
echo "ok"
