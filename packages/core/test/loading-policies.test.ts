import { describe, expect, it } from 'vitest'
import {
  type Clock,
  InvalidOptionsError,
  LoaderError,
  type MemoryStore,
  memoryBus,
  memoryBusNetwork,
  memoryStore,
  type TieredCache,
} from '../src/index.js'
import { cacheFor, chaos, deferred, fakeClock } from './helpers.js'

/** N caches ("processes") on one store and one bus network. */
function processes(n: number, clock: Clock, extra: Parameters<typeof cacheFor>[0] = {}) {
  const store = memoryStore({ clock })
  const network = memoryBusNetwork()
  const caches = Array.from({ length: n }, (_, i) =>
    cacheFor({ l2: store, bus: memoryBus({ network, instanceId: `p${i}` }), clock, jitter: 0, lease: { pollInterval: 2 }, ...extra }),
  )
  return { store, caches }
}

async function ready(...caches: TieredCache[]): Promise<void> {
  for (const cache of caches) await cache.ready()
}

/** Lets background work (a reload's L2 calls, its fill) run. */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** A loader that counts its calls and answers what `next` holds, or waits for a gate. */
function counted<T>(first: T) {
  let next: T = first
  let gate: Promise<void> | undefined
  const loader = {
    calls: 0,
    set next(value: T) {
      next = value
    },
    hold() {
      const d = deferred()
      gate = d.promise
      return () => {
        gate = undefined
        d.resolve()
      }
    },
    load: async (): Promise<T> => {
      loader.calls++
      const waiting = gate
      if (waiting !== undefined) await waiting
      return next
    },
  }
  return loader
}

