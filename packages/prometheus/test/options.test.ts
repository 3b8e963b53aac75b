import { InvalidOptionsError, loaderChannel } from '@tiercache/core'
import { Counter } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { type PrometheusMetricsOptions, prometheusMetrics } from '../src/index.js'
import { cacheFor, exported, registryFor } from './helpers.js'

/** The error `prometheusMetrics` throws for these options. */
function failure(options: PrometheusMetricsOptions | Record<string, unknown>, name = 'orders'): InvalidOptionsError {
  try {
    prometheusMetrics(cacheFor({ name }), options as PrometheusMetricsOptions).close()
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError)
    return error as InvalidOptionsError
  }
  throw new Error('expected prometheusMetrics to throw')
}

describe('invalid options', () => {
  it('refuses a second cache of the same name in one registry', () => {
    const registry = registryFor()
    exported(cacheFor({ name: 'orders' }), { registry })
    const error = failure({ registry })
    expect(error.code).toBe('E_INVALID_OPTIONS')
    expect(error.path).toBe('cache.name')
    expect(error.message).toMatch(/^cache\.name: a cache named "orders" is already exported to this registry/)
    // Allowed elsewhere: another registry, or another prefix.
    exported(cacheFor({ name: 'orders' }), { registry: registryFor() })
    exported(cacheFor({ name: 'orders' }), { registry, prefix: 'other_' })
  })

  it('refuses a cache label: it is always the cache name', () => {
    const error = failure({ registry: registryFor(), labels: { cache: 'x' } })
    expect(error.path).toBe('labels.cache')
    expect(error.message).toContain('the cache label is always the cache\'s name ("orders")')
  })

  it.each(['1st', 'with-dash', '__reserved', '', 'é'])('refuses the label name %j', (name) => {
    const error = failure({ registry: registryFor(), labels: { [name]: 'v' } })
    expect(error.path).toBe(`labels.${name}`)
    expect(error.message).toContain('expected a label name')
  })

  it.each(['family', 'result', 'operation', 'direction', 'le'])('refuses %j, a label the metrics set', (name) => {
    expect(failure({ registry: registryFor(), labels: { [name]: 'v' } }).message).toContain('a label the metrics set themselves')
  })

  it('refuses label values that are not strings', () => {
    const error = failure({ registry: registryFor(), labels: { region: 1 } })
    expect(error.message).toBe('labels.region: expected a string value, got 1')
  })

  it('refuses other label names than the other caches of the registry have, and other buckets', () => {
    const registry = registryFor()
    exported(cacheFor({ name: 'a' }), { registry, labels: { region: 'eu' } })
    expect(failure({ registry, labels: { zone: 'z1' } }).message).toBe(
      "labels: expected the label names of the other caches in this registry (region), got (zone): a metric's series share their label names",
    )
    expect(failure({ registry }).path).toBe('labels')
    expect(failure({ registry, labels: { region: 'us' }, loaderBuckets: [1, 2] }).path).toBe('loaderBuckets')
    expect(failure({ registry, labels: { region: 'us' }, l2Buckets: [1, 2] }).path).toBe('l2Buckets')
    exported(cacheFor({ name: 'b' }), { registry, labels: { region: 'us' } })
  })

  it.each([
    [{ prefix: 'my-cache_' }, 'prefix'],
    [{ prefix: 1 }, 'prefix'],
    [{ loaderBuckets: [] }, 'loaderBuckets'],
    [{ loaderBuckets: [0.5, 0.1] }, 'loaderBuckets'],
    [{ l2Buckets: [0, 1] }, 'l2Buckets'],
    [{ l2Buckets: 'fast' }, 'l2Buckets'],
    [{ databaseQueries: 3 }, 'databaseQueries'],
    [{ labels: ['a'] }, 'labels'],
    [{ registry: {} }, 'registry'],
    [{ buckets: [1] }, 'buckets'],
  ])('refuses %j, naming %s', (options, path) => {
    const error = failure({ registry: registryFor(), ...options })
    expect(error.path).toBe(path)
    expect(error.message.startsWith(`${path}: `)).toBe(true)
  })

  it('refuses something else than a cache', () => {
    expect(() => prometheusMetrics({} as never)).toThrow('cache: expected a TieredCache')
  })

  it('refuses a prefix whose names another metric of the registry holds, and registers nothing', () => {
    const registry = registryFor()
    new Counter({ name: 'tiercache_l1_entries', help: 'not ours', registers: [registry] })
    const error = failure({ registry })
    expect(error.message).toBe('prefix: a metric named "tiercache_l1_entries" is already registered in this registry: pass another prefix')
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(['tiercache_l1_entries'])
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    const other = registryFor()
    new Counter({ name: 'tiercache_database_queries_total', help: 'not ours', registers: [other] })
    exported(cacheFor({ name: 'a' }), { registry: other })
    expect(failure({ registry: other, databaseQueries: () => 0 }).message).toContain('"tiercache_database_queries_total" is already registered')
  })
})
