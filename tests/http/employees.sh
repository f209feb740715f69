#!/usr/bin/env bash
# The employee directory (examples/employees, issue 10 item 5): its own
# migrations and declared temporal projection, the story's events, and
# the three questions answered through SQL (employees.staff_as_of) and
# HTTP (evs-query /models/employees/staff/{id}?as_of=): john's role,
# sahra's address and culre's name before their changes, and now; ola,
# who left, is in the past only; /history lists a key's versions.
# Arguments: the source root and the evs-query binary. PostgreSQL: the
# throwaway cluster of scripts/pg.sh (or $EVS_PG_DSN).
# shellcheck source-path=SCRIPTDIR source=../cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
ROOT=${1:?usage: employees.sh SOURCE_ROOT EVS_QUERY}
QUERY=${2:?usage: employees.sh SOURCE_ROOT EVS_QUERY}
EX=$ROOT/examples/employees
# shellcheck source=../../scripts/pg.sh
source "$ROOT/scripts/pg.sh"
PGD=$(mktemp -d "${TMPDIR:-/tmp}/evs-emp-pg.XXXXXX")
trap 'evs_pg_stop; rm -rf "$PGD"; cleanup' EXIT
evs_pg_start "$PGD" || fail "could not start PostgreSQL"
psql_() { "${evs_pg_run[@]}" psql "$EVS_PG_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

out=$("$EX/story.sh" "$EVS" "$EVS_STORE") || fail "story"
before=${out#before=}
evs_ok migrate --migrations "$ROOT/migrations"
evs_ok migrate --migrations "$EX/migrations"
evs_ok project --once --rules "$EX/employees.projection"

# SQL: the three questions, then and now
assert_eq "$(psql_ "SELECT role FROM employees.staff_as_of('$before') WHERE id = 'employee-john'")" \
	"developer" "john's role before"
assert_eq "$(psql_ "SELECT address FROM employees.staff_as_of('$before') WHERE id = 'employee-sahra'")" \
	"12 Harbour Street" "sahra's address before"
assert_eq "$(psql_ "SELECT name FROM employees.staff_as_of('$before') WHERE id = 'employee-culre'")" \
	"Culre Okafor" "culre's name before"
assert_eq "$(psql_ "SELECT string_agg(role || '|' || address || '|' || name, ',' ORDER BY id) FROM employees.staff")" \
	"analyst|3 Station Road|Culre Mensah,team lead|1 Quay Road|John Smith,designer|7 Mill Lane|Sahra Ali" "now"
assert_eq "$(psql_ "SELECT count(*) FROM employees.staff_as_of('$before') WHERE id = 'employee-ola'")" \
	"1" "ola before she left"
assert_eq "$(psql_ "SELECT count(*) FROM employees.staff WHERE id = 'employee-ola'")" "0" "ola now"
# the analyst role reads them too
assert_eq "$(psql_ "SET ROLE evs_analyst; SELECT role FROM employees.staff_at_position(4) WHERE id = 'employee-john'")" \
	"developer" "at position 4, as the analyst"

# HTTP: the same through evs-query (the projection named by its --rules)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$QUERY" --dsn "$EVS_PG_DSN" --rules "$EX/employees.projection" --port "$port" --log-level 1 \
	2>"$TMP/query.err" &
up=0
for _ in $(seq 1 1200); do # 60 s: evs-query under the sanitizers on a loaded machine
	curl -sf "localhost:$port/health" >/dev/null && up=1 && break
	sleep 0.05 # polling the condition "the server answers", bounded
done
[ "$up" = 1 ] || fail "evs-query did not answer /health within 60 s: $(cat "$TMP/query.err")"
get() { curl -sS "localhost:$port$1"; }
# py EXPR: EXPR over the answer's JSON, d
py() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
enc=${before//+/%2B}
assert_eq "$(get "/models/employees/staff/employee-john?as_of=$enc" | py 'd["row"]["role"]')" \
	"developer" "HTTP: john's role before"
assert_eq "$(get "/models/employees/staff/employee-sahra?as_of=$enc" | py 'd["row"]["address"]')" \
	"12 Harbour Street" "HTTP: sahra's address before"
assert_eq "$(get "/models/employees/staff/employee-culre?as_of=$enc" | py 'd["row"]["name"]')" \
	"Culre Okafor" "HTTP: culre's name before"
assert_eq "$(get "/models/employees/staff/employee-john" | py 'd["row"]["role"]')" "team lead" "HTTP: john now"
assert_eq "$(get "/models/employees/staff/employee-john?as_of=$enc" | py 'd["position"]')" "8" \
	"HTTP: the position an answer reflects"
assert_eq "$(get "/models/employees/staff/employee-ola?as_of=$enc" | py 'd["row"]["role"]')" "intern" \
	"HTTP: ola before she left"
assert_eq "$(get "/models/employees/staff/employee-ola" | py 'd["error"]')" "not_found" "HTTP: ola now"
assert_eq "$(get "/models/employees/staff?as_of=$enc&role=designer" | py '[r["id"] for r in d["rows"]]')" \
	"['employee-sahra']" "HTTP: listing as of, filtered"
assert_eq "$(get "/models/employees/staff/employee-john/history" | py '[(v["valid_from_position"], v["valid_to_position"], v["row"]["role"]) for v in d["versions"]]')" \
	"[(1, 5, 'developer'), (5, None, 'team lead')]" "HTTP: john's history"
assert_eq "$(get "/models/employees/staff/employee-ola/history" | py '[(v["valid_from_position"], v["valid_to_position"]) for v in d["versions"]]')" \
	"[(4, 8)]" "HTTP: ola's history ends where she left"
echo "ok: the employee directory answers before and now over SQL and HTTP"
