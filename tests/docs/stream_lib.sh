# stream_lib.sh - sourced by push_readme.sh and tags_readme.sh, the README
# examples that curl /events/stream (a stream stays open). Needs $dir, the
# test's temporary directory. Sets $port, a free port to put for 8080, and
# EVS_PG_DSN, a read-model DSN the routes never use; defines first_lines.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export EVS_PG_DSN="host=$dir/nowhere dbname=none connect_timeout=1"

# the first N lines a command prints (eval'd): it is stopped once it has
# printed them, or after 60 s
first_lines() {  # N COMMAND-LINE
  local n=$1 cpid
  (eval "exec $2 --max-time 60") >"$dir/stream.out" 2>/dev/null &
  cpid=$!
  for _ in $(seq 1 600); do
    [ "$(wc -l <"$dir/stream.out")" -ge "$n" ] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$cpid" 2>/dev/null || true
  wait "$cpid" 2>/dev/null || true
  head -n "$n" "$dir/stream.out"
}
