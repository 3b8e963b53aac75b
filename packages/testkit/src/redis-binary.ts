import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { TestkitError } from './errors.js'

const INSTALL_HINT =
  'Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), ' +
  'or point REDIS_SERVER_BIN at a redis-server binary, or set REDIS_URL to use a running server.'

/** Finds an executable by name on PATH (no shell, no `which`). */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here; keep looking
    }
  }
  return undefined
}

/** The redis-server binary to launch: `REDIS_SERVER_BIN`, else `redis-server` on PATH. */
export function redisServerBinary(): string {
  const configured = process.env.REDIS_SERVER_BIN
  if (configured) {
    try {
      accessSync(configured, constants.X_OK)
      return configured
    } catch {
      throw new TestkitError('E_REDIS_BINARY', `REDIS_SERVER_BIN=${configured} is not an executable file. ${INSTALL_HINT}`)
    }
  }
  const found = onPath('redis-server') ?? ['/usr/sbin/redis-server', '/usr/local/bin/redis-server'].find(isExecutable)
  if (!found) throw new TestkitError('E_REDIS_BINARY', `redis-server was not found on PATH. ${INSTALL_HINT}`)
  return found
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}
