import { describe, expect, it, vi } from 'vitest'
import {
  type CacheEvents,
  type Clock,
  createTieredCache,
  InvalidOptionsError,
  LoaderError,
  type LoaderContext,
  memoryBackend,
  memoryBus,
  memoryBusNetwork,
  memoryStore,
  type RemoteStore,
  type StoreKey,
  type TieredCache,
  type TieredCacheOptions,
} from '../src/index.js'
import { cacheFor, chaos, deferred, fakeClock, flush, nextEvent } from './helpers.js'

/** The store key of a plain key (the default family, namespace generation 0). */
const storeKey = (id: string): StoreKey => ({ family: 'default@1', generation: '', id })

/**
 * N caches ("processes") on one memory backend and one bus network, each with its own memory
 * store (wrapped in `chaos`, to count and fail its calls) and its own bus.
 */
function processes(n: number, options: { clock?: Clock; cache?: TieredCacheOptions } = {}) {
  const backend = memoryBackend()
  const network = memoryBusNetwork()
  const nodes = Array.from({ length: n }, (_, i) => {
    const c = chaos(memoryStore({ backend, clock: options.clock }))
    const bus = memoryBus({ network, instanceId: `p${i}` })
    const cache = cacheFor({ l2: c.store, bus, clock: options.clock, jitter: 0, lease: { pollInterval: 5 }, ...options.cache })
    return { cache, bus, chaos: c, store: c.store }
  })
  return { backend, network, nodes, raw: memoryStore({ backend, clock: options.clock }) }
}

/** A process on `backend` that has heard nothing (no bus): its L1 never had anything. */
function freshProcess(backend: ReturnType<typeof memoryBackend>, clock?: Clock, options: TieredCacheOptions = {}) {
  const c = chaos(memoryStore({ backend, clock }))
  return { cache: cacheFor({ l2: c.store, clock, jitter: 0, lease: { pollInterval: 5 }, ...options }), chaos: c }
}

/** Moves the store's tag sequence on and gives `tags` the new version. */
async function versionsAfter(store: RemoteStore, tags: readonly string[]): Promise<number> {
  if (store.invalidateTags === undefined) throw new Error('the store cannot invalidate tags')
  return store.invalidateTags(tags)
}

/** The store's versions of `tags`. */
async function versionsOf(store: RemoteStore, tags: readonly string[]): Promise<readonly number[]> {
  if (store.getTagVersions === undefined) throw new Error('the store cannot read tags')
  return (await store.getTagVersions(tags)).versions
}

const applied = (cache: TieredCache, op: CacheEvents['bus:applied']['op']) =>
  nextEvent<CacheEvents['bus:applied']>((l) => cache.on('bus:applied', l), (e) => e.op === op)

async function started(...buses: { healthy: boolean }[]) {
  while (!buses.every((b) => b.healthy)) await flush()
}

/** A loader that answers when told; `called` settles once it ran. */
function gatedLoader<T>() {
  const gate = deferred<T>()
  const called = deferred()
  let calls = 0
  return {
    loader: () => {
      calls++
      called.resolve()
      return gate.promise
    },
    called: called.promise,
    resolve: gate.resolve,
    get calls() {
      return calls
    },
  }
}

interface Task {
  readonly hosts: readonly string[]
  readonly name: string
}

const taskFamily = { name: 'task', key: (id: number) => `${id}`, tags: (_id: number, task: Task) => task.hosts }

