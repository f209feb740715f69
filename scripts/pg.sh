# Sourced by the demo: a throwaway PostgreSQL 15 cluster in a directory,
# Unix socket only, fsync off. As root the server runs as the unprivileged
# "postgres" user (initdb refuses root). EVS_PG_DSN set beforehand means an
# existing server is used instead and nothing is started.

EVS_PG_BIN=${EVS_PG_BIN:-/usr/lib/postgresql/15/bin}
evs_pg_run=()

evs_pg_start() {  # DIR: a new directory for the cluster
  local dir=$1
  if [ -n "${EVS_PG_DSN:-}" ]; then evs_pg_dir=; return 0; fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    evs_pg_run=(runuser -u postgres --)
  fi
  "${evs_pg_run[@]}" "$EVS_PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log"; return 1; }
  "${evs_pg_run[@]}" "$EVS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off" start >/dev/null ||
    { cat "$dir/server.log"; return 1; }
  "${evs_pg_run[@]}" "$EVS_PG_BIN/createdb" -h "$dir" -U postgres evs
  evs_pg_dir=$dir
  export EVS_PG_DSN="host=$dir dbname=evs user=postgres"
}

evs_pg_stop() {
  [ -n "${evs_pg_dir:-}" ] || return 0
  "${evs_pg_run[@]}" "$EVS_PG_BIN/pg_ctl" -D "$evs_pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  evs_pg_dir=
}
