#!/usr/bin/env bash
# page.sh - the auditor's page (query/www) in Debian's headless chromium,
# against the real service: the bank demo's store, a throwaway PostgreSQL
# (scripts/pg.sh), the projector following the store live, and evs-query
# with a bearer token and the page (--www). page.mjs drives the browser
# with puppeteer-core, installed here from npm into the build folder (the
# version pinned in package.json); screenshots go to SHOTS.
#
#   page.sh EVS PROJECTOR QUERY BANK_DEMO BANK_BALANCE SRC BUILD SHOTS
#
# Waits are bounded polls on conditions, never sleeps as synchronization.
set -euo pipefail
evs=$1 projector=$2 query=$3 bank_demo=$4 bank_balance=$5 src=$6 build=$7 shots=$8

chromium=${EVS_CHROMIUM:-$(command -v chromium || true)}
[ -n "$chromium" ] || { echo "FAIL: no chromium (Debian package chromium: scripts/deps.sh)" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null ||
	{ echo "FAIL: no node/npm (scripts/deps.sh)" >&2; exit 1; }

# puppeteer-core, once per build folder (again when package.json changes)
mods=$build/node
if ! cmp -s "$src/tests/browser/package.json" "$mods/package.json" ||
	[ ! -d "$mods/node_modules/puppeteer-core" ]; then
	mkdir -p "$mods"
	cp "$src/tests/browser/package.json" "$mods/package.json"
	rm -f "$mods/package-lock.json"
	(cd "$mods" && npm install --no-audit --no-fund --loglevel=error </dev/null) ||
		{ rm -f "$mods/package.json"; echo "FAIL: npm install puppeteer-core" >&2; exit 1; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/evs-browser.XXXXXX")
chmod 755 "$TMP"
# shellcheck source=../../scripts/pg.sh
. "$src/scripts/pg.sh"
cleanup() {
	local pid
	for pid in ${query_pid:-} ${proj_pid:-}; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	evs_pg_stop
	if [ "${EVS_BROWSER_KEEP:-0}" != 1 ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
unset EVS_LOG_LEVEL

# the bank example's events, as in scripts/demo.sh
store=$TMP/bank
"$bank_demo" "$store" >"$TMP/bank.out"
echo "bank demo: $(grep -c '^  ok' "$TMP/bank.out") commands ok"

evs_pg_start "$TMP/pg"
# the product's migrations, then the bank's (in examples/bank once moved there)
migrations=$src/migrations
[ ! -d "$src/examples/bank/migrations" ] || migrations=$migrations:$src/examples/bank/migrations
"$evs" migrate --dsn "$EVS_PG_DSN" --migrations "$migrations" >/dev/null
rules=$src/projector/bank.projection
[ -f "$rules" ] || rules=$src/examples/bank/bank.projection
"$projector" --store "$store" --dsn "$EVS_PG_DSN" --rules "$rules" --migrations '' \
	--log-level warning 2>"$TMP/projector.log" &
proj_pid=$!

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=browser-$RANDOM$RANDOM
EVS_QUERY_TOKEN=$token "$query" --dsn "$EVS_PG_DSN" --store "$store" --rules "$rules" \
	--projection bank --port "$port" --www "$src/query/www" --log-level warning \
	2>"$TMP/query.log" &
query_pid=$!

# ready: the service answers and the projection has caught up with the store
ready=
for _ in $(seq 1 600); do
	if out=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/ready") &&
		grep -q '"lag":0,' <<<"$out"; then
		ready=1
		break
	fi
	kill -0 "$query_pid" 2>/dev/null || break
	kill -0 "$proj_pid" 2>/dev/null || break
	sleep 0.1 # polling a condition, bounded (60 s)
done
[ -n "$ready" ] || {
	echo "FAIL: the service never became ready (last: ${out:-none})" >&2
	cat "$TMP/projector.log" "$TMP/query.log" >&2
	exit 1
}

# the last step stops PostgreSQL to see the page say so
cat >"$TMP/pg-stop.sh" <<STOP
$(declare -p evs_pg_run EVS_PG_BIN evs_pg_dir)
"\${evs_pg_run[@]}" "\$EVS_PG_BIN/pg_ctl" -D "\$evs_pg_dir/data" -m fast -w stop >/dev/null
STOP

mkdir -p "$shots"
rc=0
EVS_URL=http://127.0.0.1:$port EVS_TOKEN=$token EVS_SHOTS=$shots EVS_CHROMIUM=$chromium \
	EVS_STORE=$store EVS_CLI=$evs EVS_BANK_BALANCE=$bank_balance EVS_PG_STOP="$TMP/pg-stop.sh" \
	EVS_PROJECTOR_PID=$proj_pid \
	NODE_PATH=$mods/node_modules node "$src/tests/browser/page.mjs" || rc=$?
# the service stops cleanly, and a sanitized build found nothing to say
kill "$query_pid" 2>/dev/null || true
qrc=0
wait "$query_pid" || qrc=$?
query_pid=
if [ "$qrc" -ne 0 ] || grep -qE 'Sanitizer|runtime error' "$TMP/query.log"; then
	echo "FAIL: evs-query exited with status $qrc or a sanitizer spoke" >&2
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	echo "--- evs-query log" >&2; tail -20 "$TMP/query.log" >&2
	echo "--- projector log" >&2; tail -20 "$TMP/projector.log" >&2
fi
echo "screenshots: $shots"
exit "$rc"
