// cacheable 2.5 as a peer: CacheableMemory (sync) and Cacheable with a @keyv/redis secondary.
import KeyvRedis from '@keyv/redis'
import { Cacheable, CacheableMemory, Keyv, createKeyv } from 'cacheable'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, l2Keys, measureL1Async, measureL1Sync, measureL2 } from './common.js'

export async function l1Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  const key = `${ctx.keyPrefix}resident`
  const value = ctx.fixtures.taskProgress
  for (const useClone of [true, false]) {
    const variant = useClone ? 'defaults (useClone)' : 'useClone: false'
    const memory = new CacheableMemory({ useClone })
    memory.set(key, value)
    rows.push({ name: 'cacheable', variant: `CacheableMemory.get (sync) · ${variant}`, ...l1Figures(await measureL1Sync((k) => memory.get(k), key, ctx, 'CacheableMemory.get')) })
    const cache = new Cacheable({ primary: createKeyv({ useClone }) })
    await cache.set(key, value)
    rows.push({ name: 'cacheable', variant: `Cacheable.get · ${variant}`, ...l1Figures(await measureL1Async((k) => cache.get(k), key, ctx, 'Cacheable.get')) })
    rows.push({
      name: 'cacheable',
      variant: `Cacheable.getOrSet · ${variant}`,
      ...l1Figures(await measureL1Async((k) => cache.getOrSet(k, async () => value), key, ctx, 'Cacheable.getOrSet')),
    })
    await cache.disconnect()
  }
  return rows
}

export async function l2Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const useClone of [true, false]) {
    const secondary = new Keyv({ store: new KeyvRedis(ctx.redis.url), namespace: `${ctx.keyPrefix}${useClone ? 'c' : 'n'}` })
    // An L1 of one entry over 1,000 rotating keys: every read misses L1, hits Redis, fills L1.
    const cache = new Cacheable({ primary: createKeyv({ useClone, lruSize: 1 }), secondary })
    try {
      const keys = l2Keys('')
      for (const key of keys) await cache.set(key, ctx.fixtures.taskProgress)
      rows.push(...(await measureL2((k) => cache.get(k), keys, ctx, { name: 'cacheable', variant: `memory + @keyv/redis · ${useClone ? 'defaults' : 'useClone: false'}` })))
    } finally {
      await cache.disconnect()
    }
  }
  return rows
}
