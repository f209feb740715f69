#!/usr/bin/env bash
# The auditor's examples of the docs are what the code prints (issue 10,
# item 4): every block marked "<!-- example: auditor -->" in the files
# given is run against the employee directory's story
# (examples/employees/story.sh), projected into a throwaway PostgreSQL and
# served by evs-query, and each command's output must equal the "# "
# lines that follow it. Times differ from run to run: every RFC 3339 time
# (and PostgreSQL's "YYYY-MM-DD HH:MM:SS.ffffff+00") is compared as
# <time>; everything else, positions included, must be equal.
# In a block: "$before" is the story's moment between the joins and the
# changes, localhost:8080 the service, psql runs on the read-model
# database; lines that start with "evs-query", "evs ", "export" or "#"
# (outside an output) are context, not run. Trailing blanks (psql pads
# its columns) are not compared.
# Args: SOURCE_ROOT BUILD_ROOT FILE...   (EXAMPLES_PRINT=1: print outputs)
set -euo pipefail
ROOT=$1 BUILD=$2
shift 2
EVS=$BUILD/cli/evs
source "$ROOT/scripts/pg.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/evs-doc.XXXXXX")
chmod 755 "$TMP"
qpid=
trap '[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null; evs_pg_stop; rm -rf "$TMP"' EXIT
evs_pg_start "$TMP/pg" >/dev/null
store=$TMP/store
out=$("$ROOT/examples/employees/story.sh" "$EVS" "$store")
before=${out#before=}
"$EVS" migrate --migrations "$ROOT/migrations" >/dev/null
"$EVS" migrate --migrations "$ROOT/examples/employees/migrations" >/dev/null 2>&1
"$EVS" --store "$store" project --once --rules "$ROOT/examples/employees/employees.projection" >/dev/null 2>&1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BUILD/query/evs-query" --dsn "$EVS_PG_DSN" --store "$store" \
	--rules "$ROOT/examples/employees/employees.projection" --port "$port" --log-level 1 &
qpid=$!
up=0
for _ in $(seq 1 1200); do # 60 s: evs-query under the sanitizers on a loaded machine
	curl -sf "localhost:$port/health" >/dev/null && up=1 && break
	sleep 0.05 # a bounded poll of "the server answers"
done
[ "$up" = 1 ] || { echo "evs-query did not answer /health within 60 s"; exit 1; }
norm() {
	sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:[0-9]{2})?)/<time>/g' \
		-e 's/[[:space:]]+$//'
}
run_cmd() {
	local cmd=$1
	cmd=${cmd//localhost:8080/localhost:$port}
	cmd=${cmd//psql /psql_ }
	before=$before bash -c "psql_() { \"\${evs_pg_run[@]}\" psql \"$EVS_PG_DSN\" -X \"\$@\"; }; evs_pg_run=(${evs_pg_run[*]:-}); $cmd" 2>&1
}
fails=0 checked=0
for file in "$@"; do
	# blocks: the lines after the marker's ```sh up to the closing fence
	awk '/<!-- example: auditor -->/ {grab=1; next} grab && /^```/ && !on {on=1; next}
	     on && /^```/ {on=0; grab=0; print "@@END"; next} on {print}' "$file" >"$TMP/block"
	[ -s "$TMP/block" ] || { echo "FAIL: no auditor example in $file"; exit 1; }
	cmd= want=
	flush() {
		[ -n "$cmd" ] || return 0
		got=$(run_cmd "$cmd" | norm)
		if [ -n "${EXAMPLES_PRINT:-}" ]; then
			echo "\$ $cmd"; run_cmd "$cmd" | sed 's/^/# /'
		elif [ "$got" != "$(printf '%s' "$want" | norm)" ]; then
			echo "FAIL: $file: $cmd"; echo "--- documented"; printf '%s\n' "$want"
			echo "--- printed"; printf '%s\n' "$got"; fails=$((fails + 1))
		fi
		checked=$((checked + 1))
		cmd= want=
	}
	while IFS= read -r line; do
		case $line in
		@@END) flush ;;
		curl\ * | psql\ *) flush; cmd=$line ;;
		'#') if [ -n "$cmd" ]; then want+=$'\n'; fi ;;
		'# '*) if [ -n "$cmd" ]; then want+="${want:+$'\n'}${line#\# }"; fi ;;
		*) flush ;;
		esac
	done <"$TMP/block"
done
[ "$fails" -eq 0 ] || exit 1
echo "ok: $checked documented commands print what the docs show"
