#!/usr/bin/env bash
# The employee directory's demo data: three employees join, then john's
# role, sahra's address and culre's name change, and ola joins and
# leaves. Usage: story.sh EVS STORE_DIR. Appends through the evs tool
# (schemas registered first, so every payload is validated) and prints
# one line, the moment between the joins and the changes:
#   before=2026-12-07T15:00:00.123456789Z
set -euo pipefail
evs=$1 store=$2
here=$(cd "$(dirname "$0")" && pwd)
e() { "$evs" --store "$store" "$@" >/dev/null; }
e init
e schema add -q "$here"/schemas/*.json
e append employee-john EmployeeJoined \
  '{"name":"John Smith","role":"developer","address":"1 Quay Road"}' --expected no-stream
e append employee-sahra EmployeeJoined \
  '{"name":"Sahra Ali","role":"designer","address":"12 Harbour Street"}' --expected no-stream
e append employee-culre EmployeeJoined \
  '{"name":"Culre Okafor","role":"analyst","address":"3 Station Road"}' --expected no-stream
e append employee-ola EmployeeJoined \
  '{"name":"Ola Berg","role":"intern","address":"9 Elm Close"}' --expected no-stream
# the store's clock decides recorded_at; this moment falls between the
# joins and the changes because appends are ordered by it
before=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
e append employee-john RoleChanged '{"role":"team lead"}' --expected 1
e append employee-sahra AddressChanged '{"address":"7 Mill Lane"}' --expected 1
e append employee-culre NameChanged '{"name":"Culre Mensah"}' --expected 1
e append employee-ola EmployeeLeft '{}' --expected 1
echo "before=$before"
