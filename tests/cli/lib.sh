# shellcheck shell=bash
# lib.sh - shared setup for the evs CLI tests; sourced by each test.
#
# Each test gets its own temporary directory (removed on exit) and a store
# path inside it in EVS_STORE. Background processes a test starts are
# stopped on exit. Waiting is always a bounded poll on a condition.

set -euo pipefail

EVS="${EVS_BIN_DIR:?EVS_BIN_DIR must point at the directory with evs}/evs"
[ -x "$EVS" ] || { echo "evs not found at $EVS" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/evs-cli.XXXXXX")
export EVS_STORE="$TMP/store"
unset EVS_LOG_LEVEL
OUT=""

cleanup() {
	local pid
	for pid in $(jobs -p); do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	if [ -s "$TMP/err" ]; then
		echo "--- last stderr:" >&2
		cat "$TMP/err" >&2
	fi
	exit 1
}

# evs_ok ARG...: run evs, which must succeed; its stdout is in $OUT.
evs_ok() {
	# shellcheck disable=SC2034  # OUT is for the caller
	if ! OUT=$("$EVS" "$@" 2>"$TMP/err"); then
		fail "evs $* failed"
	fi
}

# expect_fail STATUS REGEX ARG...: evs must exit with STATUS and print a
# message matching REGEX (grep -E) on stderr, and nothing on stdout.
expect_fail() {
	local want=$1 pattern=$2 rc=0
	shift 2
	"$EVS" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "evs $*: exit status $rc, expected $want"
	grep -Eq -- "$pattern" "$TMP/err" ||
		fail "evs $*: stderr does not match /$pattern/"
	grep -q '^evs: ' "$TMP/err" || fail "evs $*: no 'evs: ' message"
	[ ! -s "$TMP/out" ] || fail "evs $*: printed on stdout: $(cat "$TMP/out")"
}

assert_eq() {  # ACTUAL EXPECTED WHAT
	[ "$1" == "$2" ] || fail "$3: expected [$2], got [$1]"
}

# json_get NAME TEXT: the value of a top-level scalar field of one JSON
# line (the tool writes fixed field orders; test data avoids these names).
json_get() {
	sed -n "s/^.*[{,]\"$1\":\(\"[^\"]*\"\|[^,}]*\).*\$/\1/p" <<<"$2"
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
		sleep 0.05
	done
}

lines_at_least() {  # FILE N
	[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

not_running() {  # PID
	! kill -0 "$1" 2>/dev/null
}

positions() {  # TEXT: the "position" of each line, space-separated
	local line out=""
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		line=${line#*\"position\":}
		out+="${line%%,*} "
	done <<<"$1"
	echo "$out"
}
