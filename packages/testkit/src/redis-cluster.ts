import { startRedis, type RedisServer } from './redis-server.js'
import { TestkitError } from './errors.js'

/** A Redis Cluster of masters without replicas, all on loopback. */
export interface RedisCluster {
  readonly nodes: readonly RedisServer[]
  /** For ioredis `new Cluster(startupNodes)`. */
  readonly startupNodes: readonly { host: string; port: number }[]
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartRedisClusterOptions {
  /** @default 3 */
  masters?: number
  /** How long to wait for `cluster_state:ok` on every node. @default 20000 */
  readyTimeoutMs?: number
}

const SLOTS = 16384

/**
 * Starts N masters and joins them into a cluster with the cluster commands themselves
 * (ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET), so no redis-cli is needed.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000
  const nodes: RedisServer[] = []
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()))
  }
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '3000'],
        }),
      )
    }
    for (const [i, node] of nodes.entries()) {
      const first = Math.floor((SLOTS * i) / masters)
      const last = Math.floor((SLOTS * (i + 1)) / masters) - 1
      await node.command('CLUSTER', 'ADDSLOTSRANGE', first, last)
      await node.command('CLUSTER', 'SET-CONFIG-EPOCH', i + 1)
    }
    const [first, ...others] = nodes
    for (const node of others) await first!.command('CLUSTER', 'MEET', '127.0.0.1', node.port)
    await waitForClusterOk(nodes, masters, readyTimeoutMs)
  } catch (error) {
    await stop()
    throw error
  }
  return {
    nodes,
    startupNodes: nodes.map((node) => ({ host: node.host, port: node.port })),
    stop,
    [Symbol.asyncDispose]: stop,
  }
}

async function waitForClusterOk(nodes: readonly RedisServer[], masters: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const infos = await Promise.all(nodes.map((node) => node.command('CLUSTER', 'INFO').catch(() => '')))
    const ready = infos.every(
      (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}`),
    )
    if (ready) return
    if (Date.now() > deadline) {
      throw new TestkitError('E_REDIS_START', `redis cluster did not reach cluster_state:ok within ${timeoutMs} ms:\n${infos.join('\n---\n')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
