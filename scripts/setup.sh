#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine that has Node.js 20 and nothing else: pnpm, redis-server,
# openssl, Chromium (the dashboard's browser test), a C++ toolchain for native modules, and the
# workspace's dependencies from the lockfile.
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
pnpm install --frozen-lockfile --reporter=silent
log "ready: pnpm $(pnpm --version), $(redis-server --version | cut -d' ' -f1-3)"
