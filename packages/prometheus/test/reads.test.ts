import { memoryBackend, memoryStore } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { cacheFor, exported, fakeClock, registryFor, scrape, valueOf } from './helpers.js'

describe('reads_total', () => {
  it('counts each read by family and result, as the cache counted it', async () => {
    const registry = registryFor()
    const clock = fakeClock()
    const backend = memoryBackend()
    const options = { clock, ttl: '1m', grace: '10m', jitter: 0 } as const
    const a = cacheFor({ ...options, name: 'a', l2: memoryStore({ backend, clock, namespace: 'n' }) })
    const b = cacheFor({ ...options, name: 'b', l2: memoryStore({ backend, clock, namespace: 'n' }) })
    exported(a, { registry })
    exported(b, { registry })

    await a.getOrSet('k1', () => 1) // miss
    await a.getOrSet('k2', () => 2) // miss
    for (const key of ['k1', 'k1', 'k2']) await a.getOrSet(key, () => 0) // 3 L1 hits
    await b.getOrSet('k1', () => 0) // an L2 hit: a wrote k1 to the shared backend
    clock.advance(120_000)
    // Past its TTL, within grace, the loader failing: the stale copy answers. The core counts
    // this read as a miss too (the fresh value missed).
    expect(await a.getOrSet('k1', () => Promise.reject(new Error('db down')))).toBe(1)

    const reads = (cache: string, result: string) => valueOf(registry, 'tiercache_reads_total', { cache, family: 'default@1', result })
    expect([await reads('a', 'miss'), await reads('a', 'l1_hit'), await reads('a', 'l2_hit'), await reads('a', 'stale')]).toEqual([3, 3, 0, 1])
    expect([await reads('b', 'miss'), await reads('b', 'l1_hit'), await reads('b', 'l2_hit'), await reads('b', 'stale')]).toEqual([0, 0, 1, 0])
    expect(await valueOf(registry, 'tiercache_loader_calls_total', { cache: 'a' })).toBe(3)
    expect(await valueOf(registry, 'tiercache_l1_entries', { cache: 'a' })).toBe(2)
    expect(await valueOf(registry, 'tiercache_l1_entries', { cache: 'b' })).toBe(1)
    // The text exposition shows the same totals.
    const text = await registry.metrics()
    expect(text).toContain('# TYPE tiercache_reads_total counter')
    expect(text).toContain('tiercache_reads_total{cache="a",family="default@1",result="l1_hit"} 3')
    expect(text).toContain('tiercache_reads_total{cache="b",family="default@1",result="l2_hit"} 1')
  })

  it('has one series per family, and keeps totals across scrapes', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry })
    const tasks = cache.family({ name: 'task', key: (id: string) => id })
    await tasks.getOrSet('1', () => 'one')
    await tasks.getOrSet('1', () => 'never')
    await cache.getOrSet('k', () => 'v')
    expect(await valueOf(registry, 'tiercache_reads_total', { family: 'task@1', result: 'l1_hit' })).toBe(1)
    expect(await valueOf(registry, 'tiercache_reads_total', { family: 'default@1', result: 'miss' })).toBe(1)

    await tasks.getOrSet('1', () => 'never')
    // Set from the absolute total at each scrape: it grows by what happened since, never doubles.
    expect(await valueOf(registry, 'tiercache_reads_total', { family: 'task@1', result: 'l1_hit' })).toBe(2)
    expect(await valueOf(registry, 'tiercache_reads_total', { family: 'task@1', result: 'l1_hit' })).toBe(2)
    const families = new Set((await scrape(registry)).filter(([name]) => name === 'tiercache_reads_total').map(([, labels]) => labels.family))
    expect(families).toEqual(new Set(['task@1', 'default@1']))
  })

  it('reads stats() once per scrape and never while the cache serves', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry })
    let calls = 0
    const stats = cache.stats.bind(cache)
    Object.assign(cache, { stats: () => (calls++, stats()) })
    for (let i = 0; i < 5; i++) await cache.getOrSet(`k${i % 2}`, () => i)
    expect(calls).toBe(0)
    await registry.metrics()
    expect(calls).toBe(1)
    await registry.getMetricsAsJSON()
    expect(calls).toBe(2)
  })
})
