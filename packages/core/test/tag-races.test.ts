import { describe, expect, it } from 'vitest'
import { memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type CacheEvents } from '../src/index.js'
import { cacheFor, chaos, deferred, fakeClock, flush, nextEvent } from './helpers.js'

const gated = <T,>() => { const g = deferred<T>(); const c = deferred(); let calls = 0; return { loader: () => { calls++; c.resolve(); return g.promise }, called: c.promise, resolve: g.resolve, reject: g.reject, get calls() { return calls } } }

// Exactness where a load, a grace copy or a failed store call meets an invalidation.
describe('tags: loads, grace copies and failures around an invalidation', () => {
  it('a caller after a background invalidation does not get the value of a load that began before it', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, l2Timeout: '10s' })
    const load = gated<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    c.fail('invalidateTags', { delayMs: 30 })
    await cache.invalidateTags(['a'], { background: true })
    let calls = 0
    const second = cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await second).toBe('new')
    expect(calls).toBe(1)
  })

  it('after a failed invalidateTags this process does not serve the entry from L2', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v1', { tags: ['a'] })
    c.fail('invalidateTags', 'error')
    await cache.invalidateTags(['a'])
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
  })

  it('after a failed invalidateTags getOrSet loads rather than serve the L2 copy', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v1', { tags: ['a'] })
    c.fail('invalidateTags', 'error')
    await cache.invalidateTags(['a'])
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, 'v2'), { tags: ['a'] })).toBe('v2')
    expect(calls).toBe(1)
  })

  it('a grace copy taken before the invalidation is not served when the loader fails after it', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: '1h', jitter: 0 })
    await cache.set('k', 'old', { tags: ['a'] })
    clock.advance(61_000)
    const load = gated<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    await cache.invalidateTags(['a'])
    load.reject(new Error('db down'))
    expect(await first.catch(() => 'rejected')).toBe('rejected')
  })

  it.each([
    ['with tags on the calls', { tags: ['a'] }],
    ['with no tags on the calls (the copy carries them)', undefined],
  ] as const)('a caller that joined after the invalidation does not get the voided grace copy, %s', async (_name, options) => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: '1h', jitter: 0 })
    await cache.set('k', 'old', { tags: ['a'] })
    clock.advance(61_000)
    const load = gated<string>()
    const first = cache.getOrSet('k', load.loader, options)
    await load.called
    await cache.invalidateTags(['a'])
    const second = cache.getOrSet('k', () => { throw new Error('db down 2') }, options)
    load.reject(new Error('db down'))
    await first.catch(() => {})
    expect(await second.catch(() => 'rejected')).toBe('rejected')
  })

  it('a soft timeout after the invalidation does not answer with the voided copy: the caller waits for the loader', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: '1h', jitter: 0 })
    await cache.set('k', 'old', { tags: ['a'] })
    clock.advance(61_000)
    const load = gated<string>()
    const p = cache.getOrSet('k', load.loader, { tags: ['a'], timeout: 5 })
    await load.called
    await cache.invalidateTags(['a'])
    // Past the soft timeout (real time), the copy no longer stands: nothing answered yet.
    let answered = false
    void p.then(() => (answered = true))
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(answered).toBe(false)
    load.resolve('new')
    expect(await p).toBe('new')
  })

  it('after a failed invalidateTags the other process, once it heard the clear, serves the entry from neither L1 nor L2 (the namespace bump lands at once while L2 answers)', async () => {
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const ca = chaos(memoryStore({ backend }))
    const busA = memoryBus({ network }), busB = memoryBus({ network })
    const a = cacheFor({ l2: ca.store, bus: busA, breaker: { volumeThreshold: 100 } })
    const b = cacheFor({ l2: memoryStore({ backend }), bus: busB })
    await a.set('k', 'v1', { tags: ['a'] })
    expect(await b.get('k')).toBe('v1')
    ca.fail('invalidateTags', 'error')
    const cleared = nextEvent<CacheEvents['bus:applied']>((l) => b.on('bus:applied', l), (e) => e.op === 'clear')
    await a.invalidateTags(['a'])
    await cleared
    await flush()
    expect(b.peek('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
  })

  it('a get after a background invalidation does not get the value of a load that began before it', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, l2Timeout: '10s' })
    const load = gated<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    c.fail('invalidateTags', { delayMs: 30 })
    await cache.invalidateTags(['a'], { background: true })
    const read = cache.get('k')
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await read).toBeUndefined()
  })

  it('a caller while an awaited invalidation is under way does not get the value of a load that began before it', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, l2Timeout: '10s' })
    const load = gated<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    c.fail('invalidateTags', { delayMs: 30 })
    const inv = cache.invalidateTags(['a'])
    const second = cache.getOrSet('k', () => 'new', { tags: ['a'] })
    load.resolve('old')
    await inv
    expect(await first).toBe('old')
    expect(await second).toBe('new')
  })
})
