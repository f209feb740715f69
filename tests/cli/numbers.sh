#!/usr/bin/env bash
# Numbers by the one policy (store/base/mpjson.h): evs append -> evs read
# gives every number back with its kind and value, doubles in the shortest
# text that reads back (always with '.' or 'e'; integral doubles under 2^64
# in full with ".0", which PostgreSQL's jsonb keeps), and feeding the read
# text back gives the same text again.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evs_ok init
data='{"x":1e300,"w":1e19,"v":-1e19,"y":1.5,"a":0.1,"b":5e-324,"c":9007199254740993,"d":-9223372036854775808,"e":18446744073709551615,"f":1e15,"g":-0.0,"h":2.5e-5,"i":1e23,"j":1.0,"k":0.30000000000000004,"l":1.7976931348623157e308}'
expect='{"x":1e+300,"w":10000000000000000000.0,"v":-10000000000000000000.0,"y":1.5,"a":0.1,"b":5e-324,"c":9007199254740993,"d":-9223372036854775808,"e":18446744073709551615,"f":1000000000000000.0,"g":-0.0,"h":2.5e-05,"i":1e+23,"j":1.0,"k":0.30000000000000004,"l":1.7976931348623157e+308}'
evs_ok append n-1 Set "$data"
evs_ok read n-1
got=${OUT#*\"data\":}
assert_eq "${got%\}}" "$expect" "numbers read back"

# the read text is input again: same numbers, same text
evs_ok append n-2 Set "${got%\}}"
evs_ok read n-2
again=${OUT#*\"data\":}
assert_eq "${again%\}}" "$expect" "numbers read back twice"

evs_ok state n-1
grep -qF '"state":'"$expect" <<<"$OUT" || fail "evs state: $OUT"
