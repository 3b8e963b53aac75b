import { TestkitError } from './errors.js'
import { isExecutable, onPath } from './executables.js'

const INSTALL_HINT =
  'Install it with `./scripts/setup.sh` or `sudo apt-get install -y chromium` (Debian/Ubuntu), ' +
  'or point CHROMIUM_BIN at a Chromium or Chrome binary.'

/**
 * The Chromium binary the browser tests drive (through playwright-core, which downloads none):
 * `CHROMIUM_BIN`, else `chromium` or `chromium-browser` on PATH.
 */
export function chromiumBinary(): string {
  const configured = process.env.CHROMIUM_BIN
  if (configured) {
    if (isExecutable(configured)) return configured
    throw new TestkitError('E_CHROMIUM_BINARY', `CHROMIUM_BIN=${configured} is not an executable file. ${INSTALL_HINT}`)
  }
  const found = onPath('chromium') ?? onPath('chromium-browser') ?? ['/usr/bin/chromium', '/usr/lib/chromium/chromium'].find(isExecutable)
  if (!found) throw new TestkitError('E_CHROMIUM_BINARY', `chromium was not found on PATH. ${INSTALL_HINT}`)
  return found
}

/**
 * Arguments Chromium needs here: as root (a container, CI) it refuses to start with its sandbox,
 * which needs user namespaces a root container does not give it.
 */
export function chromiumArgs(): string[] {
  return typeof process.getuid === 'function' && process.getuid() === 0 ? ['--no-sandbox'] : []
}
