#!/usr/bin/env bash
# "evs project --once" draws a progress line on a terminal (issue 16,
# item 4) and prints nothing extra on stderr when it is a file. Needs a
# PostgreSQL: the throwaway cluster of scripts/pg.sh (or $EVS_PG_DSN).
# Argument: the source root (for scripts/pg.sh and migrations/).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=${1:?usage: project-progress.sh SOURCE_ROOT}
command -v script >/dev/null || { echo "SKIP: no script(1) for a pty"; exit 77; }
# shellcheck source=../../scripts/pg.sh
source "$ROOT/scripts/pg.sh"
# its own directory: the server's user cannot enter $TMP (mode 0700)
PGD=$(mktemp -d "${TMPDIR:-/tmp}/evs-cli-pg.XXXXXX")
trap 'evs_pg_stop; rm -rf "$PGD"; cleanup' EXIT
evs_pg_start "$PGD" || fail "could not start PostgreSQL"

N=120000
evs_ok init
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"type\":\"T\",\"data\":{\"i\":%d}}\n", i }' |
	"$EVS" append s-1 --batch-size 10000 >/dev/null 2>"$TMP/err" || fail "append"
"$EVS" migrate --migrations "$ROOT/migrations" >/dev/null 2>"$TMP/err" || fail "migrate"

# stderr a file: the "ok" line on stdout, the log lines on stderr and no
# progress line (no carriage return, no "project: N of M events")
"$EVS" project --once --projection p1 >"$TMP/out" 2>"$TMP/err" || fail "project"
grep -q "^ok: $N events applied" "$TMP/out" || fail "project said: $(cat "$TMP/out")"
if grep -q $'\r' "$TMP/err" || grep -Eq "^project: [0-9,]+ of" "$TMP/err"; then
	fail "project drew progress on a file: $(head -c 300 "$TMP/err")"
fi

# stderr a terminal: a progress line that ends at the total (a second
# database: the built-in read models belong to one projection)
"${evs_pg_run[@]}" "$EVS_PG_BIN/createdb" -h "$PGD" -U postgres evs2 || fail "createdb"
export EVS_PG_DSN="host=$PGD dbname=evs2 user=postgres"
"$EVS" migrate --migrations "$ROOT/migrations" >/dev/null 2>"$TMP/err" || fail "migrate evs2"
NG=$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$N")
EVS_PROGRESS_DELAY_MS=0 script -qfec "'$EVS' project --once --projection p2 >'$TMP/out2'" /dev/null \
	</dev/null | tr "\r" "\n" >"$TMP/tty" || fail "project on a pty: $(cat "$TMP/tty")"
grep -q "^ok: $N events applied" "$TMP/out2" || fail "project on a pty said: $(cat "$TMP/out2")"
grep -Eq "^project: $NG of $NG events \(100%\)" "$TMP/tty" ||
	fail "no project progress line ending at the total: $(tail -c 300 "$TMP/tty")"
echo "ok"
