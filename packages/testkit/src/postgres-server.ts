import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestkitError } from './errors.js'
import { isExecutable, onPath } from './executables.js'
import { freePort } from './free-port.js'
import { postgresBinDir } from './postgres-binary.js'
import { isAlive, spawnWatched, type WatchedProcess } from './watchdog.js'

/**
 * A real PostgreSQL server on a loopback port, in a data directory of its own that is made
 * for it (`initdb`, trust authentication, durability off) and removed with it.
 *
 * Like every testkit server it runs behind a watchdog (see watchdog.ts): it dies with this
 * process, whatever ends it, and takes its directory with it.
 */
export interface PostgresServer {
  readonly host: '127.0.0.1'
  readonly port: number
  /** The superuser; any connection over TCP may use it without a password (trust). */
  readonly user: 'postgres'
  /** `postgres`, or the database `StartPostgresOptions.database` named. */
  readonly database: string
  /** `postgres://postgres@127.0.0.1:<port>/<database>` */
  readonly url: string
  /** PID of the postmaster. */
  readonly pid: number
  /** The server's directory: `data/` (the cluster), `sock/` (its Unix socket) and the logs. Removed by `stop()`. */
  readonly dir: string
  /**
   * Creates an empty database: `name` (lower case letters, digits and `_`, at most 63
   * characters, not starting with a digit), or a name no other call used when omitted. With
   * `template`, a copy of that database instead (nobody may be connected to it meanwhile): a file
   * copy, much faster than loading the same rows again.
   */
  createDatabase(name?: string, options?: { template?: string }): Promise<{ name: string; url: string }>
  /** Fast shutdown (SIGINT), SIGKILL if it takes too long, then removes its directory. Idempotent. */
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartPostgresOptions {
  /** A database to create and put in `url`, validated like `createDatabase()`'s name. @default 'postgres' */
  database?: string
  /** Port to bind; a free one when omitted. */
  port?: number
  /** Extra `postgres` arguments, e.g. `['-c', 'log_statement=all']`. */
  args?: readonly string[]
  /** How long `initdb` and the start-up together may take. @default 30000 */
  startTimeoutMs?: number
}

const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const READY = 'database system is ready to accept connections'
const PORT_TAKEN = /could not bind|could not create any TCP\/IP sockets|Address already in use/
/** How long a fast shutdown may take before the server is killed. */
const STOP_GRACE_MS = 10_000
/** Longest Unix socket path (sun_path is 108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH = 100

// Runs under the watchdog: $1 initdb, $2 postgres, $3 the directory, the rest postgres's
// arguments. `exec` keeps the pid, so the watchdog's pid is the postmaster's.
const SCRIPT = [
  'initdb="$1" postgres="$2" dir="$3"; shift 3',
  '"$initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||',
  '  { echo "initdb exited with status $?" >>"$dir/initdb.log"; exit 1; }',
  'exec "$postgres" -D "$dir/data" "$@" >"$dir/postgres.log" 2>&1',
].join('\n')

let databases = 0

/** Postmasters not stopped yet, by their `postmaster.pid` file. */
const running = new Map<number, string>()
let exitHookInstalled = false

/**
 * On an orderly exit, asks each server for a fast shutdown before the watchdog's own exit hook
 * SIGKILLs it: a killed postmaster leaves its small System V shared memory segment behind.
 */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.prependListener('exit', () => {
    for (const pid of running.keys()) {
      try {
        process.kill(pid, 'SIGINT')
      } catch {
        // already gone
      }
    }
    const pause = new Int32Array(new SharedArrayBuffer(4))
    const deadline = Date.now() + 5_000
    while ([...running].some(([pid, pidFile]) => existsSync(pidFile) && !exited(pid)) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10)
  })
}

