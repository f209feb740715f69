#!/usr/bin/env bash
# header_names.sh HEADER - every function a header's comments name as
# "evp_xxx()" is declared in that header (issue 16: evsproj.h documented
# an evp_errmsg() that never existed).
set -euo pipefail
h=${1:?usage: header_names.sh HEADER}
[ -r "$h" ] || { echo "cannot read $h" >&2; exit 1; }
code=$(grep -v '^[[:space:]]*\*' "$h") # declarations: lines that are not comments
status=0
for name in $(grep -o 'evp_[a-z0-9_]*()' "$h" | tr -d '()' | sort -u); do
	if ! grep -Eq "(^|[ *])$name\(" <<<"$code"; then
		echo "$h names $name() but does not declare it" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "ok: $(grep -o 'evp_[a-z0-9_]*()' "$h" | sort -u | wc -l) names"
exit "$status"
