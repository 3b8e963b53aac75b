import { describe, expect, it, onTestFinished } from 'vitest'
import { createTieredCache, type TieredCache } from '@tiercache/core'
import { startFaultProxy, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache, redisBus, redisStore } from '../src/index.js'

// A write's L2 changes and its bus message reach Redis in one round trip when the store and the
// bus share the data connection (createRedisCache), counted by a proxy in front of a real server;
// with the bus on a connection of its own, the engine takes two steps. Heartbeats are slowed down
// so that nothing but the writes crosses the writer's connections while counting.

// No heartbeat and no stall probe in the counting windows: only the writes cross the proxy.
const QUIET = { heartbeatInterval: '10m', heartbeatTimeout: '20m', stallProbeInterval: false } as const

interface Item {
  readonly v: number
}

async function healthy(cache: TieredCache): Promise<void> {
  await new Promise<void>((resolve) => (cache.stats().busHealthy ? resolve() : cache.on('bus-health', ({ healthy }) => healthy && resolve())))
}

async function setup(shared: boolean) {
  const server = sharedRedis()
  const proxy = await startFaultProxy({ target: { port: server.port } })
  onTestFinished(() => proxy.stop())
  const namespace = uniqueNamespace('trip')
  let writer: TieredCache
  if (shared) {
    writer = createRedisCache({ redis: proxy.url, namespace, ttl: '1m', bus: QUIET, store: { stallProbeInterval: false } })
  } else {
    const store = redisStore({ redis: proxy.url, namespace, stallProbeInterval: false })
    const bus = redisBus({ redis: proxy.url, namespace, ...QUIET })
    writer = createTieredCache({ l2: store, bus, ttl: '1m' })
    onTestFinished(async () => {
      await bus.close()
      await store.close()
    })
  }
  const reader = createRedisCache({ redis: server.url, namespace, ttl: '1m' })
  onTestFinished(async () => {
    await writer.close()
    await reader.close()
  })
  await Promise.all([healthy(writer), healthy(reader)])
  const items = (cache: TieredCache) => cache.family<string, Item>({ name: 'items', key: (id) => id, generational: { group: (id) => id.split('-')[0] as string } })
  const mine = items(writer)
  const theirs = items(reader)
  // The first write loads the script and reads the generations: not what is counted.
  await mine.set('warm-0', { v: 0 })
  /** Round trips the writer's connections made during `work`. */
  const count = async (work: () => Promise<unknown>): Promise<number> => {
    const before = proxy.roundTrips
    await work()
    return proxy.roundTrips - before
  }
  /** Resolves once the reader's copy of `id` reads `v` (its bus message arrived and L2 has it). */
  const readerSees = async (id: string, v: number | undefined): Promise<void> => {
    for (;;) {
      if ((await theirs.get(id))?.v === v) return
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  return { mine, theirs, count, readerSees }
}

describe('one round trip per write', () => {
  it('a set, a delete and a generation bump each take one round trip, and the other process sees each', async () => {
    const { mine, theirs, count, readerSees } = await setup(true)
    await mine.set('a-1', { v: 1 })
    expect((await theirs.get('a-1'))?.v).toBe(1) // the reader now holds it in L1

    expect(await count(() => mine.set('a-1', { v: 2 }))).toBe(1)
    await readerSees('a-1', 2)

    expect(await count(() => mine.delete('a-1'))).toBe(1)
    await readerSees('a-1', undefined)

    await mine.set('b-1', { v: 3 })
    expect((await theirs.get('b-1'))?.v).toBe(3)
    expect(await count(() => mine.invalidateGroup('b'))).toBe(1)
    await readerSees('b-1', undefined)

    await mine.set('c-1', { v: 4 })
    expect((await theirs.get('c-1'))?.v).toBe(4)
    expect(await count(() => mine.invalidate())).toBe(1)
    await readerSees('c-1', undefined)
  })

  it('the writes of one event-loop turn share their round trip', async () => {
    const { mine, count, readerSees } = await setup(true)
    await mine.setMany([{ params: 'a-0', value: { v: 0 } }, { params: 'z-0', value: { v: 0 } }]) // reads their groups' generations
    const trips = await count(() => Promise.all([mine.set('a-1', { v: 1 }), mine.set('a-2', { v: 2 }), mine.delete('a-3'), mine.invalidateGroup('z')]))
    expect(trips).toBe(1)
    await readerSees('a-1', 1)
    await readerSees('a-2', 2)
  })

  it('keeps the order of a key\'s writes in one turn: a set after a delete goes in a script of its own, after it', async () => {
    const { mine, theirs, count, readerSees } = await setup(true)
    await mine.set('a-1', { v: 1 })
    expect((await theirs.get('a-1'))?.v).toBe(1)
    // Two scripts, sent back to back on one connection: still one round trip.
    expect(await count(() => Promise.all([mine.delete('a-1'), mine.set('a-1', { v: 2 })]))).toBe(1)
    await readerSees('a-1', 2)
    expect(mine.peek('a-1')?.v).toBe(2)
  })

  it('a write larger than one trip carries takes the two steps, and lands whole', async () => {
    const { mine, count, readerSees } = await setup(true)
    const entries = Array.from({ length: 600 }, (_, i) => ({ params: `a-${i}`, value: { v: i } }))
    expect(await count(() => mine.setMany(entries))).toBeGreaterThanOrEqual(2)
    await readerSees('a-0', 0)
    await readerSees('a-599', 599)
  })

  it('a bus on a connection of its own: the L2 change, then the message (two round trips)', async () => {
    const { mine, theirs, count, readerSees } = await setup(false)
    await mine.set('a-1', { v: 1 })
    expect((await theirs.get('a-1'))?.v).toBe(1)
    expect(await count(() => mine.set('a-1', { v: 2 }))).toBe(2)
    await readerSees('a-1', 2)
  })
})
