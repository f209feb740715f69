#!/usr/bin/env bash
# evs verify: ok on empty and populated stores; fails without a store.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

expect_fail 1 '^evs: store ".*" does not exist' verify
evs_ok init
evs_ok verify
assert_eq "$OUT" "ok: 0 events, no problems" "verify of an empty store"
for i in $(seq 1 20); do printf '{"type":"T","data":{"i":%d}}\n' "$i"; done >"$TMP/in"
"$EVS" append bulk-1 <"$TMP/in" >/dev/null 2>"$TMP/err" || fail "bulk append"
evs_ok append one-1 T '{}'
evs_ok verify
assert_eq "$OUT" "ok: 21 events, no problems" "verify of a populated store"
[ ! -s "$TMP/err" ] || fail "verify printed on stderr: $(cat "$TMP/err")"

# a store whose id index lost an entry: every problem on stderr, exit 1
# (built with lmdb-utils: dump, drop one event_ids record, load)
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
	mdb_dump -a "$EVS_STORE" >"$TMP/dump" || fail "mdb_dump"
	awk '/^database=/ { db = $0 }
	     /^HEADER=END/ { print; if (db == "database=event_ids") skip = 2; next }
	     skip > 0 && substr($0, 1, 1) == " " { skip--; next }
	     { print }' "$TMP/dump" >"$TMP/dump.bad"
	mkdir "$TMP/bad"
	mdb_load -f "$TMP/dump.bad" "$TMP/bad" 2>/dev/null || fail "mdb_load"
	cp "$EVS_STORE/evs-notify" "$TMP/bad/" 2>/dev/null || true
	rc=0; "$EVS" verify --store "$TMP/bad" >"$TMP/out" 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "verify of a damaged store"
	grep -q '^evs: problem: .*event_ids' "$TMP/err" || fail "no problem reported: $(cat "$TMP/err")"
	grep -Eq '^evs: verify found [0-9]+ problems? in store' "$TMP/err" || fail "no problem count"
	[ ! -s "$TMP/out" ] || fail "verify printed ok for a damaged store"
else
	echo "verify: lmdb-utils missing, damaged-store case skipped"
fi

echo "verify: ok"