describe('tags: one process', () => {
  it('invalidateTags drops the tagged entry from L1 and L2: get and peek miss, getOrSet loads again', async () => {
    const { nodes, raw } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('k', 'v1', { tags: ['a'] })
    expect(cache.peek('k')).toBe('v1')
    await cache.invalidateTags(['a'])
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
    // The L2 copy is still there (no key is touched), it is just never served.
    expect(raw.raw(storeKey('k'))?.value).toBe('v1')
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, 'v2'), { tags: ['a'] })).toBe('v2')
    expect(calls).toBe(1)
    expect(cache.peek('k')).toBe('v2')
  })

  it('drops exactly the entries with an invalidated tag: other tags and untagged entries stand', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('a', 'A', { tags: ['a'] })
    await cache.set('ab', 'AB', { tags: ['b', 'a'] })
    await cache.set('b', 'B', { tags: ['b'] })
    await cache.set('plain', 'P')
    await cache.invalidateTags(['a'])
    expect(cache.peek('a')).toBeUndefined()
    expect(cache.peek('ab')).toBeUndefined()
    expect(cache.peek('b')).toBe('B')
    expect(cache.peek('plain')).toBe('P')
    expect(await cache.get('b')).toBe('B')
    expect(await cache.get('plain')).toBe('P')
    let calls = 0
    expect(await cache.getOrSet('b', () => (calls++, 'B2'), { tags: ['b'] })).toBe('B')
    expect(calls).toBe(0)
  })

  it('an entry tagged after the invalidation stands, from L1 and from L2', async () => {
    const { nodes, backend } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('old', 'o', { tags: ['a'] })
    await cache.invalidateTags(['a'])
    await cache.set('new', 'n', { tags: ['a'] })
    expect(await cache.getOrSet('loaded', () => 'l', { tags: ['a'] })).toBe('l')
    expect(cache.peek('new')).toBe('n')
    expect(cache.peek('loaded')).toBe('l')
    expect(cache.peek('old')).toBeUndefined()
    // A process that never saw them reads the same from L2.
    const other = freshProcess(backend).cache
    expect(await other.get('new')).toBe('n')
    expect(await other.get('loaded')).toBe('l')
    expect(await other.get('old')).toBeUndefined()
  })

  it('a second invalidation of the same tag drops what was tagged between the two', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.invalidateTags(['a'])
    await cache.set('k', 'between', { tags: ['a'] })
    expect(cache.peek('k')).toBe('between')
    await cache.invalidateTags(['a'])
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
  })

  it('getMany misses the invalidated entries, in L1 and when read from L2 in one batch', async () => {
    const { nodes, backend } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.setMany([
      { key: 'k1', value: 1, options: { tags: ['a'] } },
      { key: 'k2', value: 2, options: { tags: ['b'] } },
      { key: 'k3', value: 3 },
      { key: 'k4', value: 4, options: { tags: ['b', 'a'] } },
    ])
    await cache.invalidateTags(['a'])
    expect(await cache.getMany(['k1', 'k2', 'k3', 'k4'])).toEqual([undefined, 2, 3, undefined])
    // A process that has heard nothing reads the tags it cannot tell, once for the batch.
    const other = freshProcess(backend)
    expect(await other.cache.getMany(['k1', 'k2', 'k3', 'k4'])).toEqual([undefined, 2, 3, undefined])
    expect(other.chaos.calls.getMany).toBe(1)
    expect(other.chaos.calls.getTagVersions).toBe(1)
    // The survivors are in its L1 now; the others are not.
    expect(other.cache.peek('k2')).toBe(2)
    expect(other.cache.peek('k1')).toBeUndefined()
  })

  it('a family tags entries by value: invalidating one host drops exactly the entries whose value lists it', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const tasks = cache.family<number, Task>(taskFamily)
    await tasks.set(1, { hosts: ['h1', 'h2'], name: 'one' })
    await tasks.set(2, { hosts: ['h2'], name: 'two' })
    await tasks.set(3, { hosts: ['h3'], name: 'three' })
    expect(await tasks.getOrSet(4, () => ({ hosts: ['h1'], name: 'four' }))).toEqual({ hosts: ['h1'], name: 'four' })
    expect(await tasks.getOrSet(5, () => ({ hosts: ['h3'], name: 'five' }))).toEqual({ hosts: ['h3'], name: 'five' })
    await cache.invalidateTags(['h1'])
    expect(tasks.peek(1)).toBeUndefined()
    expect(tasks.peek(4)).toBeUndefined()
    expect(await tasks.get(1)).toBeUndefined()
    expect(await tasks.get(4)).toBeUndefined()
    expect(await tasks.get(2)).toEqual({ hosts: ['h2'], name: 'two' })
    expect(await tasks.get(3)).toEqual({ hosts: ['h3'], name: 'three' })
    expect(await tasks.get(5)).toEqual({ hosts: ['h3'], name: 'five' })
    expect(await tasks.getMany([1, 2, 3, 4, 5])).toEqual([undefined, { hosts: ['h2'], name: 'two' }, { hosts: ['h3'], name: 'three' }, undefined, { hosts: ['h3'], name: 'five' }])
  })

  it('a family handle takes tags per call too, next to those of its tags()', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const tasks = cache.family<number, Task>(taskFamily)
    const plain = cache.family<number, string>({ name: 'plain', key: (id) => `${id}` })
    await tasks.set(1, { hosts: ['h1'], name: 'one' }, { tags: ['tenant:t1'] })
    expect(await tasks.getOrSet(2, () => ({ hosts: ['h2'], name: 'two' }), { tags: ['tenant:t1'] })).toEqual({ hosts: ['h2'], name: 'two' })
    await plain.set(1, 'p1', { tags: ['tenant:t1'] })
    expect(await plain.getOrSet(2, () => 'p2', { tags: ['tenant:t2'] })).toBe('p2')
    await tasks.setMany([{ params: 3, value: { hosts: ['h3'], name: 'three' }, options: { tags: ['tenant:t2'] } }])
    await cache.invalidateTags(['tenant:t1'])
    expect(await tasks.get(1)).toBeUndefined()
    expect(await tasks.get(2)).toBeUndefined()
    expect(await plain.get(1)).toBeUndefined()
    expect(await plain.get(2)).toBe('p2')
    expect(await tasks.get(3)).toEqual({ hosts: ['h3'], name: 'three' })
    // The family's own tag still reaches the entry that also carries a call's tag.
    await cache.invalidateTags(['h3'])
    expect(await tasks.get(3)).toBeUndefined()
  })

  it('invalidating several tags at once drops the entries of each, in one store call', async () => {
    const { nodes } = processes(1)
    const { cache, bus, chaos: c } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('x', 1, { tags: ['x'] })
    await cache.set('y', 2, { tags: ['y'] })
    await cache.set('z', 3, { tags: ['z'] })
    await cache.invalidateTags(['x', 'y', 'x'])
    expect(c.calls.invalidateTags).toBe(1)
    expect(cache.peek('x')).toBeUndefined()
    expect(cache.peek('y')).toBeUndefined()
    expect(cache.peek('z')).toBe(3)
  })

  it('invalidateTags([]) resolves without a store call or a message', async () => {
    const { nodes } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('k', 1, { tags: ['a'] })
    await a.cache.invalidateTags([])
    expect(a.chaos.calls.invalidateTags ?? 0).toBe(0)
    expect(a.bus.published.filter((m) => m.op === 'tags')).toHaveLength(0)
    expect(a.cache.peek('k')).toBe(1)
  })
})

