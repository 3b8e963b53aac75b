// The `cluster` rows of `scale`, in a child of their own: L2 hits (every read misses an L1 of one
// entry and goes to Redis) at 64 in flight over 1,000 rotating keys, through one cache on a
// single node and one on a 3-master cluster, the same task-status values, the same loop.
import { createRedisCache, type RedisConnectionOptions } from '@tiercache/redis'
import { measure } from '../measure.js'
import { IN_FLIGHT, l2Keys } from '../peers/common.js'
import type { ChildContext, Row } from '../scenario.js'

export interface ClusterArgs {
  cluster: readonly { host: string; port: number }[]
}

async function l2HitsInFlight(redis: RedisConnectionOptions, namespace: string, ctx: ChildContext) {
  const cache = createRedisCache({ redis, namespace, bus: false, ttl: '1h', l1: { maxEntries: 1 }, l2Timeout: '2s' })
  try {
    await cache.store.ready()
    const ids = l2Keys('')
    for (let i = 0; i < ids.length; i += 100) await Promise.all(ids.slice(i, i + 100).map((id) => cache.set(id, { ...ctx.fixtures.taskStatus, taskId: id })))
    let next = 0
    const batch: Promise<unknown>[] = new Array(IN_FLIGHT)
    const readAll = async () => {
      for (let i = 0; i < IN_FLIGHT; i++) batch[i] = cache.get(ids[next++ % ids.length]!)
      await Promise.all(batch)
    }
    // Warm the client's slot table, the decoder and both paths before timing.
    for (let i = 0; i < 50; i++) await readAll()
    const before = cache.stats().total
    const { opsPerSec } = await measure(readAll, { timeMs: ctx.timeMs, opsPerCall: IN_FLIGHT, latencyPerOp: false })
    const after = cache.stats().total
    if (after.l2Hits - before.l2Hits < next - 50 * IN_FLIGHT || after.loaderCalls !== 0 || after.l2Errors !== 0) {
      throw new Error(`scale cluster: expected L2 hits only (l2Hits ${after.l2Hits - before.l2Hits} of ${next - 50 * IN_FLIGHT} reads, loader ${after.loaderCalls}, errors ${after.l2Errors})`)
    }
    await cache.clear()
    return opsPerSec
  } finally {
    await cache.close()
  }
}

export async function tiercacheClusterHits(args: ClusterArgs, ctx: ChildContext): Promise<Row[]> {
  const namespace = ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')
  const single = await l2HitsInFlight({ host: ctx.redis.host, port: ctx.redis.port }, namespace, ctx)
  const cluster = await l2HitsInFlight({ cluster: args.cluster.map((node) => ({ ...node })) }, namespace, ctx)
  const note = `cache get, L1 miss → L2, ${IN_FLIGHT} in flight, one client process`
  return [
    { name: 'tiercache', variant: 'L2 hits, one node', group: 'cluster', baseline: true, masters: 1, opsPerSec: single, note },
    { name: 'tiercache', variant: 'L2 hits, 3-master cluster', group: 'cluster', masters: args.cluster.length, opsPerSec: cluster, note },
  ]
}