describe('soft invalidation: expire()', () => {
  it('the next getOrSet serves the expired value at once while one reload runs, then the new value', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', jitter: 0 })
    const loader = counted('v1')
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    await cache.expire('k')
    loader.next = 'v2'
    const release = loader.hold()
    // The reload is held: these answers did not wait for it.
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    await settle()
    expect(loader.calls).toBe(2)
    release()
    await settle()
    expect(await cache.getOrSet('k', loader.load)).toBe('v2')
    expect(loader.calls).toBe(2)
    const stats = cache.stats().total
    expect(stats.refreshes).toBe(1)
    expect(stats.staleServed).toBe(2)
  })

  it('an expired entry without grace is served for the rest of its TTL, not after', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: 0, jitter: 0 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load)
    clock.advance(30_000)
    await cache.expire('k')
    clock.advance(31_000)
    loader.next = 'v2'
    // Past the entry's own end: a plain miss, which waits for the loader.
    expect(await cache.getOrSet('k', loader.load)).toBe('v2')
  })

  it('grace keeps an expired entry servable past its TTL', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: '1h', jitter: 0 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load)
    await cache.expire('k')
    clock.advance(10 * 60_000)
    loader.next = 'v2'
    const release = loader.hold()
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    release()
  })

  it('get does not wait on a reload running behind an expired entry', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', jitter: 0 })
    await cache.set('k', 'v1')
    await cache.expire('k')
    const gate = deferred<string>()
    expect(await cache.getOrSet('k', () => gate.promise)).toBe('v1')
    expect(await cache.get('k')).toBeUndefined()
    gate.resolve('v2')
  })

  it('get and peek take an expired entry for absent; L2 keeps it, marked', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const cache = cacheFor({ l2: store, clock, ttl: '1m', jitter: 0 })
    await cache.set('k', 'v1')
    await cache.expire('k')
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
    const raw = storedEntry(store, 'k')
    expect(raw?.value).toBe('v1')
    expect(raw?.expired).toBe(true)
    expect(raw?.expiresAt).toBeLessThanOrEqual(clock.now())
  })

  it('a failed reload keeps serving the expired value within its grace', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: '10m', jitter: 0 })
    await cache.getOrSet('k', () => 'v1')
    await cache.expire('k')
    let calls = 0
    const failing = () => {
      calls++
      throw new Error('database down')
    }
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    await settle()
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    await settle()
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(cache.stats().total.loaderErrors).toBe(calls)
  })

  it('a write after expire wins: the new value is fresh', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', jitter: 0 })
    await cache.set('k', 'v1')
    await cache.expire('k')
    await cache.set('k', 'v2')
    expect(cache.peek('k')).toBe('v2')
    expect(await cache.getOrSet('k', () => 'never')).toBe('v2')
  })

  it('on every process: the others serve their expired copy at once, and one reload runs for all', async () => {
    const clock = fakeClock()
    const { caches } = processes(3, clock, { ttl: '1m' })
    const [a, b, c] = caches as [TieredCache, TieredCache, TieredCache]
    await ready(a, b, c)
    const loader = counted('v1')
    for (const cache of caches) expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    expect(loader.calls).toBe(1)
    await a.expire('k')
    await settle()
    loader.next = 'v2'
    const release = loader.hold()
    const answers = await Promise.all(caches.map((cache) => cache.getOrSet('k', loader.load)))
    expect(answers).toEqual(['v1', 'v1', 'v1'])
    await settle()
    // The reload lands a moment later: a waiter tells the copy written since from the one it expired by its expiry time.
    clock.advance(1)
    release()
    // The processes that did not get the lease wait for its fill (polling), then take it.
    for (let i = 0; i < 200 && !(await Promise.all(caches.map((x) => x.peek('k')))).every((v) => v === 'v2'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    expect(caches.map((cache) => cache.peek('k'))).toEqual(['v2', 'v2', 'v2'])
    expect(loader.calls).toBe(2)
  })

  it('a process with no L1 copy reads the entry expired from L2 and serves it at once', async () => {
    const clock = fakeClock()
    const { caches } = processes(2, clock, { ttl: '1m' })
    const [a, b] = caches as [TieredCache, TieredCache]
    await ready(a, b)
    await a.set('k', 'v1')
    await a.expire('k')
    const loader = counted('v2')
    const release = loader.hold()
    expect(await b.getOrSet('k', loader.load)).toBe('v1')
    release()
    await settle()
    expect(await b.getOrSet('k', loader.load)).toBe('v2')
    expect(loader.calls).toBe(1)
  })

  it('family.expire(params) expires that key alone', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', jitter: 0 })
    const users = cache.family<number, string>({ name: 'user', key: (id) => String(id) })
    await users.set(1, 'one')
    await users.set(2, 'two')
    await users.expire(1)
    expect(users.peek(1)).toBeUndefined()
    expect(users.peek(2)).toBe('two')
    const loader = counted('ONE')
    const release = loader.hold()
    expect(await users.getOrSet(1, loader.load)).toBe('one')
    release()
    await settle()
    expect(users.peek(1)).toBe('ONE')
  })

  it('a reload started while the expiry is on its way to the store does not take the copy it expired for new', async () => {
    const clock = fakeClock()
    const slow = chaos(memoryStore({ clock }))
    const cache = cacheFor({ l2: slow.store, clock, ttl: '1m', jitter: 0, l2Timeout: '5s' })
    await cache.set('k', 'v1')
    slow.fail('expire', { delayMs: 30 })
    const expiring = cache.expire('k')
    // L1 is marked (the local half) while the store's copy is not yet.
    while (cache.peek('k') !== undefined) await new Promise((resolve) => setImmediate(resolve))
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v1')
    await expiring
    await settle(200)
    expect(cache.peek('k')).toBe('v2')
  })

  it('a store without expire deletes instead', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const { expire: _unused, ...withoutExpire } = store
    const cache = cacheFor({ l2: withoutExpire, clock, ttl: '1m', jitter: 0 })
    await cache.set('k', 'v1')
    await cache.expire('k')
    expect(store.size).toBe(0)
  })
})