function validateName(what: string, name: string): void {
  if (!DATABASE_NAME.test(name)) {
    throw new RangeError(`${what}: ${JSON.stringify(name)} is not a valid database name (expected ${DATABASE_NAME}: lower case letters, digits and _, at most 63 characters, not starting with a digit)`)
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

let postgresAccount: { readonly uid: number; readonly gid: number } | undefined

/** The uid and gid of the `postgres` system user: PostgreSQL refuses to run as root. */
function postgresUser(): { readonly uid: number; readonly gid: number } {
  if (postgresAccount) return postgresAccount
  const id = (flag: string) => {
    const result = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' })
    return result.status === 0 ? Number(result.stdout.trim()) : Number.NaN
  }
  const uid = id('-u')
  const gid = id('-g')
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new TestkitError(
      'E_POSTGRES_START',
      'PostgreSQL refuses to run as root and there is no `postgres` system user to run it as: ' +
        '`sudo apt-get install -y postgresql` creates one, or run the tests as another user.',
    )
  }
  postgresAccount = { uid, gid }
  return postgresAccount
}

/** The command prefix that drops root for the postgres user; `setpriv` execs, so the pid stays. */
function asPostgres(): string[] {
  if (!isRoot()) return []
  const { uid, gid } = postgresUser()
  const setpriv = onPath('setpriv') ?? ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable)
  if (!setpriv) {
    throw new TestkitError('E_POSTGRES_START', 'PostgreSQL refuses to run as root and `setpriv` (util-linux) is missing to run it as the postgres user: install util-linux, or run the tests as another user.')
  }
  return [setpriv, `--reuid=${uid}`, `--regid=${gid}`, '--init-groups']
}

function chownRecursive(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownRecursive(join(path, entry.name), uid, gid)
    else chownSync(join(path, entry.name), uid, gid)
  }
}

/** Whether the process is gone: a zombie counts (the watchdog reaps its child only when it exits). */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.charAt(stat.lastIndexOf(')') + 2)
    return state === 'Z' || state === 'X'
  } catch {
    return !isAlive(pid)
  }
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function psqlBinary(): string {
  const found = [join(postgresBinDir(), 'psql')].find(isExecutable) ?? onPath('psql')
  if (!found) throw new TestkitError('E_POSTGRES_BINARY', `psql is neither in ${postgresBinDir()} nor on PATH: install postgresql-client, or point PG_BIN at a full PostgreSQL installation.`)
  return found
}

/** The environment of the testkit's psql: none of the caller's PG* settings (PGHOST, PGOPTIONS …). */
function psqlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value
  return { ...env, LC_ALL: 'C', PGCONNECT_TIMEOUT: '10' }
}

/** Runs one SQL statement as the superuser over TCP (trust authentication: no OS user needed). */
function psql(port: number, sql: string): Promise<void> {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql]
  return new Promise((resolve, reject) => {
    execFile(psqlBinary(), args, { env: psqlEnv(), encoding: 'utf8', timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`psql ${JSON.stringify(sql)} failed: ${stderr.trim() || error.message}`, { cause: error }))
      else resolve()
    })
  })
}

class StartFailure extends TestkitError {
  readonly portTaken: boolean

  constructor(message: string, portTaken: boolean) {
    super('E_POSTGRES_START', message)
    this.portTaken = portTaken
  }
}

async function launch(port: number, args: readonly string[], timeoutMs: number): Promise<WatchedProcess> {
  const bin = postgresBinDir()
  const prefix = asPostgres()
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-postgres-'))
  const sock = join(dir, 'sock')
  mkdirSync(sock)
  if (isRoot()) {
    const { uid, gid } = postgresUser()
    chownRecursive(dir, uid, gid)
  }
  // A socket path too long for sun_path would stop the server: then it listens on TCP only.
  const socketDir = join(sock, `.s.PGSQL.${port}`).length > MAX_SOCKET_PATH ? '' : sock
  const serverArgs = [
    '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=100',
    ...args,
  ]
  // A clean environment: the caller's PGDATA, PGPORT, PGOPTIONS … must not reach the server.
  const env = ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, 'LC_ALL=C', 'LANG=C']
  const command = [
    ...prefix, ...env, 'sh', '-c', SCRIPT, 'tiercache-postgres',
    join(bin, 'initdb'), join(bin, 'postgres'), dir, ...serverArgs,
  ]
  let incarnation: WatchedProcess
  try {
    incarnation = await spawnWatched(dir, command)
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw new TestkitError('E_POSTGRES_START', `could not start PostgreSQL: ${(error as Error).message}`, { cause: error })
  }
  try {
    await waitForReady(dir, port, incarnation.pid, timeoutMs)
  } catch (error) {
    incarnation.destroy()
    throw error
  }
  return incarnation
}

