import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type CacheEvents, memoryStore, SerializationError, ValueTooLargeError } from '../src/index.js'
import { cacheFor, chaos, fakeClock, nextEvent } from './helpers.js'

const breaker = { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout: 30, rollingCountTimeout: '10s' }

describe('L2 read path', () => {
  it('fills L1 from an L2 hit with the remaining TTL', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const writer = cacheFor({ clock, l2: store, ttl: '1m', jitter: 0 })
    await writer.set('k', { v: 1 })
    clock.advance(50_000)
    const reader = cacheFor({ clock, l2: store })
    let calls = 0
    expect(await reader.getOrSet('k', () => (calls++, { v: 2 }))).toEqual({ v: 1 })
    expect(calls).toBe(0)
    expect(reader.stats().total.l2Hits).toBe(1)
    clock.advance(9_999)
    expect(reader.peek('k')).toEqual({ v: 1 })
    clock.advance(1)
    expect(reader.peek('k')).toBeUndefined()
  })

  it('writes L2 in the background after a load (the caller does not wait for it)', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, l2Timeout: 0 })
    c.fail('fillWithLease', { delayMs: 30 })
    expect(await cache.getOrSet('k', () => 'v')).toBe('v')
    expect((c.store as ReturnType<typeof memoryStore>).size).toBe(0)
    await new Promise((r) => setTimeout(r, 60))
    expect((c.store as ReturnType<typeof memoryStore>).size).toBe(1)
  })

  it('never lets an L2 failure reach a reader while the loader answers, and counts it', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, breaker })
    const errors: CacheEvents['l2-error'][] = []
    cache.on('l2-error', (e) => errors.push(e))
    c.fail('*', 'error')
    expect(await cache.getOrSet('a', () => 'A')).toBe('A')
    expect(await cache.get('b')).toBeUndefined()
    expect(cache.stats().total.l2Errors).toBeGreaterThan(0)
    expect(errors.length).toBeGreaterThan(0)
  })

  it('times out a hanging L2 call and goes to the loader', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, l2Timeout: 20, breaker: { volumeThreshold: 100 } })
    c.fail('get', 'hang')
    const event = nextEvent<CacheEvents['l2-error']>((l) => cache.on('l2-error', l))
    expect(await cache.getOrSet('k', () => 'loaded')).toBe('loaded')
    expect(((await event).error as { code: string }).code).toBe('E_L2_TIMEOUT')
    c.releaseHung()
  })

  it('treats a value failing the family schema as a miss, deletes it and counts it', async () => {
    const store = memoryStore()
    const old = cacheFor({ l2: store })
    await old.family({ name: 'task', key: (id: string) => id }).set('1', { status: 42 })
    const cache = cacheFor({ l2: store })
    const tasks = cache.family({ name: 'task', key: (id: string) => id, schema: z.object({ status: z.string() }) })
    expect(await tasks.getOrSet('1', () => ({ status: 'running' }))).toEqual({ status: 'running' })
    expect(cache.stats().families['task@1']?.schemaFailures).toBe(1)
    expect(store.raw({ family: 'task@1', generation: '', id: '1' })?.value).toEqual({ status: 'running' })
  })
})

