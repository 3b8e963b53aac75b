// tiercache rows of l2-hit, measured in their own child process against the BUILT packages
// (`pnpm --filter @tiercache/redis... build`): the Redis store's `get` alone, and the cache's
// `get` with an L1 of one entry (every read over the 1,000 rotating keys misses L1 and goes
// through the guard to Redis). Same loops and key rotation as the ioredis baseline (peers/common.ts).
import { createRedisCache, redisStore } from '@tiercache/redis'
import type { ChildContext, Row } from '../scenario.js'
import { l2Keys, measureL2 } from '../peers/common.js'

const FAMILY = 'default@1'

export async function tiercacheL2Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  // The namespace may not contain ':'; the harness prefix does.
  const namespace = ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')
  const redis = { host: ctx.redis.host, port: ctx.redis.port }
  const store = redisStore({ redis, namespace })
  const cache = createRedisCache({ redis, namespace: `${namespace}-cache`, bus: false, ttl: '1h', l1: { maxEntries: 1 }, l2Timeout: '1s' })
  try {
    await Promise.all([store.ready(), cache.store.ready()])
    const ids = l2Keys('')
    const entry = { value: ctx.fixtures.taskProgress, expiresAt: Date.now() + 3_600_000, graceUntil: Date.now() + 3_600_000 }
    const writes = ids.map((id) => ({ key: { family: FAMILY, generation: '', id }, entry }))
    await store.setMany(writes)
    await cache.store.setMany(writes)
    const storeGet = async (id: string) => (await store.get({ family: FAMILY, generation: '', id }))?.value
    // Warm the decoder (msgpackr's record readers, lz4) and both paths before timing, one at a
    // time and in flight, as a service would be after its first seconds.
    for (const get of [storeGet, (id: string) => cache.get(id)]) {
      for (let i = 0; i < 2000; i++) await get(ids[i % ids.length]!)
      for (let i = 0; i < 30; i++) await Promise.all(ids.slice(0, 64).map((id) => get(id)))
    }
    const rows = await measureL2(storeGet, ids, ctx, { name: 'tiercache', variant: 'redisStore get (msgpack+lz4)' })
    rows.push(...(await measureL2((id) => cache.get(id), ids, ctx, { name: 'tiercache', variant: 'cache get (L1 miss → L2)' })))
    const { l2Hits, loaderCalls, l2Errors } = cache.stats().total
    if (l2Hits === 0 || loaderCalls !== 0 || l2Errors !== 0) throw new Error(`tiercache l2-hit: expected L2 hits only (l2Hits ${l2Hits}, loader ${loaderCalls}, L2 errors ${l2Errors})`)
    await store.clear()
    await cache.store.clear()
    return rows
  } finally {
    await cache.close()
    await store.close()
  }
}
