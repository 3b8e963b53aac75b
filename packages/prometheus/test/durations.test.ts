import { type L2TraceContext, l2Channel, memoryStore } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cacheFor, exported, registryFor, scrape, valueOf } from './helpers.js'

describe('loader_duration_seconds', () => {
  it('observes every loader call, resolved, rejected or thrown synchronously', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry })
    await cache.getOrSet('k1', async () => 'v1')
    await cache.getOrSet('k1', async () => 'never') // an L1 hit: no loader call
    await expect(cache.getOrSet('k2', () => Promise.reject(new Error('db down')))).rejects.toThrow()
    // Node's tracePromise publishes error and end, never asyncEnd, for a synchronous throw.
    await expect(
      cache.getOrSet('k3', () => {
        throw new Error('sync')
      }),
    ).rejects.toThrow()
    await cache.getOrSetMany(['a', 'b', 'c'], async (keys) => keys) // a batch: one call

    const loaderCalls = cache.stats().total.loaderCalls
    expect(loaderCalls).toBe(4)
    const labels = { cache: 'orders', family: 'default@1' }
    expect(await valueOf(registry, 'tiercache_loader_duration_seconds_count', labels)).toBe(loaderCalls)
    expect(await valueOf(registry, 'tiercache_loader_duration_seconds_sum', labels)).toBeGreaterThan(0)
    expect(await valueOf(registry, 'tiercache_loader_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(loaderCalls)
  })

  it('uses the default buckets, or the loaderBuckets option', async () => {
    const registry = registryFor()
    const other = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry })
    exported(cache, { registry: other, loaderBuckets: [0.1, 1] })
    await cache.getOrSet('k', () => 1)
    const bounds = async (r: typeof registry) =>
      (await scrape(r)).filter(([name]) => name === 'tiercache_loader_duration_seconds_bucket').map(([, labels]) => labels.le)
    expect(await bounds(registry)).toEqual([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, '+Inf'])
    expect(await bounds(other)).toEqual([0.1, 1, '+Inf'])
  })

  it('times only the caches the registry exports', async () => {
    const registry = registryFor()
    const exportedCache = cacheFor({ name: 'orders' })
    const other = cacheFor({ name: 'other' })
    exported(exportedCache, { registry })
    await other.getOrSet('k', () => 1)
    await exportedCache.getOrSet('k', () => 1)
    const caches = (await scrape(registry)).filter(([name]) => name.startsWith('tiercache_loader_duration_seconds')).map(([, labels]) => labels.cache)
    expect(new Set(caches)).toEqual(new Set(['orders']))
  })
})

describe('l2_duration_seconds', () => {
  it('observes each L2 call by operation, as many as the channel traced', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    exported(cache, { registry })
    // The calls that ended, by operation, seen through a subscription of the test's own.
    const ended: Record<string, number> = {}
    const count = (context: L2TraceContext) => {
      if (context.cache === 'orders') ended[context.operation] = (ended[context.operation] ?? 0) + 1
    }
    const handlers = { asyncEnd: count, end: (context: L2TraceContext) => void ('error' in context && count(context)) }
    l2Channel.subscribe(handlers as never)
    onTestFinished(() => void l2Channel.unsubscribe(handlers as never))

    await cache.set('k1', 'v1')
    await cache.getOrSet('k2', () => 'v2')
    await cache.delete('k1')
    const other = cacheFor({ name: 'orders-reader', l2: memoryStore() })
    await other.get('k2')
    // Copied in the same synchronous step as the scrape reads the histogram.
    const seen = { ...ended }
    const series = (await scrape(registry)).filter(([name]) => name === 'tiercache_l2_duration_seconds_count')
    const observed = Object.fromEntries(series.map(([, labels, value]) => [labels.operation, value]))
    expect(Object.keys(observed).length).toBeGreaterThanOrEqual(2)
    expect(observed.get).toBeGreaterThanOrEqual(1)
    expect(observed).toEqual(seen)
    expect(new Set(series.map(([, labels]) => labels.cache))).toEqual(new Set(['orders']))
    for (const [operation] of Object.entries(observed)) {
      expect(await valueOf(registry, 'tiercache_l2_duration_seconds_sum', { operation })).toBeGreaterThan(0)
    }
  })

  it('uses the l2Buckets option', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    exported(cache, { registry, l2Buckets: [0.001, 0.01] })
    await cache.get('k')
    const bounds = (await scrape(registry)).filter(([name, labels]) => name === 'tiercache_l2_duration_seconds_bucket' && labels.operation === 'get').map(([, labels]) => labels.le)
    expect(bounds).toEqual([0.001, 0.01, '+Inf'])
  })
})
