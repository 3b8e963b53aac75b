import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { TestkitError } from './errors.js'
import { isExecutable, onPath } from './executables.js'

const INSTALL_HINT =
  'Install it with `./scripts/setup.sh` or `sudo apt-get install -y postgresql` (Debian/Ubuntu) or ' +
  '`brew install postgresql` (macOS), or point PG_BIN at the directory holding `postgres` and `initdb`.'

const SYSTEM_VERSIONS = '/usr/lib/postgresql'
const SOURCE_BUILD = '/usr/local/pgsql/bin'

let cached: { readonly configured: string | undefined; readonly dir: string } | undefined

/** Whether `dir` holds a server and the tool that makes its data directory. */
function isServerBinDir(dir: string): boolean {
  return isExecutable(join(dir, 'postgres')) && isExecutable(join(dir, 'initdb'))
}

/** `pg_config --bindir`, when pg_config is on PATH (Debian's may name a server that is not installed). */
function pgConfigBinDir(): string | undefined {
  const pgConfig = onPath('pg_config')
  if (!pgConfig) return undefined
  const result = spawnSync(pgConfig, ['--bindir'], { encoding: 'utf8', timeout: 10_000 })
  const dir = result.status === 0 ? result.stdout.trim() : ''
  return dir && isServerBinDir(dir) ? dir : undefined
}

/** The newest `/usr/lib/postgresql/<version>/bin` (Debian/Ubuntu's layout), by version number. */
function newestSystemBinDir(): string | undefined {
  let versions: string[]
  try {
    versions = readdirSync(SYSTEM_VERSIONS)
  } catch {
    return undefined
  }
  const newestFirst = versions
    .filter((version) => /^\d+(\.\d+)*$/.test(version))
    .sort((a, b) => {
      const left = a.split('.').map(Number)
      const right = b.split('.').map(Number)
      for (let i = 0; i < Math.max(left.length, right.length); i++) {
        const difference = (right[i] ?? 0) - (left[i] ?? 0)
        if (difference !== 0) return difference
      }
      return 0
    })
  return newestFirst.map((version) => join(SYSTEM_VERSIONS, version, 'bin')).find(isServerBinDir)
}

/**
 * The directory of the PostgreSQL server binaries (`postgres`, `initdb`, `psql` …): `PG_BIN`,
 * else `pg_config --bindir` when pg_config is on PATH, else the newest
 * `/usr/lib/postgresql/<version>/bin`, else `/usr/local/pgsql/bin`. Looked up once per `PG_BIN`.
 */
export function postgresBinDir(): string {
  const configured = process.env.PG_BIN || undefined
  if (cached && cached.configured === configured) return cached.dir
  let dir: string | undefined
  if (configured) {
    if (!isServerBinDir(configured)) {
      throw new TestkitError('E_POSTGRES_BINARY', `PG_BIN=${configured} does not hold executable \`postgres\` and \`initdb\` files. ${INSTALL_HINT}`)
    }
    dir = configured
  } else {
    dir = pgConfigBinDir() ?? newestSystemBinDir() ?? (isServerBinDir(SOURCE_BUILD) ? SOURCE_BUILD : undefined)
  }
  if (!dir) {
    throw new TestkitError(
      'E_POSTGRES_BINARY',
      `PostgreSQL was not found (no PG_BIN, no pg_config on PATH, nothing in ${SYSTEM_VERSIONS}/*/bin or ${SOURCE_BUILD}). ${INSTALL_HINT}`,
    )
  }
  cached = { configured, dir }
  return dir
}