describe('circuit breaker and recovery queue', () => {
  it('opens after the volume threshold; reads skip L2, sets are dropped, deletes are queued and replayed on close', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const cache = cacheFor({ l2: c.store, breaker })
    await cache.set('stale-in-l2', 'old')
    c.fail('*', 'error')
    const opened = nextEvent<CacheEvents['breaker']>((l) => cache.on('breaker', l), (e) => e.state === 'open')
    for (let i = 0; i < 3; i++) await cache.getOrSet(`miss${i}`, () => i)
    await opened
    expect(cache.stats().breaker.state).toBe('open')
    const callsWhileOpen = { ...c.calls }
    expect(await cache.getOrSet('x', () => 'loaded')).toBe('loaded')
    await cache.set('y', 'not in L2')
    await cache.delete('stale-in-l2')
    expect(c.calls.get).toBe(callsWhileOpen.get)
    expect(c.calls.set).toBe(callsWhileOpen.set)
    expect(cache.stats().recoveryQueueDepth).toBeGreaterThanOrEqual(1)
    c.heal()
    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => cache.on('recovery-replayed', l))
    // Half-open after resetTimeout: the next L2 call is the probe.
    await nextEvent<CacheEvents['breaker']>((l) => cache.on('breaker', l), (e) => e.state === 'half-open')
    await cache.get('probe')
    await replayed
    expect(cache.stats().breaker.state).toBe('closed')
    expect(cache.stats().recoveryQueueDepth).toBe(0)
    expect(store.raw({ family: 'default@1', generation: '', id: 'stale-in-l2' })).toBeUndefined()
    expect(store.raw({ family: 'default@1', generation: '', id: 'y' })).toBeUndefined()
  })

  it('does not count errors about the caller\'s data (too large, not serializable) as L2 failures', async () => {
    const inner = memoryStore()
    const refusing = {
      ...inner,
      set: (key: Parameters<typeof inner.set>[0], entry: Parameters<typeof inner.set>[1]) =>
        key.id.startsWith('huge')
          ? Promise.reject(new ValueTooLargeError(10_000_000, 8_388_608))
          : key.id.startsWith('cyclic')
            ? Promise.reject(new SerializationError('cannot encode the value'))
            : inner.set(key, entry),
    }
    const c = chaos(refusing)
    const cache = cacheFor({ l2: c.store, breaker })
    const errors: unknown[] = []
    cache.on('l2-error', (e) => errors.push(e.error))
    for (let i = 0; i < 6; i++) {
      await cache.set(`huge${i}`, 'x')
      await cache.set(`cyclic${i}`, 'x')
    }
    expect(errors).toHaveLength(12)
    expect(cache.stats().breaker).toEqual({ state: 'closed', transitions: 0 })
    await cache.set('small', 'fits')
    const reads = c.calls.get ?? 0
    expect(await cacheFor({ l2: c.store }).get('small')).toBe('fits')
    expect(await cache.get('not-cached')).toBeUndefined()
    expect(c.calls.get).toBe(reads + 2)
  })

  it('a failed L2 set queues a delete of the key (the old L2 value is wrong now)', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v1')
    c.fail('set', 'error')
    await cache.set('k', 'v2')
    expect(cache.stats().recoveryQueueDepth).toBe(1)
    c.heal()
    await cache.set('other', 1)
    await new Promise((r) => setImmediate(r))
    expect(cache.stats().recoveryQueueDepth).toBe(0)
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toBeUndefined()
  })

  it('replays queued deletes after the next successful L2 read too', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v1')
    c.fail('delete', 'error')
    await cache.delete('k')
    expect(cache.stats().recoveryQueueDepth).toBe(1)
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('v1')
    c.heal()
    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => cache.on('recovery-replayed', l))
    await cache.get('other')
    expect(await replayed).toEqual({ keys: 1, generationBumped: false })
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toBeUndefined()
  })

  it('on overflow bumps the namespace generation on recovery, making every old entry unreachable', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, breaker, recoveryQueue: { maxSize: 2 } })
    await cache.set('survivor', 'old')
    c.fail('*', 'error')
    await cache.delete(['a', 'b', 'c'])
    expect(cache.stats().recoveryQueueDepth).toBe(1)
    c.heal()
    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => cache.on('recovery-replayed', l))
    await cache.set('trigger', 1)
    expect(await replayed).toEqual({ keys: 0, generationBumped: true })
    expect(await (c.store as ReturnType<typeof memoryStore>).getGenerations([''])).toEqual([1])
    const fresh = cacheFor({ l2: c.store })
    expect(await fresh.get('survivor')).toBeUndefined()
    expect(await fresh.getOrSet('survivor', () => 'reloaded')).toBe('reloaded')
  })

  it('leaves no unhandled rejection when background L2 writes fail', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const c = chaos(memoryStore())
      const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
      await cache.get('warm')
      c.fail('fillWithLease', 'error')
      c.fail('set', 'error')
      for (let i = 0; i < 5; i++) await cache.getOrSet(`k${i}`, () => i)
      await new Promise((r) => setTimeout(r, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('passes deleteByPattern and l2Info through the guard', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store })
    await cache.setMany([
      { key: 'a1', value: 1 },
      { key: 'a2', value: 2 },
      { key: 'b1', value: 3 },
    ])
    expect((await cache.l2Info())?.keysByFamily).toEqual({ 'default@1': 3 })
    expect(await cache.l2Info({ keys: false })).toEqual({ keysByFamily: {}, connection: 'ready' })
    await expect(cache.l2Info({ keys: 'no' as unknown as boolean })).rejects.toThrow(/l2Info\.keys.*boolean/)
    await expect(cache.l2Info(null as unknown as { keys: boolean })).rejects.toThrow(/l2Info.*options object/)
    expect(await cache.deleteByPattern('default@1:{a*}')).toBe(2)
    expect(store.size).toBe(1)
    const l1Only = cacheFor()
    expect(await l1Only.l2Info()).toBeUndefined()
    expect(await l1Only.deleteByPattern('*')).toBe(0)
  })
})

describe('getMany / setMany', () => {
  it('reads L1 then one L2 batch, in order', async () => {
    const store = memoryStore()
    const a = cacheFor({ l2: store })
    await a.setMany([
      { key: 'x', value: 1 },
      { key: 'y', value: 2 },
    ])
    const c = chaos(store)
    const b = cacheFor({ l2: c.store })
    await b.set('z', 3)
    expect(await b.getMany(['x', 'missing', 'z', 'y'])).toEqual([1, undefined, 3, 2])
    expect(c.calls.getMany).toBe(1)
    expect(b.peek('x')).toBe(1)
  })
})