describe('tags: across processes', () => {
  it('an invalidation on one process drops the entry from the other\'s L1 and L2 once it applied the message', async () => {
    const { nodes, raw } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('k', 'v1', { tags: ['a'] })
    expect(await b.cache.get('k')).toBe('v1')
    expect(b.cache.peek('k')).toBe('v1')
    const heard = applied(b.cache, 'tags')
    await a.cache.invalidateTags(['a'])
    expect(await heard).toMatchObject({ source: 'p0', op: 'tags' })
    expect(b.cache.peek('k')).toBeUndefined()
    expect(await b.cache.get('k')).toBeUndefined()
    expect(raw.raw(storeKey('k'))?.value).toBe('v1')
    let calls = 0
    expect(await b.cache.getOrSet('k', () => (calls++, 'v2'), { tags: ['a'] })).toBe('v2')
    expect(calls).toBe(1)
    // A's L1 follows the value B loaded after the invalidation through L2.
    expect(await a.cache.get('k')).toBe('v2')
  })

  it('until the message arrives the other process still serves its L1 copy (the bound is the bus delivery)', async () => {
    const { nodes, network } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('k', 'v1', { tags: ['a'] })
    expect(await b.cache.get('k')).toBe('v1')
    network.hold()
    await a.cache.invalidateTags(['a'])
    expect(a.cache.peek('k')).toBeUndefined()
    expect(b.cache.peek('k')).toBe('v1')
    const heard = applied(b.cache, 'tags')
    network.release()
    await heard
    expect(b.cache.peek('k')).toBeUndefined()
  })

  it('a process that heard nothing reads the tag versions before serving an L2 entry', async () => {
    const { nodes, backend } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('gone', 1, { tags: ['a'] })
    await cache.set('kept', 2, { tags: ['b'] })
    await cache.invalidateTags(['a'])
    const late = freshProcess(backend)
    expect(await late.cache.get('gone')).toBeUndefined()
    expect(await late.cache.get('kept')).toBe(2)
    expect(late.chaos.calls.getTagVersions).toBe(2)
    // Known now: an L1 hit costs no store call.
    expect(late.cache.peek('kept')).toBe(2)
    expect(await late.cache.get('kept')).toBe(2)
    expect(late.chaos.calls.getTagVersions).toBe(2)
  })

  it('a value-dependent family tag invalidated elsewhere drops the entries listing it on every process', async () => {
    const { nodes } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    const tasksA = a.cache.family<number, Task>(taskFamily)
    const tasksB = b.cache.family<number, Task>(taskFamily)
    await tasksA.set(1, { hosts: ['h1'], name: 'one' })
    await tasksA.set(2, { hosts: ['h2'], name: 'two' })
    expect(await tasksB.get(1)).toEqual({ hosts: ['h1'], name: 'one' })
    expect(await tasksB.get(2)).toEqual({ hosts: ['h2'], name: 'two' })
    const heard = applied(b.cache, 'tags')
    await a.cache.invalidateTags(['h1'])
    await heard
    expect(tasksB.peek(1)).toBeUndefined()
    expect(await tasksB.get(1)).toBeUndefined()
    expect(tasksB.peek(2)).toEqual({ hosts: ['h2'], name: 'two' })
  })
})

describe('tags: grace copies', () => {
  it('an invalidated entry\'s L1 grace copy is not served when the loader fails; another tag\'s and an untagged one\'s are', async () => {
    const clock = fakeClock()
    const { nodes } = processes(1, { clock, cache: { ttl: '1m', grace: '1h' } })
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    await cache.set('a', 'old a', { tags: ['a'] })
    await cache.set('b', 'old b', { tags: ['b'] })
    await cache.set('plain', 'old plain')
    await cache.invalidateTags(['a'])
    clock.advance(61_000)
    const seen: unknown[] = []
    const failing = (ctx: LoaderContext<string>): string => {
      seen.push(ctx.staleValue)
      throw new Error('db down')
    }
    const error = await cache.getOrSet('a', failing).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LoaderError)
    expect((error as LoaderError).key).toBe('a')
    expect(await cache.getOrSet('b', failing)).toBe('old b')
    expect(await cache.getOrSet('plain', failing)).toBe('old plain')
    // The loader of the invalidated entry was not even offered the stale value.
    expect(seen).toEqual([undefined, 'old b', 'old plain'])
    expect(cache.stats().total.staleServed).toBe(2)
  })

  it('an invalidated entry\'s L2 stale copy is not served either, to a process that heard the message or one that heard nothing', async () => {
    const clock = fakeClock()
    // Without stampede protection: a failed load keeps its lease, which the next process would wait out.
    const { nodes, backend } = processes(2, { clock, cache: { ttl: '1m', grace: '1h', stampedeProtection: false } })
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('a', 'old a', { tags: ['a'] })
    await a.cache.set('b', 'old b', { tags: ['b'] })
    await a.cache.set('plain', 'old plain')
    const heard = applied(b.cache, 'tags')
    await a.cache.invalidateTags(['a'])
    await heard
    clock.advance(61_000)
    const late = freshProcess(backend, clock, { ttl: '1m', grace: '1h', stampedeProtection: false })
    const failing = (): string => {
      throw new Error('db down')
    }
    for (const other of [b.cache, late.cache]) {
      // Neither L1 ever had the entries: the stale copies come from L2.
      expect(other.peek('b')).toBeUndefined()
      await expect(other.getOrSet('a', failing)).rejects.toBeInstanceOf(LoaderError)
      expect(await other.getOrSet('b', failing)).toBe('old b')
      expect(await other.getOrSet('plain', failing)).toBe('old plain')
    }
    expect(late.chaos.calls.getTagVersions ?? 0).toBeGreaterThan(0)
  })
})

