#!/usr/bin/env bash
# Progress on a terminal for long work (issue 16, item 4): "evs append"
# from stdin, "evs import" and "evs export" draw a progress line on stderr
# and "evs verify" draw a progress line on stderr when it is a terminal
# (seen here through a pty made by script(1)), and print nothing extra
# when stderr is a file or pipe or with --quiet.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${EVS_PROGRESS_EVENTS:-150000}
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"type\":\"T\",\"data\":{\"i\":%d}}\n", i }' \
	>"$TMP/in.jsonl"
NG=$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$N") # 150000 -> 150,000
evs_ok init

# stderr not a terminal: exactly what was printed before, nothing more
"$EVS" append s-1 --batch-size 10000 <"$TMP/in.jsonl" >"$TMP/out" 2>"$TMP/err" || fail "append"
assert_eq "$(wc -l <"$TMP/out")" $((N / 10000)) "append result lines"
[ ! -s "$TMP/err" ] || fail "append printed on stderr: $(head -c 300 "$TMP/err")"
"$EVS" export >"$TMP/x.jsonl" 2>"$TMP/err" || fail "export"
assert_eq "$(wc -l <"$TMP/x.jsonl")" "$N" "exported lines"
[ ! -s "$TMP/err" ] || fail "export printed on stderr: $(head -c 300 "$TMP/err")"
"$EVS" import --store "$TMP/s2" <"$TMP/x.jsonl" >"$TMP/out" 2>"$TMP/err" || fail "import"
grep -q "^{\"imported\":$N," "$TMP/out" || fail "import: $(cat "$TMP/out")"
[ ! -s "$TMP/err" ] || fail "import printed on stderr: $(head -c 300 "$TMP/err")"
"$EVS" verify --store "$TMP/s2" >"$TMP/out" 2>"$TMP/err" || fail "verify"
[ ! -s "$TMP/err" ] || fail "verify printed on stderr: $(head -c 300 "$TMP/err")"
# a pipe is not a terminal either
"$EVS" export 2>&1 >/dev/null | cat >"$TMP/err"
[ ! -s "$TMP/err" ] || fail "export printed on a stderr pipe: $(head -c 300 "$TMP/err")"

# stderr a terminal: script(1) runs the command on a pty; stdout goes to
# a file inside the command, so what script copies out is stderr alone
command -v script >/dev/null || { echo "SKIP: no script(1) (util-linux) for a pty"; exit 77; }
# the first line at once: on a fast machine any of these may finish within
# the 200 ms a line otherwise waits for (--quiet must still draw nothing)
export EVS_PROGRESS_DELAY_MS=0
on_tty() {  # OUTFILE COMMAND-LINE
	script -qfec "$2" /dev/null </dev/null | tr '\r' '\n' >"$1" ||
		fail "on a terminal: $2: $(tail -c 300 "$1")"
}
on_tty "$TMP/tty" "'$EVS' export >'$TMP/x2.jsonl'"
cmp -s "$TMP/x.jsonl" "$TMP/x2.jsonl" || fail "export on a terminal changed stdout"
grep -Eq "^export: [0-9,]+ of $NG events \([0-9]+%\), [0-9,]+/s" "$TMP/tty" ||
	fail "no export progress line on a terminal: $(head -c 300 "$TMP/tty")"
grep -Eq "^export: $NG of $NG events \(100%\)" "$TMP/tty" ||
	fail "export progress does not end at the total: $(tail -c 300 "$TMP/tty")"

on_tty "$TMP/tty" "'$EVS' import --store '$TMP/s3' <'$TMP/x.jsonl' >'$TMP/out'"
grep -Eq "^import: [0-9,]+ events, [0-9,]+/s" "$TMP/tty" ||
	fail "no import progress line on a terminal: $(head -c 300 "$TMP/tty")"
grep -q "^{\"imported\":$N," "$TMP/out" || fail "import on a terminal: $(cat "$TMP/out")"

on_tty "$TMP/tty" "'$EVS' verify --store '$TMP/s2' >'$TMP/out'"
assert_eq "$(cat "$TMP/out")" "ok: $N events, no problems" "verify on a terminal: stdout"
grep -Eq "^verify: [0-9,]+ of $NG events \([0-9]+%\), [0-9,]+/s" "$TMP/tty" ||
	fail "no verify progress line on a terminal: $(head -c 300 "$TMP/tty")"
grep -Eq "^verify: $NG of $NG events \(100%\)" "$TMP/tty" ||
	fail "verify progress does not end at the total: $(tail -c 300 "$TMP/tty")"

on_tty "$TMP/tty" "'$EVS' append s-2 --batch-size 10000 <'$TMP/in.jsonl' >'$TMP/out'"
grep -Eq "^append(: read)?: [0-9,]+ (of [0-9,]+ )?events" "$TMP/tty" ||
	fail "no append progress line on a terminal: $(head -c 300 "$TMP/tty")"

# --quiet (global or per command): nothing on the terminal either
on_tty "$TMP/tty" "'$EVS' --quiet export >/dev/null"
[ ! -s "$TMP/tty" ] || fail "evs --quiet export drew: $(head -c 300 "$TMP/tty")"
on_tty "$TMP/tty" "'$EVS' import -q --store '$TMP/s4' <'$TMP/x.jsonl' >/dev/null"
[ ! -s "$TMP/tty" ] || fail "evs import -q drew: $(head -c 300 "$TMP/tty")"
on_tty "$TMP/tty" "'$EVS' --quiet verify --store '$TMP/s2' >/dev/null"
[ ! -s "$TMP/tty" ] || fail "evs --quiet verify drew: $(head -c 300 "$TMP/tty")"
echo ok
