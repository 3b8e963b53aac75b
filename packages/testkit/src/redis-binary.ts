import { TestkitError } from './errors.js'
import { isExecutable, onPath } from './executables.js'

const INSTALL_HINT =
  'Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), ' +
  'or point REDIS_SERVER_BIN at a redis-server binary, or set REDIS_URL to use a running server.'

/** The redis-server binary to launch: `REDIS_SERVER_BIN`, else `redis-server` on PATH. */
export function redisServerBinary(): string {
  const configured = process.env.REDIS_SERVER_BIN
  if (configured) {
    if (isExecutable(configured)) return configured
    throw new TestkitError('E_REDIS_BINARY', `REDIS_SERVER_BIN=${configured} is not an executable file. ${INSTALL_HINT}`)
  }
  const found = onPath('redis-server') ?? ['/usr/sbin/redis-server', '/usr/local/bin/redis-server'].find(isExecutable)
  if (!found) throw new TestkitError('E_REDIS_BINARY', `redis-server was not found on PATH. ${INSTALL_HINT}`)
  return found
}
