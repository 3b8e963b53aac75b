#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine that has Node.js 20 and nothing else: pnpm, redis-server,
# openssl, Chromium (the dashboard's browser test), PostgreSQL (the task adapter's tests), a C++
# toolchain for native modules, and the workspace's dependencies from the lockfile.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
log() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1
  fi
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  log "Node.js >= 20.19 is required (found $(node -v 2>/dev/null || echo none))"; exit 1
fi

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get is not available: install $* with your package manager"; exit 1
  fi
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null && [ -z "${REDIS_SERVER_BIN:-}" ]; then
  log "installing redis-server"
  apt_install redis-server
fi
if ! command -v openssl >/dev/null; then
  log "installing openssl (the testkit makes TLS certificates with it)"
  apt_install openssl
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && [ -z "${CHROMIUM_BIN:-}" ]; then
  log "installing chromium (the operator dashboard is tested in a headless browser)"
  apt_install chromium
fi
have_postgres() {
  if [ -n "${PG_BIN:-}" ]; then [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ]; return; fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir 2>/dev/null)/postgres" ]; then return 0; fi
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
}
if ! have_postgres; then
  log "installing postgresql (the task adapter is tested on a real PostgreSQL)"
  # The tests start their own servers: postgresql-common first, told not to create (and start)
  # a main cluster on 5432 when the server package arrives. An existing cluster is left alone.
  apt_install postgresql-common
  if [ -f /etc/postgresql-common/createcluster.conf ]; then
    as_root sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  fi
  apt_install postgresql
fi
if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null; then
  log "installing build-essential python3 (native modules compile from source)"
  apt_install build-essential python3
fi
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  log "installing pnpm@$PNPM_VERSION"
  if [ -w "$(npm prefix -g)/lib" ] || [ -w "$(npm prefix -g)" ]; then
    npm install -g --silent "pnpm@$PNPM_VERSION"
  else
    as_root npm install -g --silent "pnpm@$PNPM_VERSION"
  fi
  hash -r
fi
export TURBO_TELEMETRY_DISABLED=1
# better-sqlite3 compiles from source; node-gyp would download Node's headers, which a closed
# network refuses. Use the headers installed beside Node when they are there.
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
log "installing dependencies from the lockfile"
# A native build can fail once on a machine that has just received pnpm and its toolchain; a
# second run finds them in place.
pnpm install --frozen-lockfile --reporter=silent || {
  log "retrying the install once"
  pnpm install --frozen-lockfile --reporter=silent
}
log "ready: pnpm $(pnpm --version), $(redis-server --version | cut -d' ' -f1-3)"
