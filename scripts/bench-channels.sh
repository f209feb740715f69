#!/usr/bin/env bash
# bench-channels.sh - issue 11's benchmark in one run: relay throughput to
# NATS JetStream and RabbitMQ as ratios of the same client library
# publishing the same messages directly, webhook deliveries/s beside a
# plain libcurl loop (tests/relay/bench_relay.c), then push latency from
# commit to client for SSE at 5,000 events/s with 100 clients, p50/p99,
# beside an in-process subscription (tests/http/bench_push.c).
#
#   bash scripts/bench-channels.sh          (builds ./build unless EVS_BUILD_DIR says otherwise)
#
# Both programs start what they need (nats-server, rabbitmq-server, a local
# webhook receiver, evs-query) in temporary directories and remove it.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${EVS_BUILD_DIR:-$src/build}
# shellcheck source=deps.sh
. "$src/scripts/deps.sh"
evs_install_deps
[ -d "$build" ] || meson setup "$build" "$src" >/dev/null
ninja -C "$build" tests/relay/bench_relay tests/http/bench_push relay/evs-relay query/evs-query >/dev/null
echo "== relays (bench_relay)"
"$build/tests/relay/bench_relay" --bin "$build/relay" --runs 2
echo "== push (bench_push)"
"$build/tests/http/bench_push"
