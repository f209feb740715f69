# Sourced by the scripts: install the Debian 12 packages evstore needs.
# Installs only what is missing; uses sudo when not root.

EVS_PACKAGES=(
  gcc libc6-dev pkg-config meson ninja-build git ca-certificates
  liblmdb-dev lmdb-utils libmsgpack-dev libjson-c-dev uuid-dev
  check libsubunit-dev clang-format
  python3 python3-lmdb python3-msgpack
  postgresql libpq-dev libmicrohttpd-dev libcurl4-openssl-dev curl
  clang libclang-rt-14-dev
)

# evs-relay (relay/, issue 11): OpenSSL for the webhook signatures (libcurl
# and libmicrohttpd are above), the NATS and RabbitMQ client libraries, and
# the two brokers its tests start in temporary directories.
EVS_RELAY_PACKAGES=(
  libssl-dev libnats-dev librabbitmq-dev nats-server rabbitmq-server
)

# Process managers (issue 14): xxHash (headers) for the deterministic
# event ids of steps.
EVS_PACKAGES+=(libxxhash-dev)

# The auditor's page test (tests/browser): Debian's chromium, headless,
# driven from node by puppeteer-core (from npm, installed by the test into
# the build folder). npm only when no npm is there: a node from another
# repository may bring its own and conflict with Debian's npm package.
EVS_PACKAGES+=(chromium nodejs)
command -v npm >/dev/null 2>&1 || EVS_PACKAGES+=(npm)

evs_install_deps() {
  local missing=() p
  for p in "${EVS_PACKAGES[@]}" "${EVS_RELAY_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The peer benchmark (scripts/bench-peers.sh) also needs npm: it fetches
# Message DB's SQL (npm package @eventide/message-db) into a temporary
# directory. Not in EVS_PACKAGES: nothing else needs node.
evs_install_bench_peers_deps() {
  # any npm on the PATH will do (a node from elsewhere conflicts with
  # Debian's npm package, as above)
  if command -v npm >/dev/null 2>&1; then
    evs_install_deps "$@"
  else
    evs_install_deps npm "$@"
  fi
}