async function waitForReady(dir: string, port: number, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const fail = (reason: string) => {
    const initdbLog = read(join(dir, 'initdb.log'))
    const serverLog = read(join(dir, 'postgres.log'))
    const logs = [
      initdbLog.includes('initdb exited with status') ? `initdb log:\n${tail(initdbLog)}` : '',
      serverLog ? `postgres log:\n${tail(serverLog)}` : '',
      isRoot() ? `(running as the postgres user: it must be able to enter ${tmpdir()})` : '',
    ].filter(Boolean)
    return new StartFailure(`PostgreSQL on port ${port} ${reason}${logs.length ? `\n${logs.join('\n')}` : ''}`, PORT_TAKEN.test(serverLog))
  }
  for (;;) {
    if (read(join(dir, 'postgres.log')).includes(READY)) return
    if (exited(pid)) throw fail('exited during start-up')
    if (Date.now() > deadline) throw fail(`was not ready within ${timeoutMs} ms`)
    await sleep(25)
  }
}

/**
 * Starts a PostgreSQL server on a free loopback port (retrying on another port if the one it
 * picked is taken meanwhile): a fresh cluster, superuser `postgres`, trust authentication,
 * fsync off. As root it runs as the `postgres` system user.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const database = options.database ?? 'postgres'
  validateName('startPostgres', database)
  const timeoutMs = options.startTimeoutMs ?? 30_000
  let port = options.port ?? (await freePort())
  let current: WatchedProcess
  for (let attempt = 0; ; attempt++) {
    try {
      current = await launch(port, options.args ?? [], timeoutMs)
      break
    } catch (error) {
      if (options.port !== undefined || attempt >= 4 || !(error instanceof StartFailure && error.portTaken)) throw error
      port = await freePort()
    }
  }
  const { pid, dir } = current
  const pidFile = join(dir, 'data', 'postmaster.pid')
  running.set(pid, pidFile)
  installExitHook()
  const urlOf = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`
  let stopping: Promise<void> | undefined

  const shutDown = async () => {
    try {
      process.kill(pid, 'SIGINT')
    } catch {
      // already gone
    }
    // A clean shutdown removes postmaster.pid last, after its shared memory.
    const deadline = Date.now() + STOP_GRACE_MS
    while (existsSync(pidFile) && !exited(pid) && Date.now() < deadline) await sleep(10)
    running.delete(pid)
    current.destroy()
    for (let i = 0; i < 500 && !exited(pid); i++) await sleep(10)
  }

  const server: PostgresServer = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database,
    url: urlOf(database),
    pid,
    dir,
    async createDatabase(name = `tiercache_${++databases}_${randomBytes(3).toString('hex')}`, options = {}) {
      validateName('createDatabase', name)
      if (options.template !== undefined) validateName('createDatabase template', options.template)
      if (stopping) throw new TestkitError('E_POSTGRES_STOPPED', `PostgreSQL on port ${port} was stopped; start a new one`)
      await psql(port, `CREATE DATABASE "${name}"${options.template === undefined ? '' : ` TEMPLATE "${options.template}"`}`)
      return { name, url: urlOf(name) }
    },
    stop() {
      stopping ??= shutDown()
      return stopping
    },
    [Symbol.asyncDispose]() {
      return this.stop()
    },
  }
  if (database !== 'postgres') {
    try {
      await server.createDatabase(database)
    } catch (error) {
      await server.stop()
      throw new TestkitError('E_POSTGRES_START', `PostgreSQL on port ${port} started, but the database ${database} could not be created: ${(error as Error).message}`, { cause: error })
    }
  }
  return server
}
