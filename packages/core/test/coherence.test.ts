import { describe, expect, it, vi } from 'vitest'
import {
  type CacheEvents,
  type Clock,
  type MemoryBusNetwork,
  type TieredCache,
  memoryBus,
  memoryBusNetwork,
  memoryStore,
} from '../src/index.js'
import { cacheFor, chaos, deferred, fakeClock, nextEvent } from './helpers.js'

/** N caches ("processes") on one store and one bus network. */
function cluster(n: number, options: { clock?: Clock; network?: MemoryBusNetwork } = {}) {
  const store = memoryStore({ clock: options.clock })
  const network = options.network ?? memoryBusNetwork()
  const nodes = Array.from({ length: n }, (_, i) => {
    const bus = memoryBus({ network, instanceId: `node-${i}` })
    const cache = cacheFor({ l2: store, bus, clock: options.clock, lease: { pollInterval: 5 } })
    return { cache, bus }
  })
  return { store, network, nodes }
}

const applied = (cache: TieredCache, filter: (e: CacheEvents['bus:applied']) => boolean = () => true) =>
  nextEvent<CacheEvents['bus:applied']>((l) => cache.on('bus:applied', l), filter)

async function started(...caches: { bus: { healthy: boolean } }[]) {
  while (!caches.every((c) => c.bus.healthy)) await new Promise((r) => setImmediate(r))
}

describe('bus', () => {
  it('a write on one node drops the L1 copy of the others once they applied its message', async () => {
    const { nodes } = cluster(3)
    await started(...nodes)
    const [a, b, c] = nodes.map((n) => n.cache) as [TieredCache, TieredCache, TieredCache]
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    expect(await c.get('k')).toBe('v1')
    const bApplied = applied(b)
    const cApplied = applied(c)
    await a.set('k', 'v2')
    const event = await bApplied
    await cApplied
    expect(event).toMatchObject({ source: 'node-0', op: 'delete', keys: ['k'] })
    expect(b.peek('k')).toBeUndefined()
    expect(await b.get('k')).toBe('v2')
    expect(await c.get('k')).toBe('v2')
    expect(b.stats().busMessagesApplied).toBe(2)
  })

  it('by order: a node reflects a write once it applied the message, not before (held messages)', async () => {
    const { nodes, network } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes.map((n) => n.cache) as [TieredCache, TieredCache]
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    network.hold()
    await a.set('k', 'v2')
    // Not applied yet: B still serves its L1 copy (the bound is the bus delivery).
    expect(b.peek('k')).toBe('v1')
    expect(network.pending).toBe(1)
    const seen = applied(b)
    network.release()
    await seen
    expect(b.peek('k')).toBeUndefined()
    expect(await b.get('k')).toBe('v2')
  })

  it('without stampede protection a node that is denied the lease loads at once and does not fill L2', async () => {
    const store = memoryStore()
    await store.acquireLease({ family: 'default@1', generation: '', id: 'k' }, 60_000)
    const cache = cacheFor({ l2: store, stampedeProtection: false })
    expect(await cache.getOrSet('k', () => 'v')).toBe('v')
    expect(cache.stats().total.leaseWaits).toBe(0)
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toBeUndefined()
  })

  it('ignores its own messages', async () => {
    const network = memoryBusNetwork()
    const bus = memoryBus({ network, instanceId: 'me' })
    const cache = cacheFor({ l2: memoryStore(), bus })
    await started({ bus })
    let appliedCount = 0
    cache.on('bus:applied', () => appliedCount++)
    await cache.set('k', 1)
    // Defensive even if a transport echoes: replay the own message by hand.
    const other = memoryBus({ network, instanceId: 'me' })
    await other.start()
    await other.publish({ op: 'delete', keys: ['k'] })
    await new Promise((r) => setImmediate(r))
    expect(appliedCount).toBe(0)
    expect(cache.peek('k')).toBe(1)
    await other.close()
  })

  it('coalesces invalidations issued in the same tick into one message', async () => {
    const { nodes } = cluster(2)
    await started(...nodes)
    const [a] = nodes
    await Promise.all([a?.cache.set('x', 1), a?.cache.delete('y'), a?.cache.set('z', 3)])
    const deletes = a?.bus.published.filter((m) => m.op === 'delete') ?? []
    expect(deletes).toHaveLength(1)
    expect(deletes[0]).toMatchObject({ keys: ['x', 'y', 'z'] })
  })

  it('a write is acknowledged after the message was handed to the bus', async () => {
    const { nodes } = cluster(2)
    await started(...nodes)
    const a = nodes[0] as (typeof nodes)[0]
    await a.cache.delete('k')
    expect(a.bus.published.at(-1)).toMatchObject({ op: 'delete', keys: ['k'] })
  })

  it('applies clear messages by dropping L1', async () => {
    const { nodes } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes.map((n) => n.cache) as [TieredCache, TieredCache]
    await b.set('k', 1)
    const done = applied(b, (e) => e.op === 'clear')
    await a.clear()
    await done
    expect(b.peek('k')).toBeUndefined()
  })
})