describe('tags: loads in flight', () => {
  it('a load that began before a local invalidation answers its caller but lands neither in L1 nor in L2', async () => {
    const { nodes, backend, raw } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const load = gatedLoader<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    await cache.invalidateTags(['a'])
    load.resolve('old')
    expect(await first).toBe('old')
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
    // The lease it held is given up (the key deleted): another process loads at once, not after waiting.
    await vi.waitFor(() => expect(backend.leases.size).toBe(0))
    expect(raw.raw(storeKey('k'))).toBeUndefined()
    const other = freshProcess(backend)
    expect(await other.cache.get('k')).toBeUndefined()
    expect(await other.cache.getOrSet('k', () => 'other', { tags: ['a'] })).toBe('other')
    expect(other.cache.stats().total.leaseWaits).toBe(0)
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, 'again'), { tags: ['a'] })).toBe('other')
    expect(calls).toBe(0)
  })

  it('after a local invalidation the next getOrSet loads again rather than use the old load\'s value', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const load = gatedLoader<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    await cache.invalidateTags(['a'])
    load.resolve('old')
    expect(await first).toBe('old')
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })).toBe('new')
    expect(calls).toBe(1)
    expect(cache.peek('k')).toBe('new')
  })

  it('a load that began before an invalidation heard from another process does not land', async () => {
    const { nodes, raw } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    const load = gatedLoader<string>()
    const first = a.cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    const heard = applied(a.cache, 'tags')
    await b.cache.invalidateTags(['a'])
    await heard
    load.resolve('old')
    expect(await first).toBe('old')
    expect(a.cache.peek('k')).toBeUndefined()
    expect(await a.cache.get('k')).toBeUndefined()
    await vi.waitFor(() => expect(raw.backend.leases.size).toBe(0))
    expect(raw.raw(storeKey('k'))).toBeUndefined()
    expect(await b.cache.get('k')).toBeUndefined()
    let calls = 0
    expect(await a.cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })).toBe('new')
    expect(calls).toBe(1)
  })

  it('a caller after the invalidation does not join the old load: it loads again (getOrSet and get)', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const load = gatedLoader<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    await cache.invalidateTags(['a'])
    let calls = 0
    const second = cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })
    const read = cache.get('k')
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await second).toBe('new')
    expect(calls).toBe(1)
    expect(await read).not.toBe('old')
    expect(cache.peek('k')).toBe('new')
  })

  it('a caller after an invalidation heard from another process does not join the old load', async () => {
    const { nodes } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    const load = gatedLoader<string>()
    const first = a.cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    const heard = applied(a.cache, 'tags')
    await b.cache.invalidateTags(['a'])
    await heard
    let calls = 0
    const second = a.cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await second).toBe('new')
    expect(calls).toBe(1)
  })

  it('a caller that joined before the invalidation gets the old load\'s value (it asked before)', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const load = gatedLoader<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    let calls = 0
    const joined = cache.getOrSet('k', () => (calls++, 'x'), { tags: ['a'] })
    await cache.invalidateTags(['a'])
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await joined).toBe('old')
    expect(calls).toBe(0)
  })

  it('value-dependent family tags: a caller after the invalidation loads again only if the loaded value lists the tag', async () => {
    const { nodes } = processes(1)
    const { cache, bus } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    const tasks = cache.family<number, Task>(taskFamily)
    // Task 1's value lists h1, task 2's does not; h1 is invalidated while both load.
    const load1 = gatedLoader<Task>()
    const load2 = gatedLoader<Task>()
    const first1 = tasks.getOrSet(1, load1.loader)
    const first2 = tasks.getOrSet(2, load2.loader)
    await load1.called
    await load2.called
    await cache.invalidateTags(['h1'])
    let calls = 0
    const second1 = tasks.getOrSet(1, () => (calls++, { hosts: ['h1'], name: 'one, new' }))
    const second2 = tasks.getOrSet(2, () => (calls++, { hosts: ['h2'], name: 'two, new' }))
    load1.resolve({ hosts: ['h1', 'h2'], name: 'one, old' })
    load2.resolve({ hosts: ['h2'], name: 'two, old' })
    expect(await first1).toEqual({ hosts: ['h1', 'h2'], name: 'one, old' })
    expect(await first2).toEqual({ hosts: ['h2'], name: 'two, old' })
    expect(await second1).toEqual({ hosts: ['h1'], name: 'one, new' })
    // Task 2's value does not list h1: it stood, landed, and the later caller got it.
    expect(await second2).toEqual({ hosts: ['h2'], name: 'two, old' })
    expect(calls).toBe(1)
    expect(tasks.peek(1)).toEqual({ hosts: ['h1'], name: 'one, new' })
    expect(tasks.peek(2)).toEqual({ hosts: ['h2'], name: 'two, old' })
  })

  it('a load whose process had not heard the invalidation yet may land, but no process serves it once it knows', async () => {
    const { nodes, network, raw } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    const load = gatedLoader<string>()
    const first = a.cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    network.hold()
    await b.cache.invalidateTags(['a'])
    load.resolve('old')
    expect(await first).toBe('old')
    // A's load filled L2 (with the sequence before the invalidation): B, which invalidated, does not serve it.
    await vi.waitFor(() => expect(raw.raw(storeKey('k'))?.value).toBe('old'))
    expect(await b.cache.get('k')).toBeUndefined()
    const heard = applied(a.cache, 'tags')
    network.release()
    await heard
    expect(a.cache.peek('k')).toBeUndefined()
    expect(await a.cache.get('k')).toBeUndefined()
  })
})

