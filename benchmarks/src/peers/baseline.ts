// The bare baselines of l1-hit and l2-hit, measured in a child like every other library.
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, l2Keys, measureL1Async, measureL1Sync, measureL2 } from './common.js'

/** lru-cache `get`, sync (baseline) and awaited inside an async function. */
export async function l1Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const lru = new LRUCache<string, object>({ max: 10_000 })
  const key = `${ctx.keyPrefix}resident`
  lru.set(key, ctx.fixtures.taskProgress)
  const sync = await measureL1Sync((k) => lru.get(k), key, ctx, 'lru-cache get')
  const inAsync = async (k: string) => lru.get(k)
  const awaited = await measureL1Async(inAsync, key, ctx, 'lru-cache get in an async function')
  return [
    { name: 'lru-cache', variant: 'get (sync)', baseline: true, ...l1Figures(sync) },
    { name: 'lru-cache', variant: 'get in an async function', ...l1Figures(awaited) },
  ]
}

/** ioredis GET + JSON.parse over rotating keys: the baseline of l2-hit. */
export async function l2Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const client = new Redis(ctx.redis.port, ctx.redis.host, { lazyConnect: true })
  await client.connect()
  try {
    const keys = l2Keys(ctx.keyPrefix)
    const json = JSON.stringify(ctx.fixtures.taskProgress)
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.set(key, json, 'EX', 3600)
    await pipeline.exec()
    const get = async (key: string) => {
      const raw = await client.get(key)
      return raw === null ? undefined : (JSON.parse(raw) as unknown)
    }
    const rows = await measureL2(get, keys, ctx, { name: 'ioredis', variant: 'GET + JSON.parse', baseline: true })
    await client.unlink(...keys)
    return rows
  } finally {
    client.disconnect()
  }
}