describe('invalidation epoch (stale-fill race)', () => {
  it('a load that started before a local write lands neither in L1 nor in L2', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store })
    const gate = deferred<string>()
    const reading = cache.getOrSet('k', () => gate.promise)
    await new Promise((r) => setTimeout(r, 5))
    await cache.set('k', 'new')
    gate.resolve('old')
    expect(await reading).toBe('old')
    await new Promise((r) => setTimeout(r, 5))
    expect(cache.peek('k')).toBe('new')
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('new')
  })

  it('a load that started before a bus invalidation does not land in L1 or L2', async () => {
    const { nodes, store } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes.map((n) => n.cache) as [TieredCache, TieredCache]
    const gate = deferred<string>()
    const loaderStarted = deferred()
    const reading = b.getOrSet('k', () => {
      loaderStarted.resolve()
      return gate.promise
    })
    await loaderStarted.promise
    const seen = applied(b)
    await a.set('k', 'new')
    await seen
    gate.resolve('old')
    expect(await reading).toBe('old')
    await new Promise((r) => setTimeout(r, 5))
    expect(b.peek('k')).toBeUndefined()
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('new')
    expect(await b.get('k')).toBe('new')
  })

  it('callers arriving after the invalidation do not join the old load', async () => {
    const cache = cacheFor()
    const gate = deferred<string>()
    const first = cache.getOrSet('k', () => gate.promise)
    await cache.delete('k')
    const second = cache.getOrSet('k', () => 'fresh')
    gate.resolve('old')
    expect(await first).toBe('old')
    expect(await second).toBe('fresh')
  })
})

describe('bus health', () => {
  it('while unhealthy serves every L1 entry only within the cap; healthy again drops the whole L1', async () => {
    const clock = fakeClock()
    const { nodes } = cluster(1, { clock })
    const node = nodes[0] as (typeof nodes)[0]
    await started(node)
    const cache = node.cache
    await cache.set('old', 'filled before')
    clock.advance(5_000)
    const unhealthy = nextEvent<CacheEvents['bus-health']>((l) => cache.on('bus-health', l))
    node.bus.setHealthy(false)
    expect(await unhealthy).toEqual({ healthy: false })
    expect(cache.stats().busHealthy).toBe(false)
    // Filled 5 s ago, cap 1 s: not served from L1 any more (L2 answers).
    expect(cache.peek('old')).toBeUndefined()
    await cache.set('new', 1)
    expect(cache.peek('new')).toBe(1)
    clock.advance(999)
    expect(cache.peek('new')).toBe(1)
    clock.advance(1)
    expect(cache.peek('new')).toBeUndefined()
    await cache.set('again', 2)
    const flushed = nextEvent<CacheEvents['l1-flushed']>((l) => cache.on('l1-flushed', l))
    node.bus.setHealthy(true)
    expect(await flushed).toEqual({ reason: 'bus-recovered' })
    expect(cache.peek('again')).toBeUndefined()
    expect(cache.stats().l1Flushes).toBe(1)
    expect(cache.stats().busHealthy).toBe(true)
    expect(await cache.get('again')).toBe(2)
    clock.advance(60_000)
    expect(cache.peek('again')).toBe(2)
  })

  it('while unhealthy, family entries are capped too and generations older than the cap are re-read', async () => {
    const clock = fakeClock()
    const c = chaos(memoryStore({ clock }))
    const network = memoryBusNetwork()
    const bus = memoryBus({ network })
    const cache = cacheFor({ l2: c.store, bus, clock })
    await started({ bus })
    const list = cache.family<number, string>({ name: 'list', generational: true, key: (p) => `${p}` })
    await list.set(1, 'x')
    bus.setHealthy(false)
    const reads = c.calls.getGenerations ?? 0
    expect(list.peek(1)).toBe('x')
    clock.advance(1_000)
    expect(list.peek(1)).toBeUndefined()
    // Another node bumped the generation while this one could not hear it.
    await (c.store as ReturnType<typeof memoryStore>).bumpGeneration('list@1')
    expect(await list.get(1)).toBeUndefined()
    expect(c.calls.getGenerations).toBe(reads + 1)
  })

  it('with a cap of 0, an unhealthy node reads a generational family as a miss (once), not in a loop', async () => {
    const c = chaos(memoryStore())
    const bus = memoryBus({ network: memoryBusNetwork() })
    const cache = cacheFor({ l2: c.store, bus, unhealthyL1Cap: 0 })
    await started({ bus })
    const list = cache.family<number, string>({ name: 'list', generational: true, key: (p) => `${p}` })
    await list.set(1, 'x')
    bus.setHealthy(false)
    const reads = c.calls.getGenerations ?? 0
    expect(await list.get(1)).toBeUndefined()
    expect(c.calls.getGenerations).toBe(reads + 1)
    expect(await list.getOrSet(1, () => 'loaded')).toBe('loaded')
  })

  it('after recovery a node reads every write acknowledged while its bus was down', async () => {
    const { nodes } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes
    if (a === undefined || b === undefined) throw new Error('nodes')
    await b.cache.set('k', 'v1')
    b.bus.setHealthy(false)
    await a.cache.set('k', 'v2')
    b.bus.setHealthy(true)
    expect(await b.cache.get('k')).toBe('v2')
  })
})