describe('eager refresh', () => {
  it('a hit past the point answers at once and starts one background reload; the new value lives a whole TTL', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '10s', jitter: 0, eagerRefresh: 0.8 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load)
    clock.advance(7_000)
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    expect(loader.calls).toBe(1)
    clock.advance(1_500)
    loader.next = 'v2'
    const release = loader.hold()
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    await settle()
    expect(loader.calls).toBe(2)
    release()
    await settle()
    expect(cache.peek('k')).toBe('v2')
    // Past the first value's expiry: the refreshed one is still fresh.
    clock.advance(5_000)
    expect(cache.peek('k')).toBe('v2')
    expect(cache.stats().total.refreshes).toBe(1)
  })

  it('an L1 copy refilled from L2 (l1Ttl) refreshes at the same point of the value life', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '10s', l1Ttl: '1s', jitter: 0, eagerRefresh: 0.8 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load)
    loader.next = 'v2'
    for (let t = 0; t < 18; t++) {
      clock.advance(500)
      await cache.getOrSet('k', loader.load)
      await settle()
    }
    expect(loader.calls).toBe(2)
    clock.advance(2_000)
    expect(await cache.getOrSet('k', loader.load)).toBe('v2')
    expect(loader.calls).toBe(2)
  })

  it('off by default: a hit late in its life does not reload', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '10s', jitter: 0 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load)
    clock.advance(9_900)
    await cache.getOrSet('k', loader.load)
    await settle()
    expect(loader.calls).toBe(1)
  })

  it('once across the processes: the one holding the lease reloads, the others keep their copy, then read the new value from L2', async () => {
    const clock = fakeClock()
    const { caches } = processes(3, clock, { ttl: '10s', eagerRefresh: 0.8 })
    await ready(...caches)
    const loader = counted('v1')
    for (const cache of caches) await cache.getOrSet('k', loader.load)
    expect(loader.calls).toBe(1)
    clock.advance(8_500)
    loader.next = 'v2'
    const release = loader.hold()
    expect(await Promise.all(caches.map((cache) => cache.getOrSet('k', loader.load)))).toEqual(['v1', 'v1', 'v1'])
    await settle()
    release()
    await settle()
    expect(loader.calls).toBe(2)
    clock.advance(2_000)
    // Past the first value's expiry: every process reads the refreshed value from L2, no loader call.
    expect(await Promise.all(caches.map((cache) => cache.getOrSet('k', loader.load)))).toEqual(['v2', 'v2', 'v2'])
    expect(loader.calls).toBe(2)
  })

  it('a failed refresh keeps the current value until it expires, and its grace after', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '10s', grace: '1m', jitter: 0, eagerRefresh: 0.5 })
    await cache.getOrSet('k', () => 'v1')
    clock.advance(6_000)
    const failing = () => Promise.reject(new Error('database down'))
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    await settle()
    expect(cache.stats().total.loaderErrors).toBe(1)
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    clock.advance(10_000)
    // Expired now: the failing loader is answered with the grace copy.
    expect(await cache.getOrSet('k', failing)).toBe('v1')
  })

  it('per call and per family; a write is refreshed like a load', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '10s', jitter: 0 })
    const loader = counted('v1')
    await cache.getOrSet('k', loader.load, { eagerRefresh: 0.5 })
    clock.advance(6_000)
    await cache.getOrSet('k', loader.load)
    await settle()
    expect(loader.calls).toBe(2)
    const family = cache.family<string, string>({ name: 'f', key: (k) => k, eagerRefresh: 0.5 })
    const familyLoader = counted('w1')
    await family.set('a', 'written')
    clock.advance(6_000)
    expect(await family.getOrSet('a', familyLoader.load)).toBe('written')
    await settle()
    expect(familyLoader.calls).toBe(1)
    expect(family.peek('a')).toBe('w1')
  })

  it('bad values are refused naming the option', async () => {
    expect(() => cacheFor({ eagerRefresh: 1 })).toThrow(expect.objectContaining({ path: 'eagerRefresh' }))
    expect(() => cacheFor({ eagerRefresh: 0 })).toThrow(InvalidOptionsError)
    const cache = cacheFor()
    expect(() => cache.family({ name: 'f', key: (k: string) => k, eagerRefresh: 2 })).toThrow(expect.objectContaining({ path: 'family.eagerRefresh' }))
    await expect(cache.getOrSet('k', () => 1, { eagerRefresh: -1 })).rejects.toMatchObject({ path: 'options.eagerRefresh' })
    await expect(cache.set('k', 1, { eagerRefresh: 0.5 } as never)).rejects.toThrow(/only getOrSet takes eagerRefresh/)
  })
})

