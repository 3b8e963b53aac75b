import { type CacheEvents, memoryBackend, memoryBus, memoryBusNetwork, memoryStore } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { cacheFor, chaos, exported, nextEvent, registryFor, valueOf } from './helpers.js'

describe('l2_errors_total', () => {
  it('counts failed L2 calls by operation, as stats() does', async () => {
    const registry = registryFor()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store })
    exported(cache, { registry })
    expect(await valueOf(registry, 'tiercache_l2_errors_total', { operation: 'get' })).toBeUndefined()
    faulty.fail('get', 'error')
    expect(await cache.getOrSet('k', () => 'from the loader')).toBe('from the loader')
    const errors = cache.stats().l2ErrorsByOperation
    expect(errors.get).toBeGreaterThanOrEqual(1)
    for (const [operation, count] of Object.entries(errors)) {
      expect(await valueOf(registry, 'tiercache_l2_errors_total', { cache: 'orders', operation })).toBe(count)
    }
  })
})

describe('breaker_state and recovery_queue_depth', () => {
  const breaker = { volumeThreshold: 2, errorThresholdPercentage: 50, rollingCountTimeout: '10s' }

  it('turns 2 once the breaker opens; the recovery queue shows its depth', async () => {
    const registry = registryFor()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store, breaker: { ...breaker, resetTimeout: '1m' } }) // stays open for the test
    exported(cache, { registry })
    expect(await valueOf(registry, 'tiercache_breaker_state', { cache: 'orders' })).toBe(0)
    expect(await valueOf(registry, 'tiercache_recovery_queue_depth', { cache: 'orders' })).toBe(0)
    const open = nextEvent<CacheEvents['breaker']>((l) => cache.on('breaker', l), (e) => e.state === 'open')
    faulty.fail('*', 'error')
    for (let i = 0; i < 3; i++) await cache.getOrSet(`miss${i}`, () => i)
    await open
    await cache.delete('k') // queued for L2 while the breaker is open
    expect(cache.stats().breaker.state).toBe('open')
    expect(await valueOf(registry, 'tiercache_breaker_state', { cache: 'orders' })).toBe(2)
    const depth = cache.stats().recoveryQueueDepth
    expect(depth).toBeGreaterThanOrEqual(1)
    expect(await valueOf(registry, 'tiercache_recovery_queue_depth', { cache: 'orders' })).toBe(depth)
  })

  it('turns 1 while half-open, 0 once the breaker closed again', async () => {
    const registry = registryFor()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store, breaker: { ...breaker, resetTimeout: 30 } })
    exported(cache, { registry })
    // Listening before the breaker opens: half-open follows 30 ms after.
    const open = nextEvent<CacheEvents['breaker']>((l) => cache.on('breaker', l), (e) => e.state === 'open')
    const halfOpen = nextEvent<CacheEvents['breaker']>((l) => cache.on('breaker', l), (e) => e.state === 'half-open')
    faulty.fail('*', 'error')
    for (let i = 0; i < 3; i++) await cache.getOrSet(`miss${i}`, () => i)
    await open
    faulty.heal()
    await halfOpen
    // Read in the same step as the gauge: nothing else probes L2 meanwhile.
    const state = cache.stats().breaker.state
    const gauge = valueOf(registry, 'tiercache_breaker_state', { cache: 'orders' })
    expect(state).toBe('half-open')
    expect(await gauge).toBe(1)
    await cache.get('probe')
    await expect.poll(() => cache.stats().breaker.state).toBe('closed')
    expect(await valueOf(registry, 'tiercache_breaker_state', { cache: 'orders' })).toBe(0)
  })
})

describe('bus_messages_total and bus_healthy', () => {
  it('counts the messages a cache sent (out) and the ones it applied (in)', async () => {
    const registry = registryFor()
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const busA = memoryBus({ network, instanceId: 'a' })
    const busB = memoryBus({ network, instanceId: 'b' })
    const a = cacheFor({ name: 'a', l2: memoryStore({ backend, namespace: 'n' }), bus: busA })
    const b = cacheFor({ name: 'b', l2: memoryStore({ backend, namespace: 'n' }), bus: busB })
    exported(a, { registry })
    exported(b, { registry })
    while (!busA.healthy || !busB.healthy) await new Promise((resolve) => setImmediate(resolve))
    await a.set('k', 1)
    await a.delete('k')
    await expect.poll(() => b.stats().busMessagesApplied).toBeGreaterThanOrEqual(1)

    const bus = (cache: string, direction: string) => valueOf(registry, 'tiercache_bus_messages_total', { cache, direction })
    const sent = a.stats().busMessagesSent
    expect(sent).toBeGreaterThanOrEqual(1)
    expect(await bus('a', 'out')).toBe(sent)
    expect(await bus('b', 'in')).toBe(b.stats().busMessagesApplied)
    expect(await bus('a', 'in')).toBe(0)
    expect(await bus('b', 'out')).toBe(0)
    expect(await valueOf(registry, 'tiercache_bus_healthy', { cache: 'a' })).toBe(1)
    expect(await valueOf(registry, 'tiercache_bus_healthy', { cache: 'b' })).toBe(1)

    busB.setHealthy(false)
    await expect.poll(() => b.stats().busHealthy).toBe(false)
    expect(await valueOf(registry, 'tiercache_bus_healthy', { cache: 'b' })).toBe(0)
    expect(await valueOf(registry, 'tiercache_bus_healthy', { cache: 'a' })).toBe(1)
  })
})
