import { l2Channel, loaderChannel, memoryStore } from '@tiercache/core'
import { type OpenMetricsContentType, Registry, register } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { prometheusMetrics } from '../src/index.js'
import { cacheFor, exported, registryFor, scrape, valueOf } from './helpers.js'

const METRICS = [
  'tiercache_reads_total',
  'tiercache_loader_calls_total',
  'tiercache_l2_errors_total',
  'tiercache_bus_messages_total',
  'tiercache_breaker_state',
  'tiercache_bus_healthy',
  'tiercache_l1_entries',
  'tiercache_recovery_queue_depth',
  'tiercache_loader_duration_seconds',
  'tiercache_l2_duration_seconds',
]

const registered = (registry: ReturnType<typeof registryFor>) => registry.getMetricsAsArray().map((metric) => metric.name)
const cachesIn = async (registry: ReturnType<typeof registryFor>) => new Set((await scrape(registry)).map(([, labels]) => labels.cache))

describe('several caches', () => {
  it('share the metrics of one registry, their series told apart by cache', async () => {
    const registry = registryFor()
    const a = cacheFor({ name: 'a' })
    const b = cacheFor({ name: 'b' })
    exported(a, { registry })
    exported(b, { registry })
    expect(registered(registry).sort()).toEqual([...METRICS].sort())
    await a.getOrSet('k', () => 1)
    await a.getOrSet('k', () => 1)
    await b.getOrSet('k', () => 1)
    expect(await valueOf(registry, 'tiercache_reads_total', { cache: 'a', result: 'l1_hit' })).toBe(1)
    expect(await valueOf(registry, 'tiercache_reads_total', { cache: 'b', result: 'l1_hit' })).toBe(0)
    expect(await valueOf(registry, 'tiercache_loader_duration_seconds_count', { cache: 'a' })).toBe(1)
    expect(await valueOf(registry, 'tiercache_loader_duration_seconds_count', { cache: 'b' })).toBe(1)
  })

  it('work in two registries side by side, one cache in both', async () => {
    const first = registryFor()
    const second = registryFor()
    const a = cacheFor({ name: 'a' })
    const b = cacheFor({ name: 'b' })
    exported(a, { registry: first })
    exported(a, { registry: second, labels: { region: 'eu' } })
    exported(b, { registry: second, labels: { region: 'us' } })
    await a.getOrSet('k', () => 1)
    await b.getOrSet('k', () => 1)
    expect(await cachesIn(first)).toEqual(new Set(['a']))
    expect(await cachesIn(second)).toEqual(new Set(['a', 'b']))
    expect(await valueOf(first, 'tiercache_loader_duration_seconds_count', { cache: 'a' })).toBe(1)
    expect(await valueOf(second, 'tiercache_loader_duration_seconds_count', { cache: 'a', region: 'eu' })).toBe(1)
    expect(await valueOf(second, 'tiercache_loader_duration_seconds_count', { cache: 'b', region: 'us' })).toBe(1)
  })

  it('put the extra labels on every series of their cache', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    exported(cache, { registry, labels: { service: 'billing', region: 'eu' } })
    await cache.getOrSet('k', () => 1)
    const series = await scrape(registry)
    expect(new Set(series.map(([name]) => name.replace(/_(bucket|sum|count)$/, '')))).toEqual(new Set(METRICS.filter((m) => m !== 'tiercache_l2_errors_total')))
    for (const [name, labels] of series) expect(labels, name).toMatchObject({ cache: 'orders', service: 'billing', region: 'eu' })
  })

  it('take another prefix', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry, prefix: 'app_cache_' })
    exported(cache, { registry }) // another prefix, another set of metrics: the name is free there
    expect(registered(registry).sort()).toEqual([...METRICS, ...METRICS.map((m) => m.replace('tiercache_', 'app_cache_'))].sort())
    await cache.getOrSet('k', () => 1)
    expect(await valueOf(registry, 'app_cache_reads_total', { result: 'miss' })).toBe(1)
  })

  it('work with an OpenMetrics registry', async () => {
    const registry = new Registry<OpenMetricsContentType>()
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    const cache = cacheFor({ name: 'orders' })
    const metrics = prometheusMetrics(cache, { registry })
    await cache.getOrSet('k', () => 1)
    const text = await registry.metrics()
    expect(text).toContain('# TYPE tiercache_reads counter')
    expect(text).toContain('tiercache_reads_total{cache="orders",family="default@1",result="miss"} 1')
    metrics.close() // unregisters by the names it registered, though the scrape renamed the counters
    expect(registry.getMetricsAsArray()).toEqual([])
  })

  it("use prom-client's global registry by default", async () => {
    const cache = cacheFor({ name: 'orders' })
    const metrics = exported(cache)
    expect(register.getSingleMetric('tiercache_reads_total')).toBeDefined()
    metrics.close()
    expect(register.getSingleMetric('tiercache_reads_total')).toBeUndefined()
  })
})

