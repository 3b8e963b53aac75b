import { describe, expect, it } from 'vitest'
import {
  CacheClosedError,
  type InvalidationBus,
  type Logger,
  type StatsSink,
  createTieredCache,
  memoryBus,
  memoryStore,
} from '../src/index.js'
import { cacheFor, chaos } from './helpers.js'

describe('close()', () => {
  it('rejects later calls with CacheClosedError, on the hit path too', async () => {
    const cache = createTieredCache()
    await cache.set('k', 1)
    await cache.close()
    await expect(cache.getOrSet('k', () => 2)).rejects.toBeInstanceOf(CacheClosedError)
    await expect(cache.get('k')).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(() => cache.peek('k')).toThrow(CacheClosedError)
    await expect(cache.set('k', 1)).rejects.toBeInstanceOf(CacheClosedError)
    await expect(cache.delete('k')).rejects.toBeInstanceOf(CacheClosedError)
    await expect(cache.clear()).rejects.toBeInstanceOf(CacheClosedError)
    await cache.close()
  })

  it('closes the bus and the store', async () => {
    const store = chaos(memoryStore())
    const bus = memoryBus()
    const cache = createTieredCache({ l2: store.store, bus })
    await cache.close()
    expect(store.calls.close).toBe(1)
    expect(bus.healthy).toBe(false)
  })

  it('hands pending invalidations to the bus before closing it', async () => {
    const bus = memoryBus()
    const cache = createTieredCache({ l2: memoryStore(), bus })
    while (!bus.healthy) await new Promise((r) => setImmediate(r))
    const deleting = cache.delete('k')
    await deleting
    const setting = cache.set('j', 1)
    await cache.close()
    await setting
    expect(bus.published.map((m) => (m.op === 'delete' ? m.keys : []))).toEqual([['k'], ['j']])
  })

  it('reports a failing close as a background error instead of throwing', async () => {
    const store = memoryStore()
    store.close = () => Promise.reject(new Error('boom'))
    const cache = createTieredCache({ l2: store })
    const errors: unknown[] = []
    cache.on('error', (e) => errors.push(e.context))
    await cache.close()
    expect(errors).toEqual(['close'])
  })
})

describe('events', () => {
  it('catches listener exceptions and keeps notifying the others', async () => {
    const logged: unknown[] = []
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (o) => logged.push(o) }
    const cache = cacheFor({ logger })
    const seen: string[] = []
    cache.on('loader-error', () => {
      throw new Error('listener bug')
    })
    const off = cache.on('loader-error', (e) => seen.push(e.key))
    await cache.getOrSet('a', () => Promise.reject(new Error('x'))).catch(() => {})
    off()
    await cache.getOrSet('b', () => Promise.reject(new Error('x'))).catch(() => {})
    expect(seen).toEqual(['a'])
    expect(logged.length).toBe(2)
  })

  it('logs and reports a bus that fails to start', async () => {
    const bus: InvalidationBus = {
      instanceId: 'x',
      healthy: false,
      publish: async () => {},
      onMessage() {},
      onHealthChange() {},
      start: () => Promise.reject(new Error('no route')),
      close: async () => {},
    }
    const logged: unknown[] = []
    const cache = cacheFor({ bus, logger: { debug() {}, info() {}, warn() {}, error: (o) => logged.push(o) } })
    await new Promise((r) => setImmediate(r))
    expect(logged).toHaveLength(1)
    expect(cache.stats().busHealthy).toBe(false)
  })
})

describe('warnings', () => {
  it('warns once, with a code, about L2 without a bus and without l1.ttl', () => {
    const warnings: unknown[] = []
    const logger: Logger = { debug() {}, info() {}, warn: (o) => warnings.push(o), error() {} }
    cacheFor({ l2: memoryStore(), logger })
    cacheFor({ l2: memoryStore(), logger, l1: { ttl: '10s' } })
    cacheFor({ l2: memoryStore(), logger, bus: memoryBus() })
    expect(warnings.filter((w) => typeof w === 'object' && w !== null && 'code' in w)).toEqual([
      { code: 'TIERCACHE_L1_UNBOUNDED', cache: 'tiercache' },
    ])
  })
})

describe('stats', () => {
  it('is an immutable snapshot with latency percentiles', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    await cache.getOrSet('a', () => 1)
    await cache.getOrSet('a', () => 1)
    const before = cache.stats()
    expect(Object.isFrozen(before)).toBe(true)
    expect(Object.isFrozen(before.total)).toBe(true)
    expect(before.total.hitRate).toBe(0.5)
    expect(before.latency.load.count).toBe(1)
    expect(before.latency.l2.count).toBeGreaterThan(0)
    expect(before.breaker).toEqual({ state: 'closed', transitions: 0 })
    await cache.getOrSet('a', () => 1)
    expect(before.total.l1Hits).toBe(1)
    expect(cache.stats().total.l1Hits).toBe(2)
  })

  it('feeds a stats sink', async () => {
    const seen: string[] = []
    const sink: StatsSink = { increment: (m, f) => seen.push(`${f}:${m}`), timing: (m, f) => seen.push(`${f}:${m}:timing`) }
    const cache = cacheFor({ stats: sink })
    await cache.getOrSet('a', () => 1)
    await cache.getOrSet('a', () => 1)
    expect(seen).toEqual(['default@1:misses', 'default@1:loaderCalls', 'default@1:load:timing', 'default@1:l1Hits'])
  })
})
