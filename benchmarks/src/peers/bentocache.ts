// bentocache 1.6 as a peer: memory-only and memory + redis driver. Runs only in a child process.
// bentocache declares a peer dependency on ioredis ^5; its redis driver works with the
// workspace's ioredis 6 (same `Redis` options and commands), which is what pnpm links it to.
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, l2Keys, measureL1Async, measureL2 } from './common.js'

const L1_SETTINGS = [
  { variant: 'defaults (serialize)', memory: {} },
  // The fastest no-copy setting: values kept as objects, returned by reference.
  { variant: 'serialize: false', memory: { serialize: false } },
] as const

export async function l1Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const setting of L1_SETTINGS) {
    const bento = new BentoCache({
      default: 'memory',
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, ...setting.memory })) },
    })
    try {
      const key = `${ctx.keyPrefix}resident`
      await bento.set({ key, value: ctx.fixtures.taskProgress, ttl: '1h' })
      const get = (k: string) => bento.get({ key: k })
      rows.push({ name: 'bentocache', variant: `get · ${setting.variant}`, ...l1Figures(await measureL1Async(get, key, ctx, 'bentocache get')) })
      const getOrSet = (k: string) => bento.getOrSet({ key: k, factory: () => ctx.fixtures.taskProgress, ttl: '1h' })
      rows.push({ name: 'bentocache', variant: `getOrSet · ${setting.variant}`, ...l1Figures(await measureL1Async(getOrSet, key, ctx, 'bentocache getOrSet')) })
    } finally {
      await bento.disconnectAll()
    }
  }
  return rows
}

export async function l2Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  const settings = [
    // An L1 of one entry over 1,000 rotating keys: every read misses L1, hits Redis, fills L1.
    { variant: 'memory(serialize) + redis', memory: {} },
    { variant: 'memory(serialize: false) + redis', memory: { serialize: false } },
  ] as const
  for (const setting of settings) {
    const prefix = `${ctx.keyPrefix}${rows.length}`
    const bento = new BentoCache({
      default: 'tiered',
      prefix,
      stores: {
        tiered: bentostore()
          .useL1Layer(memoryDriver({ maxItems: 1, ...setting.memory }))
          .useL2Layer(redisDriver({ connection: { host: ctx.redis.host, port: ctx.redis.port } })),
      },
    })
    try {
      const keys = l2Keys('')
      for (const key of keys) await bento.set({ key, value: ctx.fixtures.taskProgress, ttl: '1h' })
      rows.push(...(await measureL2((k) => bento.get({ key: k }), keys, ctx, { name: 'bentocache', variant: setting.variant })))
    } finally {
      await bento.disconnectAll()
    }
  }
  return rows
}
