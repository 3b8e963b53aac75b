import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.js'
import { redisServerBinary } from './redis-binary.js'
import { startRedis, type RedisServer } from './redis-server.js'
import { sendCommand } from './resp.js'
import { spawnWatched } from './watchdog.js'
import { TestkitError } from './errors.js'

/** A Sentinel setup on loopback: a primary, a replica of it, and one sentinel monitoring them. */
export interface RedisSentinel {
  readonly primary: RedisServer
  readonly replica: RedisServer
  /** The sentinel's endpoint, for ioredis `{ sentinels: [sentinel], name }`. */
  readonly sentinel: { readonly host: string; readonly port: number }
  /** For ioredis `{ sentinels, name }`. */
  readonly sentinels: readonly { host: string; port: number }[]
  /** The monitored master group. */
  readonly name: string
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartRedisSentinelOptions {
  /** Master group name. @default 'tiercache' */
  name?: string
  /** How long to wait for the replica to sync and the sentinel to see both. @default 20000 */
  readyTimeoutMs?: number
}

/**
 * Starts a primary and a replica with `startRedis()`, then a sentinel. The sentinel cannot go
 * through `startRedis()`: redis-server only accepts a config file as its first argument and a
 * sentinel refuses to run without one (it rewrites it to save state), while `startRedis()`
 * passes `--port` first. So the sentinel gets its own directory and conf file here, behind the
 * same watchdog (watchdog.ts): killed with its directory removed when this process ends in any way.
 */
export async function startRedisSentinel(options: StartRedisSentinelOptions = {}): Promise<RedisSentinel> {
  const name = options.name ?? 'tiercache'
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000
  const started: { stop(): Promise<void> }[] = []
  const stop = async () => {
    await Promise.all(started.map((item) => item.stop()))
  }
  try {
    const primary = await startRedis()
    started.push(primary)
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] })
    started.push(replica)
    await waitFor(readyTimeoutMs, 'the replica to sync', async () => (await replica.command('INFO', 'replication')).includes('master_link_status:up'))
    const sentinel = await launchSentinel(name, primary.port, readyTimeoutMs)
    started.push(sentinel)
    await waitFor(readyTimeoutMs, 'the sentinel to see the primary and the replica', async () => {
      const master = await sendCommand(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])
      if (master !== `127.0.0.1\n${primary.port}`) return false
      const replicas = await sendCommand(sentinel.port, ['SENTINEL', 'REPLICAS', name])
      return replicas.includes(String(replica.port))
    })
    const endpoint = { host: '127.0.0.1', port: sentinel.port }
    return { primary, replica, sentinel: endpoint, sentinels: [endpoint], name, stop, [Symbol.asyncDispose]: stop }
  } catch (error) {
    await stop()
    throw error
  }
}

async function launchSentinel(name: string, primaryPort: number, timeoutMs: number): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-sentinel-'))
  const conf = join(dir, 'sentinel.conf')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
      `sentinel down-after-milliseconds ${name} 3000`,
      `sentinel failover-timeout ${name} 10000`,
      '',
    ].join('\n'),
  )
  const watched = await spawnWatched(dir, [redisServerBinary(), conf, '--sentinel'])
  const stop = async () => watched.destroy()
  try {
    await waitFor(timeoutMs, `the sentinel on port ${port} to answer PING`, async () => (await sendCommand(port, ['PING'], { timeoutMs: 500 })) === 'PONG')
  } catch (error) {
    let log = ''
    try {
      log = readFileSync(join(dir, 'sentinel.log'), 'utf8').split('\n').slice(-15).join('\n')
    } catch {
      // no log yet
    }
    await stop()
    throw new TestkitError('E_REDIS_START', `${(error as Error).message}${log ? `\nsentinel log:\n${log}` : ''}`, { cause: error })
  }
  return { port, stop }
}

async function waitFor(timeoutMs: number, what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await condition()) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new TestkitError('E_REDIS_START', `timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
