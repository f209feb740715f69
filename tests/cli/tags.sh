#!/usr/bin/env bash
# Tags and producer (issue 12) through the CLI: append (flags and JSON
# lines), read filters (--type, --category, --tag, --correlation; forward,
# backward, --limit), every event line shows them, export -> import into a
# fresh store -> read is byte-equal, and bad input is refused the same way
# everywhere.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C1=0190c7e2-5b1a-7cc3-9f5e-000000000001
evs_ok init
evs_ok append account-1 Opened '{"owner":"ann"}' --tag account:1 --tag 'ville:zürich' --producer billing \
	--correlation-id "$C1"
evs_ok append account-2 Opened '{"owner":"bob"}' --tag account:2
evs_ok append order-1 Placed '{"total":3}' --tag account:1 --tag order:1 --producer 'shop-ü'
{
	echo '{"type":"Moved","tags":["x,y","account:1"],"producer":"mover","data":{"to":2}}'
	echo '{"type":"Moved","data":{"to":3}}'
	echo '{"type":"Noted","tags":[],"producer":null}'
} | "$EVS" append account-1 --tag default:1 --producer fallback >/dev/null 2>"$TMP/err" ||
	fail "append from stdin"

# every line shows producer and tags when present, tags sorted by bytes
"$EVS" read >"$TMP/all.jsonl" || fail "read"
assert_eq "$(wc -l <"$TMP/all.jsonl")" 6 "events"
grep -q '^{"position":1,.*"producer":"billing","tags":\["account:1","ville:zürich"\],"metadata":{},"data":{"owner":"ann"}}$' \
	"$TMP/all.jsonl" || fail "line 1: $(sed -n 1p "$TMP/all.jsonl")"
line2=$(sed -n 2p "$TMP/all.jsonl")
[[ $line2 == *'"tags":["account:2"],"metadata"'* && $line2 != *'"producer"'* ]] ||
	fail "line 2: $line2"
grep -q '^{"position":4,.*"producer":"mover","tags":\["account:1","x,y"\],' "$TMP/all.jsonl" ||
	fail "line 4: $(sed -n 4p "$TMP/all.jsonl")"
grep -q '^{"position":5,.*"producer":"fallback","tags":\["default:1"\],' "$TMP/all.jsonl" ||
	fail "defaults from the flags: $(sed -n 5p "$TMP/all.jsonl")"
line6=$(sed -n 6p "$TMP/all.jsonl")
[[ $line6 != *'"tags"'* && $line6 != *'"producer"'* ]] || fail "empty tags, null producer: $line6"

# filters
evs_ok read --tag account:1
assert_eq "$(positions "$OUT")" "1 3 4 " "--tag account:1"
evs_ok read --tag account:1 --tag 'x,y'
assert_eq "$(positions "$OUT")" "4 " "--tag twice: all of them"
evs_ok read --category account
assert_eq "$(positions "$OUT")" "1 2 4 5 6 " "--category account"
evs_ok read --category order --category account --type Opened
assert_eq "$(positions "$OUT")" "1 2 " "--category twice, --type"
evs_ok read --correlation "$C1"
assert_eq "$(positions "$OUT")" "1 " "--correlation"
evs_ok read --tag account:1 --backward --limit 2
assert_eq "$(positions "$OUT")" "4 3 " "--backward --limit"
evs_ok read --tag account:1 --from 3
assert_eq "$(positions "$OUT")" "3 4 " "--from"
evs_ok read --tag nobody
assert_eq "$OUT" "" "no match"
evs_ok tail --from 1 --tag 'ville:zürich' --count 1
assert_eq "$(positions "$OUT")" "1 " "tail --tag"