describe('tags: background invalidation', () => {
  /** Two processes; A's store holds its invalidateTags calls until `open()`. */
  function withHeldInvalidations() {
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const inner = memoryStore({ backend })
    const gate = deferred()
    let reached = 0
    const held: RemoteStore = {
      ...inner,
      invalidateTags: async (tags) => {
        reached++
        await gate.promise
        return versionsAfter(inner, tags)
      },
    }
    const busA = memoryBus({ network, instanceId: 'a' })
    const busB = memoryBus({ network, instanceId: 'b' })
    // A generous L2 timeout: the held call must not fail in the guard while the test looks.
    const a = cacheFor({ l2: held, bus: busA, l2Timeout: '1m' })
    const b = cacheFor({ l2: memoryStore({ backend }), bus: busB })
    return { a, b, busA, busB, inner, open: () => gate.resolve(), reached: () => reached }
  }

  it('resolves before the store call, and from then the tagged entries are not served here', async () => {
    const { a, b, busA, busB, inner, open, reached } = withHeldInvalidations()
    await started(busA, busB)
    await a.set('k', 'v1', { tags: ['a'] })
    await a.set('other', 'o', { tags: ['b'] })
    expect(await b.get('k')).toBe('v1')
    const heard = applied(b, 'tags')
    await a.invalidateTags(['a'], { background: true })
    // Resolved with the store unchanged ...
    expect(await versionsOf(inner, ['a'])).toEqual([0])
    // ... and from now on this process serves the entry neither from L1 nor from L2.
    expect(a.peek('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
    expect(a.peek('other')).toBe('o')
    await vi.waitFor(() => expect(reached()).toBe(1))
    expect(a.peek('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
    // The other process follows with the message, which goes out after the store call.
    expect(b.peek('k')).toBe('v1')
    expect(busA.published.filter((m) => m.op === 'tags')).toHaveLength(0)
    open()
    await heard
    expect(await versionsOf(inner, ['a'])).toEqual([1])
    expect(b.peek('k')).toBeUndefined()
    // Once the version is in, the entry stays gone (the hold gave way to the version).
    await vi.waitFor(() => expect(a.stats().writeQueueDepth).toBe(0))
    expect(a.peek('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
    expect(a.peek('other')).toBe('o')
  })

  it('a load made while the background invalidation is on its way does not land', async () => {
    const { a, busA, open } = withHeldInvalidations()
    await started(busA)
    await a.set('k', 'v1', { tags: ['a'] })
    await a.invalidateTags(['a'], { background: true })
    let calls = 0
    expect(await a.getOrSet('k', () => (calls++, 'during'), { tags: ['a'] })).toBe('during')
    expect(calls).toBe(1)
    expect(a.peek('k')).toBeUndefined()
    open()
    await vi.waitFor(() => expect(a.stats().writeQueueDepth).toBe(0))
    expect(a.peek('k')).toBeUndefined()
    expect(await a.getOrSet('k', () => (calls++, 'after'), { tags: ['a'] })).toBe('after')
    expect(calls).toBe(2)
    expect(a.peek('k')).toBe('after')
  })
})

describe('tags: the store fails the invalidation', () => {
  it('invalidateTags still resolves; this process drops its L1 and the other gets a clear', async () => {
    const { nodes } = processes(2, { cache: { breaker: { volumeThreshold: 100 } } })
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('k', 'v1', { tags: ['a'] })
    await a.cache.set('plain', 'p')
    expect(await b.cache.get('k')).toBe('v1')
    expect(await b.cache.get('plain')).toBe('p')
    a.chaos.fail('invalidateTags', 'error')
    const cleared = applied(b.cache, 'clear')
    const flushed = nextEvent<CacheEvents['l1-flushed']>((l) => a.cache.on('l1-flushed', l))
    await expect(a.cache.invalidateTags(['a'])).resolves.toBeUndefined()
    expect(a.chaos.calls.invalidateTags).toBe(1)
    expect(await flushed).toEqual({ reason: 'clear' })
    expect(a.cache.peek('k')).toBeUndefined()
    expect(a.cache.peek('plain')).toBeUndefined()
    // The clear, and (L2 answering again at once) the namespace bump that covers the tags.
    expect(a.bus.published.map((m) => m.op)).toContain('clear')
    await cleared
    expect(b.cache.peek('k')).toBeUndefined()
    expect(b.cache.peek('plain')).toBeUndefined()
  })
})

describe('tags: invalid input', () => {
  const expectInvalid = async (promise: Promise<unknown>, path: string, message: RegExp) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(InvalidOptionsError)
    expect((error as InvalidOptionsError).path).toBe(path)
    expect((error as InvalidOptionsError).message).toMatch(message)
  }

  it('invalidateTags refuses anything but an array of up to 64 non-empty strings, naming tags', async () => {
    const { nodes } = processes(1)
    const { cache, chaos: c } = nodes[0] as (typeof nodes)[0]
    await expectInvalid(cache.invalidateTags('a' as unknown as string[]), 'tags', /expected an array of strings \(got string\)/)
    await expectInvalid(cache.invalidateTags(null as unknown as string[]), 'tags', /got null/)
    await expectInvalid(cache.invalidateTags(['']), 'tags', /non-empty strings of at most 256 characters \(got ""\)/)
    await expectInvalid(cache.invalidateTags(['x'.repeat(257)]), 'tags', /at most 256 characters/)
    await expectInvalid(cache.invalidateTags([1 as unknown as string]), 'tags', /non-empty strings.*\(got number\)/)
    const many = Array.from({ length: 65 }, (_, i) => `t${i}`)
    await expectInvalid(cache.invalidateTags(many), 'tags', /at most 64 tags \(got 65\)/)
    await expect(cache.invalidateTags(many.slice(0, 64))).resolves.toBeUndefined()
    await expect(cache.invalidateTags(['x'.repeat(256)])).resolves.toBeUndefined()
    // Only the two valid calls reached the store.
    expect(c.calls.invalidateTags).toBe(2)
  })

  it('set, setMany and getOrSet refuse bad tags naming options.tags, before anything changes', async () => {
    const { nodes, raw } = processes(1)
    const { cache } = nodes[0] as (typeof nodes)[0]
    await expectInvalid(cache.set('k', 1, { tags: 'a' as unknown as string[] }), 'options.tags', /expected an array of strings/)
    await expectInvalid(cache.set('k', 1, { tags: [''] }), 'options.tags', /non-empty strings/)
    await expectInvalid(
      cache.set('k', 1, { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }),
      'options.tags',
      /at most 64 tags/,
    )
    expect(cache.peek('k')).toBeUndefined()
    await expectInvalid(
      cache.setMany([
        { key: 'first', value: 1, options: { tags: ['ok'] } },
        { key: 'second', value: 2, options: { tags: [2 as unknown as string] } },
      ]),
      'options.tags',
      /got number/,
    )
    expect(cache.peek('first')).toBeUndefined()
    expect(raw.raw(storeKey('first'))).toBeUndefined()
    let calls = 0
    await expectInvalid(
      cache.getOrSet('k', () => (calls++, 1), { tags: [''] }),
      'options.tags',
      /non-empty strings/,
    )
    expect(calls).toBe(0)
    const family = cache.family<number, number>({ name: 'f', key: (id) => `${id}` })
    await expectInvalid(family.set(1, 1, { tags: 'x' as unknown as string[] }), 'options.tags', /expected an array/)
    await expectInvalid(family.getOrSet(1, () => 1, { tags: [''] }), 'options.tags', /non-empty/)
  })

  it('an entry carries at most 64 tags with its family\'s', async () => {
    const { nodes } = processes(1)
    const { cache } = nodes[0] as (typeof nodes)[0]
    const family = cache.family<number, number>({ name: 'f', key: (id) => `${id}`, tags: () => Array.from({ length: 40 }, (_, i) => `f${i}`) })
    const own = Array.from({ length: 30 }, (_, i) => `o${i}`)
    await expectInvalid(family.set(1, 1, { tags: own }), 'tags', /at most 64 tags, with its family's \(got 70\)/)
    expect(family.peek(1)).toBeUndefined()
    // The same tags twice count once.
    await family.set(2, 2, { tags: ['f1', 'f2', 'o1'] })
    expect(family.peek(2)).toBe(2)
  })

  it('a family whose tags() returns no array is refused naming family.tags, on set and on getOrSet', async () => {
    const { nodes } = processes(1)
    const { cache } = nodes[0] as (typeof nodes)[0]
    const family = cache.family<number, { tag: unknown }>({
      name: 'bad',
      key: (id) => `${id}`,
      tags: (_id, value) => value.tag as string[],
    })
    await expectInvalid(family.set(1, { tag: 'h1' }), 'family.tags', /expected an array of strings \(got string\)/)
    await expectInvalid(family.set(1, { tag: [''] }), 'family.tags', /non-empty strings/)
    expect(family.peek(1)).toBeUndefined()
    await expectInvalid(family.getOrSet(2, () => ({ tag: undefined })), 'family.tags', /got undefined/)
    expect(family.peek(2)).toBeUndefined()
    await family.set(3, { tag: ['ok'] })
    expect(family.peek(3)).toEqual({ tag: ['ok'] })
  })

  it('a family definition whose tags is not a function is refused naming family.tags', () => {
    const cache = cacheFor({ l2: memoryStore() })
    const define = (tags: unknown) => () => cache.family({ name: 'f', key: (id: number) => `${id}`, tags: tags as never })
    for (const tags of [['a'], 'a', 1, null]) {
      expect(define(tags)).toThrow(InvalidOptionsError)
      try {
        define(tags)()
      } catch (error) {
        expect((error as InvalidOptionsError).path).toBe('family.tags')
        expect((error as InvalidOptionsError).message).toMatch(/expected a function \(params, value\) => string\[\]/)
      }
    }
  })

  it('with a store that cannot carry tags, tagged writes, tagged loads and invalidateTags are refused naming tags', async () => {
    const full = memoryStore()
    const { getTagVersions: _g, invalidateTags: _i, ...rest } = full
    const store: RemoteStore = rest
    expect(store.getTagVersions).toBeUndefined()
    const cache = cacheFor({ l2: store })
    await expectInvalid(cache.set('k', 1, { tags: ['a'] }), 'tags', /getTagVersions\(\) and invalidateTags\(\)/)
    expect(cache.peek('k')).toBeUndefined()
    expect(full.raw(storeKey('k'))).toBeUndefined()
    await expectInvalid(cache.invalidateTags(['a']), 'tags', /cannot carry tags/)
    let calls = 0
    await expectInvalid(cache.getOrSet('k', () => (calls++, 1), { tags: ['a'] }), 'tags', /cannot carry tags/)
    expect(calls).toBe(0)
    const tasks = cache.family<number, Task>(taskFamily)
    await expectInvalid(tasks.set(1, { hosts: ['h1'], name: 'one' }), 'tags', /cannot carry tags/)
    await expectInvalid(tasks.getOrSet(1, () => ({ hosts: ['h1'], name: 'one' })), 'tags', /cannot carry tags/)
    // Untagged use is fine.
    await cache.set('k', 1)
    expect(await cache.getOrSet('j', () => 2)).toBe(2)
    expect(full.raw(storeKey('k'))?.value).toBe(1)
  })

  it('the options: tagTable.maxSize must be a positive integer; the cache takes no tags', () => {
    for (const maxSize of [0, -1, 1.5, '10']) {
      let error: unknown
      try {
        createTieredCache({ tagTable: { maxSize: maxSize as number } })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(InvalidOptionsError)
      expect((error as InvalidOptionsError).path).toBe('tagTable.maxSize')
    }
    expect(() => createTieredCache({ tags: ['a'] } as unknown as TieredCacheOptions)).toThrow(InvalidOptionsError)
    expect(() => createTieredCache({ tagTable: { size: 10 } } as unknown as TieredCacheOptions)).toThrow(InvalidOptionsError)
    const cache = cacheFor({ tagTable: { maxSize: 1 } })
    expect(cache).toBeDefined()
  })
})

describe('tags: the bounded table', () => {
  it('tags the table let go are read again from the store: an entry written before them is still dropped, one after is served with no store call', async () => {
    const { nodes } = processes(2, { cache: { tagTable: { maxSize: 2 } } })
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await a.cache.set('before', 'b', { tags: ['t1'] })
    await a.cache.set('untouched', 'u', { tags: ['x'] })
    for (const tag of ['t1', 't2', 't3', 't4', 't5']) {
      const heard = applied(a.cache, 'tags')
      await b.cache.invalidateTags([tag])
      await heard
    }
    const reads = a.chaos.calls.getTagVersions ?? 0
    expect(a.cache.peek('before')).toBeUndefined()
    expect(await a.cache.get('before')).toBeUndefined()
    // It could not tell from memory: it read t1's version.
    expect(a.chaos.calls.getTagVersions).toBe(reads + 1)
    // An entry whose tag was never invalidated stands once its tag was read again.
    expect(await a.cache.get('untouched')).toBe('u')
    expect(a.chaos.calls.getTagVersions).toBe(reads + 2)
    expect(a.cache.peek('untouched')).toBe('u')
    await a.cache.set('after', 'a', { tags: ['t1'] })
    const before = { ...a.chaos.calls }
    for (let i = 0; i < 100; i++) {
      expect(a.cache.peek('after')).toBe('a')
      expect(await a.cache.get('after')).toBe('a')
      expect(await a.cache.getOrSet('after', () => 'loaded', { tags: ['t1'] })).toBe('a')
    }
    expect(a.chaos.calls).toEqual(before)
  })
})

describe('tags: O(1) invalidation', () => {
  it('1,000 tagged entries go with one store call and one message, and no key is touched', async () => {
    const { nodes, network } = processes(2)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`)
    await a.cache.setMany(keys.map((key, i) => ({ key, value: i, options: { tags: ['a', `own:${i}`] } })))
    expect(await b.cache.getMany(keys)).toEqual(keys.map((_, i) => i))
    expect(b.cache.peek('k999')).toBe(999)
    const calls = { ...a.chaos.calls }
    const delivered = network.delivered
    const events: CacheEvents['bus:applied'][] = []
    b.cache.on('bus:applied', (e) => events.push(e))
    const heard = applied(b.cache, 'tags')
    await a.cache.invalidateTags(['a'])
    await heard
    await flush()
    expect(a.chaos.calls.invalidateTags).toBe((calls.invalidateTags ?? 0) + 1)
    expect(a.chaos.calls.delete ?? 0).toBe(calls.delete ?? 0)
    expect(a.chaos.calls.set ?? 0).toBe(calls.set ?? 0)
    expect(a.chaos.calls.setMany ?? 0).toBe(calls.setMany ?? 0)
    expect(a.chaos.calls.bumpGeneration ?? 0).toBe(calls.bumpGeneration ?? 0)
    expect(network.delivered - delivered).toBe(1)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ source: 'p0', op: 'tags', keys: [] })
    expect(a.bus.published.filter((m) => m.op === 'tags')).toEqual([expect.objectContaining({ op: 'tags', tags: ['a'], version: 1 })])
    for (const key of keys) {
      expect(a.cache.peek(key)).toBeUndefined()
      expect(b.cache.peek(key)).toBeUndefined()
    }
    expect(await b.cache.getMany(keys)).toEqual(keys.map(() => undefined))
  })
})

describe('tags: without L2', () => {
  it('an L1-only cache drops its tagged entries', async () => {
    const cache = cacheFor()
    await cache.set('a', 1, { tags: ['a'] })
    await cache.set('b', 2, { tags: ['b'] })
    await cache.set('plain', 3)
    expect(await cache.getOrSet('loaded', () => 4, { tags: ['a'] })).toBe(4)
    await cache.invalidateTags(['a'])
    expect(cache.peek('a')).toBeUndefined()
    expect(cache.peek('loaded')).toBeUndefined()
    expect(await cache.get('a')).toBeUndefined()
    expect(cache.peek('b')).toBe(2)
    expect(cache.peek('plain')).toBe(3)
    await cache.set('a', 5, { tags: ['a'] })
    expect(cache.peek('a')).toBe(5)
    await cache.invalidateTags(['a'])
    expect(cache.peek('a')).toBeUndefined()
  })

  it('an L1-only load that began before the invalidation does not land, and a later caller loads again', async () => {
    const cache = cacheFor()
    const load = gatedLoader<string>()
    const first = cache.getOrSet('k', load.loader, { tags: ['a'] })
    await load.called
    await cache.invalidateTags(['a'])
    let calls = 0
    const second = cache.getOrSet('k', () => (calls++, 'new'), { tags: ['a'] })
    load.resolve('old')
    expect(await first).toBe('old')
    expect(await second).toBe('new')
    expect(calls).toBe(1)
    expect(cache.peek('k')).toBe('new')
  })

  it('two L1-only caches on one bus: each one\'s invalidations drop the other\'s entries, though their counts differ', async () => {
    const network = memoryBusNetwork()
    const busA = memoryBus({ network, instanceId: 'a' })
    const busB = memoryBus({ network, instanceId: 'b' })
    const a = cacheFor({ bus: busA })
    const b = cacheFor({ bus: busB })
    await started(busA, busB)
    // A counts two invalidations of its own before B makes any.
    await a.invalidateTags(['x'])
    await a.invalidateTags(['y'])
    // Each writes its own keys (a write of a key drops the other's copy of it).
    await a.set('a:t', 'A', { tags: ['t'] })
    await a.set('a:u', 'A', { tags: ['u'] })
    await b.set('b:t', 'B', { tags: ['t'] })
    await b.set('b:u', 'B', { tags: ['u'] })
    const heardByA = applied(a, 'tags')
    await b.invalidateTags(['t'])
    await heardByA
    expect(a.peek('a:t')).toBeUndefined()
    expect(b.peek('b:t')).toBeUndefined()
    expect(a.peek('a:u')).toBe('A')
    expect(b.peek('b:u')).toBe('B')
    const heardByB = applied(b, 'tags')
    await a.invalidateTags(['u'])
    await heardByB
    expect(a.peek('a:u')).toBeUndefined()
    expect(b.peek('b:u')).toBeUndefined()
    // Written after: stands on both.
    await a.set('a:t', 'A2', { tags: ['t', 'u'] })
    await b.set('b:t', 'B2', { tags: ['t', 'u'] })
    expect(a.peek('a:t')).toBe('A2')
    expect(b.peek('b:t')).toBe('B2')
  })
})

describe('tags: an unhealthy bus', () => {
  it('while unhealthy, a tagged L1 entry whose tag knowledge is older than the cap has its tags read again before it is served', async () => {
    const clock = fakeClock()
    const { nodes } = processes(1, { clock })
    const { cache, bus, chaos: c } = nodes[0] as (typeof nodes)[0]
    await started(bus)
    // The first tagged write reads the sequence: what the table knows dates from now.
    await cache.set('warm-up', 0, { tags: ['a'] })
    bus.setHealthy(false)
    clock.advance(900)
    // Both filled 100 ms before the check: within the L1 cap of 1 s.
    await cache.set('tagged', 'T', { tags: ['a'] })
    await cache.set('plain', 'P')
    const reads = c.calls.getTagVersions ?? 0
    expect(cache.peek('tagged')).toBe('T')
    expect(c.calls.getTagVersions ?? 0).toBe(reads)
    clock.advance(100)
    expect(cache.peek('plain')).toBe('P')
    // The tag's knowledge is 1 s old: the L1 copy is not served from memory ...
    expect(cache.peek('tagged')).toBeUndefined()
    // ... but after a read of its tags (nothing invalidated it).
    expect(await cache.get('tagged')).toBe('T')
    expect(c.calls.getTagVersions).toBe(reads + 1)
    expect(cache.peek('tagged')).toBe('T')
    expect(await cache.get('tagged')).toBe('T')
    expect(c.calls.getTagVersions).toBe(reads + 1)
  })

  it('an invalidation made while this process could not hear it: honoured once the cap passed, and after recovery', async () => {
    const clock = fakeClock()
    const { nodes } = processes(2, { clock })
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await b.cache.set('k', 'v1', { tags: ['a'] })
    await b.cache.set('j', 'w1', { tags: ['a'] })
    expect(await a.cache.get('k')).toBe('v1')
    expect(await a.cache.get('j')).toBe('w1')
    a.bus.setHealthy(false)
    const appliedBefore = a.cache.stats().busMessagesApplied
    await b.cache.invalidateTags(['a'])
    await flush()
    expect(a.cache.stats().busMessagesApplied).toBe(appliedBefore)
    // Past the cap the versions are read again and the invalidation is found.
    clock.advance(1_000)
    expect(a.cache.peek('k')).toBeUndefined()
    expect(await a.cache.get('k')).toBeUndefined()
    a.bus.setHealthy(true)
    expect(a.cache.peek('j')).toBeUndefined()
    expect(await a.cache.get('j')).toBeUndefined()
    let calls = 0
    expect(await a.cache.getOrSet('j', () => (calls++, 'w2'), { tags: ['a'] })).toBe('w2')
    expect(calls).toBe(1)
  })

  it('an invalidation missed while cut off is honoured after recovery, even before the cap passed', async () => {
    const clock = fakeClock()
    const { nodes } = processes(2, { clock })
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    await started(a.bus, b.bus)
    await b.cache.set('k', 'v1', { tags: ['a'] })
    expect(await a.cache.get('k')).toBe('v1')
    a.bus.setHealthy(false)
    await b.cache.invalidateTags(['a'])
    await flush()
    // Still within the cap: A's L1 copy is served (the bound while unhealthy) ...
    expect(a.cache.peek('k')).toBe('v1')
    a.bus.setHealthy(true)
    // ... and gone once the bus recovered: L1 dropped, the tag read again from L2.
    expect(a.cache.peek('k')).toBeUndefined()
    const reads = a.chaos.calls.getTagVersions ?? 0
    expect(await a.cache.get('k')).toBeUndefined()
    expect(a.chaos.calls.getTagVersions).toBe(reads + 1)
    let calls = 0
    expect(await a.cache.getOrSet('k', () => (calls++, 'v2'), { tags: ['a'] })).toBe('v2')
    expect(calls).toBe(1)
    expect(a.cache.peek('k')).toBe('v2')
  })
})