describe('close()', () => {
  it("removes the cache's series, then with the last cache the metrics and the channel subscriptions", async () => {
    const registry = registryFor()
    const a = cacheFor({ name: 'a', l2: memoryStore() })
    const b = cacheFor({ name: 'b', l2: memoryStore() })
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    const metricsA = prometheusMetrics(a, { registry, databaseQueries: () => 3 })
    const metricsB = prometheusMetrics(b, { registry })
    expect(loaderChannel.start.hasSubscribers).toBe(true)
    expect(l2Channel.start.hasSubscribers).toBe(true)
    await a.getOrSet('k', () => 1)
    await b.getOrSet('k', () => 1)
    expect(await cachesIn(registry)).toEqual(new Set(['a', 'b']))

    metricsA.close()
    expect(await cachesIn(registry)).toEqual(new Set(['b']))
    expect((await registry.metrics()).includes('cache="a"')).toBe(false)
    expect(registered(registry)).not.toContain('tiercache_database_queries_total') // no cache left that counts queries
    expect(loaderChannel.start.hasSubscribers).toBe(true)
    await a.getOrSet('k2', () => 2) // not timed any more
    expect(await cachesIn(registry)).toEqual(new Set(['b']))

    metricsB.close()
    expect(registered(registry)).toEqual([])
    expect(await registry.metrics()).toBe('\n')
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    expect(l2Channel.start.hasSubscribers).toBe(false)
  })

  it('is idempotent, and frees the name for another export', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    const first = prometheusMetrics(cache, { registry })
    first.close()
    first.close()
    const second = exported(cache, { registry })
    first.close() // must not touch the second export
    await cache.getOrSet('k', () => 1)
    expect(await valueOf(registry, 'tiercache_reads_total', { cache: 'orders', result: 'miss' })).toBe(1)
    expect(loaderChannel.start.hasSubscribers).toBe(true)
    second.close()
    expect(loaderChannel.start.hasSubscribers).toBe(false)
  })
})

describe('database_queries_total', () => {
  it('reads databaseQueries at scrape time, for the caches that give it', async () => {
    const registry = registryFor()
    let queries = 0
    const a = cacheFor({ name: 'a' })
    const b = cacheFor({ name: 'b' })
    exported(b, { registry })
    expect(registered(registry)).not.toContain('tiercache_database_queries_total')
    exported(a, { registry, databaseQueries: () => queries })
    queries = 5
    expect(await valueOf(registry, 'tiercache_database_queries_total', { cache: 'a' })).toBe(5)
    queries = 7
    expect(await valueOf(registry, 'tiercache_database_queries_total', { cache: 'a' })).toBe(7)
    expect(await valueOf(registry, 'tiercache_database_queries_total', { cache: 'b' })).toBeUndefined()
    expect(await registry.metrics()).toContain('# TYPE tiercache_database_queries_total counter\ntiercache_database_queries_total{cache="a"} 7')
  })

  it('fails the scrape, naming the cache, for a reading a counter cannot take', async () => {
    const registry = registryFor()
    const cache = cacheFor({ name: 'orders' })
    exported(cache, { registry, databaseQueries: () => Number.NaN })
    await expect(registry.metrics()).rejects.toThrow('databaseQueries of cache "orders" returned NaN')
    const other = registryFor()
    exported(cacheFor({ name: 'jobs' }), {
      registry: other,
      databaseQueries: () => {
        throw new Error('repository closed')
      },
    })
    await expect(other.metrics()).rejects.toThrow('databaseQueries of cache "jobs" threw: repository closed')
  })
})
