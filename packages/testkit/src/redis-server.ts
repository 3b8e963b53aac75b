import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.js'
import { redisServerBinary } from './redis-binary.js'
import { sendCommand } from './resp.js'
import { isAlive, spawnWatched, type WatchedProcess } from './watchdog.js'
import { TestkitError } from './errors.js'
import { createTlsCertificates, tlsServerArgs } from './tls.js'

/**
 * A real redis-server on a loopback port.
 *
 * Every server runs behind a watchdog (see watchdog.ts): it dies with this process, whatever
 * ends it, and takes its directory with it.
 */
export interface RedisServer {
  readonly host: string
  /** Stays the same across `restart()`. */
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** PID of the current redis-server process. */
  readonly pid: number
  /** Working directory of the current process (removed when it dies). */
  readonly dir: string
  /** Sends one command over a fresh connection (admin use: CONFIG, INFO, CLIENT KILL …). */
  command(...args: (string | number)[]): Promise<string>
  /** SIGKILL: a crash. The port stays reserved for `restart()`. */
  kill(): Promise<void>
  /** SIGSTOP: the server keeps its connections open but answers nothing. */
  pause(): void
  /** SIGCONT after `pause()`. */
  resume(): void
  /** Starts a fresh server on the same port (kills the current one first if it runs). */
  restart(): Promise<void>
  /** Kills the server for good and removes its files. Idempotent. */
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** A server started with `tls`: the plain port stays (the testkit's admin commands use it). */
export interface RedisTlsServer extends RedisServer {
  /** Stays the same across `restart()`. */
  readonly tlsPort: number
  /** `rediss://127.0.0.1:<tlsPort>` */
  readonly tlsUrl: string
  /** PEMs for a client: the CA that signed the server's certificate, and a client certificate and key it signed. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string }
}

export interface RedisTlsOptions {
  /** `tls-auth-clients yes`: a client must present a certificate the CA signed. @default false */
  clientCerts?: boolean
}

export interface StartRedisOptions {
  /** Port to bind; a free one when omitted. */
  port?: number
  /** Extra `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`. */
  args?: readonly string[]
  /** How long to wait for PONG. @default 10000 */
  startTimeoutMs?: number
  /**
   * Also listen with TLS on a port of its own, with certificates made for this server (see
   * tls.ts; their directory is removed on `stop()`).
   */
  tls?: boolean | RedisTlsOptions
}

async function launch(port: number, args: readonly string[], timeoutMs: number): Promise<WatchedProcess> {
  const binary = redisServerBinary()
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-redis-'))
  const serverArgs = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', join(dir, 'redis.log'), '--daemonize', 'no',
    ...args,
  ]
  const incarnation = await spawnWatched(dir, [binary, ...serverArgs])
  try {
    await waitForPong(port, incarnation.pid, timeoutMs)
  } catch (error) {
    const log = readLog(dir)
    incarnation.destroy()
    throw new TestkitError('E_REDIS_START', `${(error as Error).message}${log ? `\nredis-server log:\n${log}` : ''}`, { cause: error })
  }
  return incarnation
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return ''
  }
}

async function waitForPong(port: number, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!isAlive(pid)) throw new TestkitError('E_REDIS_START', `redis-server on port ${port} exited during start-up`)
    try {
      if ((await sendCommand(port, ['PING'], { timeoutMs: 500 })) === 'PONG') return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new TestkitError('E_REDIS_START', `redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function waitForExit(pid: number): Promise<void> {
  for (let i = 0; i < 500 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 10))
}

/** Starts a redis-server on a free loopback port (retrying if the port is taken meanwhile). */
export function startRedis(options: StartRedisOptions & { tls: true | RedisTlsOptions }): Promise<RedisTlsServer>
export function startRedis(options?: StartRedisOptions): Promise<RedisServer>
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const timeoutMs = options.startTimeoutMs ?? 10_000
  const certificates = options.tls ? createTlsCertificates() : undefined
  const clientCerts = typeof options.tls === 'object' && options.tls.clientCerts === true
  let tlsPort = 0
  const argsOf = () => [...(options.args ?? []), ...(certificates ? tlsServerArgs(certificates, tlsPort, clientCerts) : [])]
  let port = options.port ?? (await freePort())
  let current: WatchedProcess | undefined
  for (let attempt = 0; ; attempt++) {
    try {
      if (certificates) tlsPort = await freePort()
      current = await launch(port, argsOf(), timeoutMs)
      break
    } catch (error) {
      if (options.port !== undefined || attempt >= 4) {
        certificates?.remove()
        throw error
      }
      port = await freePort()
    }
  }
  let stopped = false

  const killCurrent = async () => {
    if (!current) return
    const { pid } = current
    current.destroy()
    current = undefined
    await waitForExit(pid)
  }

  const server: RedisServer = {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return current?.pid ?? -1
    },
    get dir() {
      return current?.dir ?? ''
    },
    command: (...commandArgs) => sendCommand(port, commandArgs),
    kill: killCurrent,
    pause() {
      if (current) process.kill(current.pid, 'SIGSTOP')
    },
    resume() {
      if (current) process.kill(current.pid, 'SIGCONT')
    },
    async restart() {
      if (stopped) throw new TestkitError('E_REDIS_STOPPED', `redis-server on port ${port} was stopped; start a new one`)
      await killCurrent()
      // The old socket may linger briefly; retry binding the same port for a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          current = await launch(port, argsOf(), timeoutMs)
          return
        } catch (error) {
          if (attempt >= 20) throw error
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    },
    async stop() {
      stopped = true
      await killCurrent()
      certificates?.remove()
    },
    [Symbol.asyncDispose]() {
      return this.stop()
    },
    ...(certificates && {
      tlsPort,
      tlsUrl: `rediss://127.0.0.1:${tlsPort}`,
      tls: { ca: certificates.ca, cert: certificates.client.cert, key: certificates.client.key },
    }),
  }
  return server
}