describe('leases and distributed stampede protection', () => {
  it('1,000 concurrent getOrSet over 4 nodes call the loader once', async () => {
    const { nodes } = cluster(4)
    await started(...nodes)
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 20))
      return 'value'
    }
    const pending = Array.from({ length: 1_000 }, (_, i) => (nodes[i % 4] as (typeof nodes)[0]).cache.getOrSet('cold', loader))
    const values = await Promise.all(pending)
    expect(values.every((v) => v === 'value')).toBe(true)
    expect(calls).toBe(1)
    const waits = nodes.reduce((sum, n) => sum + n.cache.stats().total.leaseWaits, 0)
    expect(waits).toBe(3)
  })

  it('when the lease holder never fills, waiters load themselves after waitTimeout', async () => {
    const store = memoryStore()
    await store.acquireLease({ family: 'default@1', generation: '', id: 'k' }, 60_000)
    const cache = cacheFor({ l2: store, lease: { waitTimeout: 30, pollInterval: 5 } })
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, 'mine'))).toBe('mine')
    expect(calls).toBe(1)
    expect(cache.stats().total.leaseWaits).toBe(1)
    // Not filled into L2: the lease belongs to someone else.
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toBeUndefined()
  })

  it('when the lease holder dies, one waiter takes the expired lease over and the others wait for its fill', async () => {
    const store = memoryStore()
    // The dead holder: a lease nobody will fill, expiring on the real clock.
    await store.acquireLease({ family: 'default@1', generation: '', id: 'k' }, 50)
    const nodes = Array.from({ length: 3 }, () => cacheFor({ l2: store, lease: { waitTimeout: '10s', pollInterval: 5 } }))
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 20))
      return 'v'
    }
    const values = await Promise.all(nodes.flatMap((cache) => Array.from({ length: 10 }, () => cache.getOrSet('k', loader))))
    expect(values.every((v) => v === 'v')).toBe(true)
    expect(calls).toBe(1)
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('v')
  })

  it('when the lease holder dies, the lease expires and another node loads and fills', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    await store.acquireLease({ family: 'default@1', generation: '', id: 'k' }, 10_000)
    const cache = cacheFor({ l2: store, clock, lease: { waitTimeout: 20, pollInterval: 5 } })
    clock.advance(10_000)
    expect(await cache.getOrSet('k', () => 'v')).toBe('v')
    await new Promise((r) => setTimeout(r, 5))
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('v')
  })

  it('a process never waits on its own lease: after a failed fill it loads again and fills with its token', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const key = { family: 'default@1', generation: '', id: 'k' }
    const cache = cacheFor({ l2: c.store, l1: { maxEntries: 1 }, breaker: { volumeThreshold: 100 }, lease: { waitTimeout: 200, pollInterval: 5 } })
    c.fail('fillWithLease', 'error')
    expect(await cache.getOrSet('k', () => 'v1')).toBe('v1')
    await vi.waitFor(() => expect(c.calls.fillWithLease).toBe(1))
    c.heal()
    // The lease is still held in the store; the value never landed. Evict the L1 copy.
    await cache.getOrSet('other', () => 'o')
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v2')
    expect(cache.stats().total.leaseWaits).toBe(0)
    await vi.waitFor(() => expect(store.raw(key)?.value).toBe('v2'))
    // The fill released it: another process may take it now.
    expect((await store.acquireLease(key, 1000)).granted).toBe(true)
  })

  it('a lease request that timed out but ran in the store is the requester\'s to fill, not an orphan everyone waits on', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const key = { family: 'default@1', generation: '', id: 'k' }
    const cache = cacheFor({
      l2: c.store,
      l1: { maxEntries: 1 },
      l2Timeout: 10,
      breaker: { volumeThreshold: 100 },
      lease: { waitTimeout: 200, pollInterval: 5 },
    })
    c.fail('acquireLease', { delayMs: 300 })
    expect(await cache.getOrSet('k', () => 'v1')).toBe('v1')
    // Evicted before the store answers: the late grant finds nothing to fill and is remembered.
    await cache.getOrSet('other', () => 'o')
    // 'other' was still in L1 when its own late grant came: filled and released.
    await vi.waitFor(() => expect(store.raw({ ...key, id: 'other' })?.value).toBe('o'))
    expect(store.backend.leases.size).toBe(1)
    c.heal()
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v2')
    expect(cache.stats().total.leaseWaits).toBe(0)
    await vi.waitFor(() => expect(store.raw(key)?.value).toBe('v2'))
  })

  it('a lease granted after its request timed out is filled with the value loaded meanwhile, so other processes do not wait on it', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const key = { family: 'default@1', generation: '', id: 'k' }
    const holder = cacheFor({ l2: c.store, l2Timeout: 10, breaker: { volumeThreshold: 100 } })
    c.fail('acquireLease', { delayMs: 40 })
    expect(await holder.getOrSet('k', () => 'v1')).toBe('v1')
    c.heal()
    // The holder serves 'k' from L1 and never misses again: the late grant alone fills L2.
    await vi.waitFor(() => expect(store.raw(key)?.value).toBe('v1'))
    const other = cacheFor({ l2: store, lease: { waitTimeout: 200, pollInterval: 5 } })
    let calls = 0
    expect(await other.getOrSet('k', () => (calls++, 'v2'))).toBe('v1')
    expect(calls).toBe(0)
    expect(other.stats().total.leaseWaits).toBe(0)
    expect((await store.acquireLease(key, 1000)).granted).toBe(true)
  })

  it('a fill dropped while the breaker was open is made when it closes, so other processes do not wait on the lease', async () => {
    const c = chaos(memoryStore())
    const store = c.store as ReturnType<typeof memoryStore>
    const holder = cacheFor({ l2: c.store, breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout: 30 } })
    const gate = deferred<string>()
    const loaderStarted = deferred()
    const loading = holder.getOrSet('k', () => {
      loaderStarted.resolve()
      return gate.promise
    })
    await loaderStarted.promise
    c.fail('*', 'error')
    const opened = nextEvent<CacheEvents['breaker']>((l) => holder.on('breaker', l), (e) => e.state === 'open')
    // Four successful calls so far (generations, get, lease, the read after the grant): more than half must fail.
    for (let i = 0; i < 5; i++) await holder.get(`x${i}`)
    await opened
    gate.resolve('v1')
    expect(await loading).toBe('v1')
    expect(c.calls.fillWithLease ?? 0).toBe(0)
    c.heal()
    await nextEvent<CacheEvents['breaker']>((l) => holder.on('breaker', l), (e) => e.state === 'half-open')
    await holder.get('probe')
    await vi.waitFor(() => expect(store.raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('v1'))
    const other = cacheFor({ l2: store, lease: { waitTimeout: 200, pollInterval: 5 } })
    expect(await other.getOrSet('k', () => 'v2')).toBe('v1')
    expect(other.stats().total.leaseWaits).toBe(0)
  })

  it('a load voided by a flush on bus recovery gives its lease up, so other processes load at once instead of waiting it out', async () => {
    const { nodes, store } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    const gate = deferred<string>()
    const loaderStarted = deferred()
    const loading = a.cache.getOrSet('k', () => {
      loaderStarted.resolve()
      return gate.promise
    })
    await loaderStarted.promise
    expect(store.backend.leases.size).toBe(1)
    // Invalidations may have been missed meanwhile: the recovery flush voids the load.
    a.bus.setHealthy(false)
    a.bus.setHealthy(true)
    gate.resolve('loaded before the flush')
    expect(await loading).toBe('loaded before the flush')
    await vi.waitFor(() => expect(store.backend.leases.size).toBe(0))
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toBeUndefined()
    // The other process finds no lease held: it loads without waiting for a fill.
    expect(await b.cache.getOrSet('k', () => 'fresh')).toBe('fresh')
    expect(b.cache.stats().total.leaseWaits).toBe(0)
    expect(a.cache.peek('k')).toBeUndefined()
  })

  it('a fill whose lease was voided by a write does not land in L2', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store })
    const other = cacheFor({ l2: c.store })
    const gate = deferred<string>()
    const loaderStarted = deferred()
    const reading = cache.getOrSet('k', () => {
      loaderStarted.resolve()
      return gate.promise
    })
    await loaderStarted.promise
    await other.set('k', 'new')
    gate.resolve('old')
    await reading
    await new Promise((r) => setTimeout(r, 5))
    expect((c.store as ReturnType<typeof memoryStore>).raw({ family: 'default@1', generation: '', id: 'k' })?.value).toBe('new')
    expect(c.calls.fillWithLease ?? 0).toBeLessThanOrEqual(1)
  })
})