# export -> import into a fresh store -> read: byte-equal
"$EVS" export >"$TMP/x1.jsonl" || fail "export"
cmp "$TMP/all.jsonl" "$TMP/x1.jsonl" || fail "export differs from read"
EVS_STORE="$TMP/copy" "$EVS" import <"$TMP/x1.jsonl" >/dev/null 2>"$TMP/err" || fail "import"
EVS_STORE="$TMP/copy" "$EVS" read >"$TMP/x2.jsonl" || fail "read of the copy"
cmp "$TMP/x1.jsonl" "$TMP/x2.jsonl" || fail "export -> import -> read differs"
EVS_STORE="$TMP/copy" "$EVS" read --tag account:1 >"$TMP/out" || fail "read --tag of the copy"
assert_eq "$(positions "$(cat "$TMP/out")")" "1 3 4 " "the copy's tag index"
# an import line may give its tags in any order: the set is what counts
sed -n 4p "$TMP/x1.jsonl" | sed 's/"tags":\["account:1","x,y"\]/"tags":["x,y","account:1"]/' >"$TMP/swap.jsonl"
head -n 3 "$TMP/x1.jsonl" | EVS_STORE="$TMP/copy3" "$EVS" import >/dev/null 2>"$TMP/err" || fail "import 1-3"
EVS_STORE="$TMP/copy3" "$EVS" import <"$TMP/swap.jsonl" >/dev/null 2>"$TMP/err" || fail "import swapped"
EVS_STORE="$TMP/copy3" "$EVS" read --from 4 >"$TMP/out" || fail "read swapped"
cmp <(sed -n 4p "$TMP/x1.jsonl") "$TMP/out" || fail "swapped tags read back differently"

# refusals: flags exit 2, input lines exit 1 (as every bad line), nothing written
long=$(printf 'a%.0s' {1..256})
expect_fail 2 'invalid value "" for option --tag: a tag is 1 to 255 bytes of UTF-8: empty' append s T '{}' --tag ''
expect_fail 2 'invalid value "a" for option --tag: tag given twice' append s T '{}' --tag a --tag a
expect_fail 2 'for option --tag: .*longer than 255 bytes' append s T '{}' --tag "$long"
expect_fail 2 'for option --tag: more than 16 tags' append s T '{}' $(for i in $(seq 17); do echo --tag "t$i"; done)
expect_fail 2 'for option --tag: .*not valid UTF-8' append s T '{}' --tag $'\xff'
expect_fail 2 'for option --producer: empty' append s T '{}' --producer ''
expect_fail 2 'for option --producer: given twice' append s T '{}' --producer a --producer b
expect_fail 2 'for option --tag: tag given twice' read --tag a --tag a
expect_fail 2 'for option --category: empty' read --category ''
expect_fail 2 'for option --correlation: expected a UUID' read --correlation nope
expect_fail 2 'for option --correlation: given twice' read --correlation "$C1" --correlation "$C1"
expect_fail 2 'option --tag cannot be used with a STREAM' read account-1 --tag a
expect_fail 2 'option --category cannot be used with a STREAM' read account-1 --category a
bad_line() {  # JSON-LINE REGEX
	local rc=0
	printf '%s\n' "$1" | "$EVS" append s >"$TMP/out" 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "exit status for $1"
	grep -Eq -- "$2" "$TMP/err" || fail "$1: stderr does not match /$2/: $(cat "$TMP/err")"
}
bad_line '{"type":"T","tags":["a","a"]}' 'line 1: field "tags": tag "a" given twice'
bad_line '{"type":"T","tags":[""]}' 'line 1: field "tags": item 0 .*: empty'
bad_line '{"type":"T","tags":["a\u0000b"]}' 'line 1: field "tags": item 0 .*: contains a NUL byte'
bad_line '{"type":"T","tags":"a"}' 'line 1: field "tags" must be an array of strings or null'
bad_line '{"type":"T","tags":[1]}' 'line 1: field "tags": item 0 is a number, not a string'
bad_line "{\"type\":\"T\",\"tags\":[\"$long\"]}" 'line 1: field "tags": item 0 .*longer than 255 bytes'
bad_line "{\"type\":\"T\",\"tags\":[$(seq -s, -f '"t%g"' 17)]}" 'line 1: field "tags" has 17 tags, at most 16'
bad_line '{"type":"T","producer":""}' 'line 1: field "producer" .*: empty'
bad_line '{"type":"T","producer":7}' 'line 1: field "producer" must be a string or null'
evs_ok head
assert_eq "$(positions "$("$EVS" read)")" "1 2 3 4 5 6 " "nothing written by a refusal"
echo "ok"