describe('adaptive TTL', () => {
  it('a key read often is loaded with a TTL towards max, one read rarely towards min', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, jitter: 0 })
    const family = cache.family<string, string>({ name: 'f', key: (k) => k, adaptiveTtl: { min: '1s', max: '100s' } })
    // A process up a while: a key's reads are judged over the time its count covers.
    clock.advance(1_000_000)
    const loader = counted('v')
    for (let i = 0; i < 40; i++) await family.getOrSet('hot', loader.load)
    // Reloaded now that it is known hot.
    await family.delete('hot')
    await family.getOrSet('hot', loader.load)
    await family.getOrSet('cold', loader.load)
    expect(loader.calls).toBe(3)
    clock.advance(20_000)
    expect(family.peek('hot')).toBe('v')
    expect(family.peek('cold')).toBeUndefined()
    clock.advance(81_000)
    expect(family.peek('hot')).toBeUndefined()
  })

  it('the TTL follows the reads per max over the time the counts cover: one per max earns max', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, jitter: 0 })
    const family = cache.family<string, string>({ name: 'f', key: (k) => k, adaptiveTtl: { min: '1s', max: '10s' } })
    const loader = counted('v')
    // 100 s covered: 10 reads are one per 10 s (max); 1 read is a tenth of that (1 s + 9 s × 0.1).
    clock.advance(100_000)
    for (let i = 0; i < 9; i++) await family.get('steady')
    await family.getOrSet('steady', loader.load)
    await family.getOrSet('rare', loader.load)
    clock.advance(1_800)
    expect(family.peek('rare')).toBe('v')
    clock.advance(200)
    expect(family.peek('rare')).toBeUndefined()
    expect(family.peek('steady')).toBe('v')
    clock.advance(8_000)
    expect(family.peek('steady')).toBeUndefined()
  })

  it('early on, with less than max covered, a key read once gets max', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, jitter: 0 })
    const family = cache.family<string, string>({ name: 'f', key: (k) => k, adaptiveTtl: { min: '1s', max: '10s' } })
    await family.getOrSet('k', () => 'v')
    clock.advance(9_999)
    expect(family.peek('k')).toBe('v')
    clock.advance(1)
    expect(family.peek('k')).toBeUndefined()
  })

  it('the loader s setTtl wins over the adaptive TTL', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, jitter: 0 })
    const family = cache.family<string, string>({ name: 'f', key: (k) => k, adaptiveTtl: { min: '1s', max: '2s' } })
    await family.getOrSet('k', (ctx) => {
      ctx.setTtl('1h')
      return 'v'
    })
    clock.advance(60_000)
    expect(family.peek('k')).toBe('v')
  })

  it('bad ranges are refused naming the field', () => {
    const cache = cacheFor()
    const define = (adaptiveTtl: unknown) => () => cache.family({ name: 'f', key: (k: string) => k, adaptiveTtl: adaptiveTtl as never })
    expect(define({ min: '10s', max: '1s' })).toThrow(expect.objectContaining({ path: 'family.adaptiveTtl.max' }))
    expect(define({ min: 0, max: '1s' })).toThrow(expect.objectContaining({ path: 'family.adaptiveTtl.min' }))
    expect(define({ min: 'soon', max: '1s' })).toThrow(expect.objectContaining({ path: 'family.adaptiveTtl.min' }))
    expect(define('1s')).toThrow(expect.objectContaining({ path: 'family.adaptiveTtl' }))
  })
})

