// cache-manager 7 as a peer: a memory Keyv store, and memory + @keyv/redis.
import KeyvRedis from '@keyv/redis'
import { createCache } from 'cache-manager'
import { createKeyv } from 'cacheable'
import { Keyv } from 'keyv'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, l2Keys, measureL1Async, measureL2 } from './common.js'

export async function l1Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  const key = `${ctx.keyPrefix}resident`
  const value = ctx.fixtures.taskProgress
  const settings = [
    // The documented default: a Keyv over a Map.
    { variant: 'defaults (Keyv Map)', store: () => new Keyv() },
    // The fastest no-copy memory store the cache-manager docs suggest (CacheableMemory, no clone).
    { variant: 'CacheableMemory useClone: false', store: () => createKeyv({ useClone: false }) },
  ]
  for (const setting of settings) {
    const cache = createCache({ stores: [setting.store()] })
    await cache.set(key, value)
    rows.push({ name: 'cache-manager', variant: `get · ${setting.variant}`, ...l1Figures(await measureL1Async((k) => cache.get(k), key, ctx, 'cache-manager get')) })
    rows.push({
      name: 'cache-manager',
      variant: `wrap · ${setting.variant}`,
      ...l1Figures(await measureL1Async((k) => cache.wrap(k, () => value), key, ctx, 'cache-manager wrap')),
    })
    await cache.disconnect()
  }
  return rows
}

export async function l2Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  // Stores are read in order; a memory store of one entry over 1,000 rotating keys misses on every
  // read, so each read takes the memory-miss-then-Redis path (cache-manager does not refill it).
  const redis = new Keyv({ store: new KeyvRedis(ctx.redis.url), namespace: `${ctx.keyPrefix}cm` })
  const cache = createCache({ stores: [createKeyv({ useClone: false, lruSize: 1 }), redis] })
  try {
    const keys = l2Keys('')
    for (const key of keys) await cache.set(key, ctx.fixtures.taskProgress)
    return await measureL2((k) => cache.get(k), keys, ctx, { name: 'cache-manager', variant: 'memory + @keyv/redis' })
  } finally {
    await cache.disconnect()
  }
}
