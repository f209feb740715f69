#!/usr/bin/env bash
# bench-peers.sh - the one command for the peer benchmark (issue 15): durable
# appends of evstore beside a plain PostgreSQL table and Message DB, in one
# run on this machine.
#
#   bash scripts/bench-peers.sh [options] [-- bench_peers options]
#
# It installs what is missing (Debian packages through scripts/deps.sh, npm
# for Message DB), builds bench_peers (in ./build unless EVS_BUILD_DIR says
# otherwise), makes one scratch directory, starts a throwaway PostgreSQL 15
# cluster in it with fsync=on, synchronous_commit=on and full_page_writes=on
# (durable, like evstore's default EVS_SYNC_FULL), installs Message DB's SQL
# (npm package @eventide/message-db, into the scratch directory) into that
# cluster, and runs bench_peers with its evstore store in the same scratch
# directory, so both sides write to one filesystem on one disk. Everything
# is removed at the end (--keep leaves it).
#
# Options:
#   --dir DIR     parent of the scratch directory (default $TMPDIR or /tmp)
#   --no-deps     do not install packages
#   --no-msgdb    leave Message DB out (no npm, no network)
#   --bench PATH  a bench_peers binary (default: build it)
#   --keep        keep the scratch directory
# After "--": options of bench_peers (--seconds S (2), --rounds N (5), --clients N (16),
# --quick).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parent=${TMPDIR:-/tmp}
deps=1
msgdb=1
bench=
keep=0
mdb_version=1.3.1
while [ $# -gt 0 ]; do
	case $1 in
	--dir) parent=$2; shift 2 ;;
	--no-deps) deps=0; shift ;;
	--no-msgdb) msgdb=0; shift ;;
	--bench) bench=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-peers: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done

if [ $deps = 1 ]; then
	# shellcheck source=scripts/deps.sh
	. "$src/scripts/deps.sh"
	if [ $msgdb = 1 ]; then evs_install_bench_peers_deps; else evs_install_deps; fi
fi

if [ -z "$bench" ]; then
	build=${EVS_BUILD_DIR:-$src/build}
	[ -f "$build/build.ninja" ] || meson setup "$build" "$src" >/dev/null
	ninja -C "$build" -j2 tests/bench/bench_peers >/dev/null
	bench=$build/tests/bench/bench_peers
fi

pg_bin=${EVS_PG_BIN:-/usr/lib/postgresql/15/bin}
scratch=$(mktemp -d "$parent/evs-peers-XXXXXX")
chmod 755 "$scratch" # the server's user must reach its directory
pg=$scratch/pg
run=()
mkdir "$pg"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$pg"
	run=(runuser -u postgres --)
fi

cleanup() {
	"${run[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
	if [ $keep = 1 ]; then echo "kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

"${run[@]}" "$pg_bin/initdb" -D "$pg/data" -A trust -U postgres -E UTF8 >"$pg/initdb.log" 2>&1 ||
	{ cat "$pg/initdb.log"; exit 1; }
"${run[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
	-o "-k $pg -c listen_addresses= -c fsync=on -c synchronous_commit=on -c full_page_writes=on" \
	start >/dev/null || { cat "$pg/server.log"; exit 1; }
"${run[@]}" "$pg_bin/createdb" -h "$pg" -U postgres peers

mdb_dsn=
if [ $msgdb = 1 ]; then
	npm install --prefix "$scratch/npm" --no-audit --no-fund --loglevel=error \
		"@eventide/message-db@$mdb_version" >"$scratch/npm.log" 2>&1 ||
		{ cat "$scratch/npm.log"; exit 1; }
	# Message DB's own installer: role message_store, database
	# message_store, its schema, table, functions, indexes, privileges.
	PGHOST=$pg PGUSER=postgres DATABASE_NAME=message_store \
		bash "$scratch/npm/node_modules/@eventide/message-db/database/install.sh" \
		>"$scratch/msgdb-install.log" 2>&1 || { cat "$scratch/msgdb-install.log"; exit 1; }
	# as its clients do: the role message_store, its schema first in the path
	mdb_dsn="host=$pg dbname=message_store user=message_store options='-c search_path=message_store,public'"
fi

"$bench" --dsn "host=$pg dbname=peers user=postgres" --msgdb-dsn "$mdb_dsn" --dir "$scratch" "$@"