describe('getOrSetMany', () => {
  it('L1 first, one L2 batch, one loader call for the rest in key order; answers in key order', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const a = cacheFor({ l2: store, clock })
    const b = cacheFor({ l2: store, clock })
    await a.set('in-l2', 'two')
    await b.set('in-l1', 'one')
    const asked: string[][] = []
    const values = await b.getOrSetMany(['in-l1', 'in-l2', 'x', 'y'], (missing) => {
      asked.push(missing)
      return missing.map((key) => `loaded ${key}`)
    })
    expect(values).toEqual(['one', 'two', 'loaded x', 'loaded y'])
    expect(asked).toEqual([['x', 'y']])
    const stats = b.stats().total
    expect(stats.loaderCalls).toBe(1)
    expect(stats.l1Hits).toBe(1)
    expect(stats.l2Hits).toBe(1)
    // Filled in L1 and L2.
    expect(b.peek('x')).toBe('loaded x')
    expect(await a.get('y')).toBe('loaded y')
  })

  it('takes a Map; a key it leaves out is not cached and reads undefined; a repeated key loads once', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    const asked: string[][] = []
    const values = await cache.getOrSetMany(['a', 'b', 'a'], (missing) => {
      asked.push(missing)
      return new Map([['a', 1]])
    })
    expect(values).toEqual([1, undefined, 1])
    expect(asked).toEqual([['a', 'b']])
    expect(cache.peek('b')).toBeUndefined()
  })

  it('joins a load under way, and single-key callers join the batch', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    const single = deferred<string>()
    const first = cache.getOrSet('a', () => single.promise)
    const batchGate = deferred()
    const asked: string[][] = []
    const many = cache.getOrSetMany(['a', 'b'], async (missing) => {
      asked.push(missing)
      await batchGate.promise
      return missing.map((key) => `batch ${key}`)
    })
    await settle()
    let singleCalls = 0
    const joiner = cache.getOrSet('b', () => {
      singleCalls++
      return 'single b'
    })
    single.resolve('single a')
    batchGate.resolve()
    expect(await many).toEqual(['single a', 'batch b'])
    expect(await first).toBe('single a')
    expect(await joiner).toBe('batch b')
    expect(asked).toEqual([['b']])
    expect(singleCalls).toBe(0)
  })

  it('a key whose lease another process holds waits for that fill instead of loading it', async () => {
    const store = memoryStore()
    const a = cacheFor({ l2: store, lease: { pollInterval: 2 } })
    const b = cacheFor({ l2: store, lease: { pollInterval: 2 } })
    const held = deferred<string>()
    const other = b.getOrSet('a', () => held.promise)
    await settle()
    const asked: string[][] = []
    const many = a.getOrSetMany(['a', 'b'], (missing) => {
      asked.push(missing)
      return missing.map((key) => `a ${key}`)
    })
    await settle()
    held.resolve('b a')
    expect(await many).toEqual(['b a', 'a b'])
    expect(await other).toBe('b a')
    expect(asked).toEqual([['b']])
  })

  it('without stampede protection, keys whose lease another process holds stay in the one batch', async () => {
    const store = memoryStore()
    const a = cacheFor({ l2: store })
    const b = cacheFor({ l2: store })
    const held = deferred<string>()
    const other = b.getOrSet('x', () => held.promise)
    await settle()
    const asked: string[][] = []
    const values = await a.getOrSetMany(['x', 'y'], (missing) => (asked.push(missing), missing), { stampedeProtection: false })
    expect(values).toEqual(['x', 'y'])
    expect(asked).toEqual([['x', 'y']])
    held.resolve('b x')
    await other
  })

  it('a key the batch loader left out loads on the next single-key call', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    expect(await cache.getOrSetMany(['a', 'b'], () => new Map([['a', 1]]))).toEqual([1, undefined])
    expect(await cache.getOrSet('b', () => 2)).toBe(2)
  })

  it('a failing batch serves stale copies within grace; a key without one fails the call', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1s', grace: '1h', jitter: 0 })
    await cache.set('old', 'kept')
    clock.advance(2_000)
    const failing = () => Promise.reject(new Error('database down'))
    expect(await cache.getOrSetMany(['old'], failing)).toEqual(['kept'])
    await expect(cache.getOrSetMany(['old', 'new'], failing)).rejects.toBeInstanceOf(LoaderError)
  })

  it('a loader answering the wrong shape fails naming it', async () => {
    const cache = cacheFor()
    const failed = await cache.getOrSetMany(['a', 'b'], () => ['only one']).catch((error: unknown) => error)
    expect(failed).toBeInstanceOf(LoaderError)
    expect(String((failed as Error).message)).toMatch(/expected an array of 2 values in key order, or a Map/)
    await expect(cache.getOrSetMany(['a'], 'nope' as never)).rejects.toMatchObject({ path: 'loader' })
  })

  it('family handles give the loader the missing params', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    const users = cache.family<{ id: number }, string>({ name: 'user', key: (p) => String(p.id) })
    await users.set({ id: 1 }, 'one')
    const asked: number[][] = []
    const values = await users.getOrSetMany([{ id: 1 }, { id: 2 }, { id: 3 }], (missing) => {
      asked.push(missing.map((p) => p.id))
      return missing.map((p) => `user ${p.id}`)
    })
    expect(values).toEqual(['one', 'user 2', 'user 3'])
    expect(asked).toEqual([[2, 3]])
    expect(users.peek({ id: 3 })).toBe('user 3')
  })
})

/** The stored entry of a default-family key, whatever its generation segment. */
function storedEntry(store: MemoryStore, id: string) {
  for (const generation of ['', '0']) {
    const entry = store.raw({ family: 'default@1', generation, id })
    if (entry !== undefined) return entry
  }
  return undefined
}
