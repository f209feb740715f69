#!/usr/bin/env bash
# export -> import into an empty store -> export is byte-identical, also for
# payloads JSON cannot carry (written as base64 msgpack).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b64() { printf '%b' "$1" | base64 -w0; }

evs_ok init
evs_ok append order-1 Placed '{"qty":3,"price":9.99,"tags":["a","é"],"n":null,"big":-9223372036854775808,"x":0.1,"y":1e+300,"z":-0.0}' \
	--metadata '{"by":"ann"}' --occurred-at 2024-01-02T03:04:05.000000006Z \
	--correlation-id 0190c7e2-5b1a-7cc3-9f5e-000000000001 \
	--causation-id 0190c7e2-5b1a-7cc3-9f5e-000000000002 --type-version 4
evs_ok append order-1 Paid '{"amount":1.0}'
# payloads without an exact JSON form, appended as raw msgpack
{
	printf '{"type":"Bin","data_msgpack":"%s"}\n' "$(b64 '\x81\xa1b\xc4\x03\x00\x01\xff')"
	printf '{"type":"F32","data_msgpack":"%s"}\n' "$(b64 '\x81\xa1f\xca\x3f\xc0\x00\x00')"
	printf '{"type":"Wide","data_msgpack":"%s"}\n' "$(b64 '\x81\xa1w\xce\x00\x00\x00\x05')"
	printf '{"type":"Str8","data_msgpack":"%s"}\n' "$(b64 '\x81\xd9\x01k\xa1v')"
	printf '{"type":"IntKey","data_msgpack":"%s"}\n' "$(b64 '\x82\x01\x02\xa1k\xc0')"
	printf '{"type":"Ext","metadata_msgpack":"%s","data":{"ok":true}}\n' "$(b64 '\x81\xa1e\xd4\x01\x07')"
	printf '{"type":"Empty","data_msgpack":"%s","metadata_msgpack":"%s"}\n' "$(b64 '\x80')" "$(b64 '\x80')"
} >"$TMP/raw.jsonl"
OUT=$("$EVS" append odd-1 <"$TMP/raw.jsonl") || fail "append of raw msgpack events"
for i in 1 2 3; do evs_ok append "s-$i" T "{\"i\":$i}"; done

"$EVS" export >"$TMP/x1.jsonl" || fail "export"
assert_eq "$(wc -l <"$TMP/x1.jsonl")" 12 "exported events"
grep -q '"type":"Placed",.*"metadata":{"by":"ann"},"data":{"qty":3,"price":9.99,"tags":\["a","é"\],"n":null,"big":-9223372036854775808,"x":0.1,"y":1e+300,"z":-0.0}}$' "$TMP/x1.jsonl" ||
	fail "JSON payload not exported as JSON: $(sed -n 1p "$TMP/x1.jsonl")"
grep -q '"type":"Paid",.*"data":{"amount":1.0}}$' "$TMP/x1.jsonl" || fail "float 1.0"
for t in Bin F32 Wide Str8 IntKey; do
	grep -q "\"type\":\"$t\",.*\"metadata\":{},\"data_msgpack\":\"" "$TMP/x1.jsonl" ||
		fail "$t payload not exported as msgpack"
done
grep -q '"type":"Ext",.*"metadata_msgpack":"'"$(b64 '\x81\xa1e\xd4\x01\x07')"'","data":{"ok":true}}$' "$TMP/x1.jsonl" ||
	fail "ext metadata"
grep -q '"type":"Empty",.*"metadata":{},"data":{}}$' "$TMP/x1.jsonl" || fail "empty maps"

# import into a fresh store (created by import), in several restore calls
EVS_STORE="$TMP/copy" "$EVS" import --batch-size 5 <"$TMP/x1.jsonl" >"$TMP/out" 2>"$TMP/err" || fail "import"
assert_eq "$(cat "$TMP/out")" '{"imported":12,"last_position":12}' "import result"
EVS_STORE="$TMP/copy" "$EVS" export >"$TMP/x2.jsonl" || fail "export of the copy"
cmp "$TMP/x1.jsonl" "$TMP/x2.jsonl" || fail "export -> import -> export differs"
EVS_STORE="$TMP/copy" "$EVS" verify >/dev/null 2>"$TMP/err" || fail "verify of the copy"
# and once more from the copy's export
EVS_STORE="$TMP/copy2" "$EVS" import <"$TMP/x2.jsonl" >/dev/null 2>"$TMP/err" || fail "second import"
EVS_STORE="$TMP/copy2" "$EVS" export >"$TMP/x3.jsonl" || fail "third export"
cmp "$TMP/x1.jsonl" "$TMP/x3.jsonl" || fail "second round trip differs"

# the raw payloads came back byte for byte
EVS_STORE="$TMP/copy" "$EVS" read odd-1 --type Wide >"$TMP/out" || fail "read Wide"
grep -q "\"data_msgpack\":\"$(b64 '\x81\xa1w\xce\x00\x00\x00\x05')\"}\$" "$TMP/out" || fail "Wide bytes"

# export --from, and continuing an import where the store ends
"$EVS" export --from 11 >"$TMP/tail.jsonl" || fail "export --from"
assert_eq "$(positions "$(cat "$TMP/tail.jsonl")")" "11 12 " "export --from 11"
head -n 10 "$TMP/x1.jsonl" | EVS_STORE="$TMP/part" "$EVS" import >/dev/null 2>"$TMP/err" || fail "partial import"
EVS_STORE="$TMP/part" "$EVS" import <"$TMP/tail.jsonl" >/dev/null 2>"$TMP/err" || fail "continued import"
EVS_STORE="$TMP/part" "$EVS" export >"$TMP/x4.jsonl" || fail "export of part"
cmp "$TMP/x1.jsonl" "$TMP/x4.jsonl" || fail "import in two parts differs"

# importing what does not continue the store writes nothing
rc=0; "$EVS" import <"$TMP/x1.jsonl" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "import into a non-empty store"
grep -q '^evs: could not import lines 1 to 12: ' "$TMP/err" || fail "import order message: $(cat "$TMP/err")"
evs_ok stat
assert_eq "$(json_get last_position "$OUT")" 12 "failed import wrote nothing"

# bad import input
sed -n 1p "$TMP/x1.jsonl" | sed 's/"position":1,//' >"$TMP/bad.jsonl"
rc=0; EVS_STORE="$TMP/bad" "$EVS" import <"$TMP/bad.jsonl" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "import without position"
grep -q '^evs: line 1: field "position" is missing' "$TMP/err" || fail "missing position message"
sed -n 3p "$TMP/x1.jsonl" | sed 's/"data_msgpack":"/"data_msgpack":"!/' >"$TMP/bad.jsonl"
rc=0; EVS_STORE="$TMP/bad" "$EVS" import <"$TMP/bad.jsonl" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "import with bad base64"
grep -q '^evs: line 1: field "data_msgpack" must be a base64 string' "$TMP/err" || fail "bad base64 message"
sed -n 1p "$TMP/x1.jsonl" | sed 's/"recorded_at":"[^"]*"/"recorded_at":"yesterday"/' >"$TMP/bad.jsonl"
rc=0; EVS_STORE="$TMP/bad" "$EVS" import <"$TMP/bad.jsonl" >"$TMP/out" 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "import with a bad time"
grep -q '^evs: line 1: field "recorded_at": not an RFC 3339 timestamp' "$TMP/err" || fail "bad time message"

echo "export-import: ok"
