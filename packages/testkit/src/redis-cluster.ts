import { startRedis, type RedisServer } from './redis-server.js'
import { TestkitError } from './errors.js'

/** A Redis Cluster on loopback: masters, and replicas of them when asked for. */
export interface RedisCluster {
  /** Every node: the masters first, then the replicas (in the order of their masters). */
  readonly nodes: readonly RedisServer[]
  /** The nodes started as masters (a failover can promote a replica in the place of one). */
  readonly masters: readonly RedisServer[]
  /** The nodes started as replicas: replica `j` of master `i` is `replicas[i * replicasPerMaster + j]`. */
  readonly replicas: readonly RedisServer[]
  /** For ioredis `new Cluster(startupNodes)`. */
  readonly startupNodes: readonly { host: string; port: number }[]
  /**
   * The node that serves a slot now, as a live node of the cluster sees it (after a failover, the
   * promoted replica). Rejects when no live node answers.
   */
  ownerOf(slot: number): Promise<RedisServer>
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartRedisClusterOptions {
  /** @default 3 */
  masters?: number
  /** Replicas of each master. @default 0 */
  replicasPerMaster?: number
  /**
   * `cluster-node-timeout`: how long a master may not answer before the others count it failed
   * and one of its replicas takes over. @default 3000
   */
  nodeTimeoutMs?: number
  /** How long to wait for `cluster_state:ok` on every node (and the replicas in sync). @default 20000 */
  readyTimeoutMs?: number
}

const SLOTS = 16384

/**
 * Starts the nodes and joins them into a cluster with the cluster commands themselves
 * (ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET, REPLICATE), so no redis-cli is needed.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const masterCount = options.masters ?? 3
  const perMaster = options.replicasPerMaster ?? 0
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 3000
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000
  const nodes: RedisServer[] = []
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()))
  }
  const args = [
    '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
    // A replica's first sync starts at once (the default waits 5 s for more replicas to share it).
    '--repl-diskless-sync-delay', '0',
  ]
  try {
    for (let i = 0; i < masterCount * (1 + perMaster); i++) nodes.push(await startRedis({ args }))
    const masters = nodes.slice(0, masterCount)
    const replicas = nodes.slice(masterCount)
    for (const [i, node] of masters.entries()) {
      const first = Math.floor((SLOTS * i) / masterCount)
      const last = Math.floor((SLOTS * (i + 1)) / masterCount) - 1
      await node.command('CLUSTER', 'ADDSLOTSRANGE', first, last)
      await node.command('CLUSTER', 'SET-CONFIG-EPOCH', i + 1)
    }
    const [first, ...others] = nodes
    for (const node of others) await first!.command('CLUSTER', 'MEET', '127.0.0.1', node.port)
    await waitUntil(readyTimeoutMs, 'every node to know every other', async () =>
      (await Promise.all(nodes.map((node) => node.command('CLUSTER', 'INFO')))).every((info) => info.includes(`cluster_known_nodes:${nodes.length}`)),
    )
    if (replicas.length > 0) {
      const ids = await Promise.all(masters.map((node) => node.command('CLUSTER', 'MYID')))
      for (const [r, replica] of replicas.entries()) await replica.command('CLUSTER', 'REPLICATE', ids[Math.floor(r / perMaster)]!)
    }
    await waitUntil(readyTimeoutMs, 'cluster_state:ok on every node, with every replica in sync and known as one', async () => {
      const infos = await Promise.all(nodes.map((node) => node.command('CLUSTER', 'INFO')))
      if (!infos.every((info) => info.includes('cluster_state:ok'))) return false
      const links = await Promise.all(replicas.map((node) => node.command('INFO', 'replication')))
      if (!links.every((info) => info.includes('master_link_status:up'))) return false
      // A master's failover needs the other masters to know its replicas (they vote for one).
      const views = await Promise.all(nodes.map((node) => node.command('CLUSTER', 'NODES')))
      return views.every((view) => view.split('\n').filter((line) => / (myself,)?slave /.test(line)).length === replicas.length)
    })
    const ownerOf = async (slot: number): Promise<RedisServer> => {
      for (const node of nodes) {
        let reply: string
        try {
          reply = await node.command('CLUSTER', 'SHARDS')
        } catch {
          continue // a dead node: ask the next
        }
        const port = ownerPort(reply, slot)
        const owner = nodes.find((n) => n.port === port)
        if (owner) return owner
      }
      throw new TestkitError('E_REDIS_START', `no live node of the cluster knows the owner of slot ${slot}`)
    }
    return {
      nodes,
      masters,
      replicas,
      startupNodes: nodes.map((node) => ({ host: node.host, port: node.port })),
      ownerOf,
      stop,
      [Symbol.asyncDispose]: stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * The port of the master serving `slot` in a flattened `CLUSTER SHARDS` reply (one value per line,
 * as `sendCommand` renders arrays): each shard lists `slots` as start/end pairs, then its `nodes`,
 * each with `port`, `role` and `health`.
 */
function ownerPort(reply: string, slot: number): number | undefined {
  const lines = reply.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== 'slots') continue
    const ranges: number[] = []
    let j = i + 1
    while (j < lines.length && lines[j] !== 'nodes') ranges.push(Number(lines[j++]))
    let covered = false
    for (let k = 0; k + 1 < ranges.length; k += 2) if (slot >= ranges[k]! && slot <= ranges[k + 1]!) covered = true
    if (!covered) continue
    // The shard's nodes follow until the next `slots`: the one with role master and health online.
    let port: number | undefined
    let role = ''
    let health = ''
    for (j++; j < lines.length && lines[j] !== 'slots'; j++) {
      if (lines[j] === 'port') port = Number(lines[j + 1])
      if (lines[j] === 'role') role = lines[j + 1] ?? ''
      if (lines[j] === 'health') {
        health = lines[j + 1] ?? ''
        if (role === 'master' && health === 'online') return port
      }
    }
  }
  return undefined
}

async function waitUntil(timeoutMs: number, what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await condition()) return
    } catch (error) {
      last = error // a node not answering yet
    }
    if (Date.now() > deadline) {
      throw new TestkitError('E_REDIS_START', `redis cluster: timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String((last as Error).message ?? last)})` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