describe('generations', () => {
  it('family invalidate() is O(1): one bump, old entries unreachable on every node', async () => {
    const { nodes, store } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes.map((n) => n.cache) as [TieredCache, TieredCache]
    const def = { name: 'list', generational: true, key: (p: { page: number }) => `page=${p.page}` }
    const listA = a.family<{ page: number }, string[]>(def)
    const listB = b.family<{ page: number }, string[]>(def)
    await listA.set({ page: 1 }, ['x'])
    expect(await listB.get({ page: 1 })).toEqual(['x'])
    const seen = applied(b, (e) => e.op === 'generation')
    await listA.invalidate()
    await seen
    expect(await store.getGenerations(['list@1'])).toEqual([1])
    expect(listB.peek({ page: 1 })).toBeUndefined()
    expect(await listB.get({ page: 1 })).toBeUndefined()
    expect(await listA.getOrSet({ page: 1 }, () => ['y'])).toEqual(['y'])
  })

  it('invalidateGroup() bumps one group only', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    const byHost = cache.family<{ host: string; page: number }, number>({
      name: 'host:tasks',
      key: (p) => `${p.host}:${p.page}`,
      generational: { group: (p) => p.host },
    })
    await byHost.set({ host: 'h1', page: 1 }, 1)
    await byHost.set({ host: 'h2', page: 1 }, 2)
    await byHost.invalidateGroup('h1')
    expect(await byHost.get({ host: 'h1', page: 1 })).toBeUndefined()
    expect(await byHost.get({ host: 'h2', page: 1 })).toBe(2)
  })

  it('a namespace generation message drops every L1 entry', async () => {
    const { nodes } = cluster(2)
    await started(...nodes)
    const [a, b] = nodes
    if (a === undefined || b === undefined) throw new Error('nodes')
    await b.cache.set('k', 1)
    const seen = applied(b.cache, (e) => e.op === 'generation')
    await a.bus.publish({ op: 'generation', name: '', value: 7 })
    await seen
    expect(b.cache.peek('k')).toBeUndefined()
    expect(await b.cache.get('k')).toBeUndefined()
  })

  it('when generations cannot be read, skips L2 and answers from the loader', async () => {
    const c = chaos(memoryStore())
    const cache = cacheFor({ l2: c.store, breaker: { volumeThreshold: 100 } })
    const list = cache.family({ name: 'list', generational: true, key: (p: number) => `${p}` })
    c.fail('getGenerations', 'error')
    expect(await list.getOrSet(1, () => 'from db')).toBe('from db')
    expect(c.calls.get ?? 0).toBe(0)
    expect(c.calls.fillWithLease ?? 0).toBe(0)
    expect(c.calls.set ?? 0).toBe(0)
  })
})
