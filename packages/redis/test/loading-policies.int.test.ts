import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache, type RedisCache } from '../src/index.js'

// Several caches, each with its own Redis connections (store and bus), on one real Redis: the
// processes of a cluster as far as the store, the leases and the bus can tell. A generous
// l2Timeout: on a loaded machine a lease request past the default 50 ms would rightly make a
// process load alone, which these tests are not about.
async function cluster(n: number, options: { ttl: string; eagerRefresh?: number }): Promise<RedisCache[]> {
  const { url } = sharedRedis()
  const namespace = uniqueNamespace('loading')
  const caches = Array.from({ length: n }, () => {
    const cache = createRedisCache({ redis: url, namespace, jitter: 0, l2Timeout: '5s', lease: { pollInterval: 5, waitTimeout: '20s' }, ...options })
    onTestFinished(() => cache.close())
    return cache
  })
  for (const cache of caches) await cache.ready({ timeout: '10s' })
  return caches
}

/** A loader counting its calls across the caches, answering `next`, held while `gate` is closed. */
function sharedLoader(first: string) {
  const state = { calls: 0, next: first, gate: undefined as Promise<void> | undefined }
  const load = async (): Promise<string> => {
    state.calls++
    const value = state.next
    if (state.gate !== undefined) await state.gate
    return value
  }
  const hold = () => {
    let open!: () => void
    state.gate = new Promise<void>((resolve) => (open = resolve))
    return () => {
      state.gate = undefined
      open()
    }
  }
  return { state, load, hold }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('loading policies across processes (real Redis)', () => {
  it('expire: every process serves the old value at once, one reload runs for the cluster, then all serve the new one', async () => {
    const caches = await cluster(3, { ttl: '1m' })
    const loader = sharedLoader('v1')
    for (const cache of caches) expect(await cache.getOrSet('k', loader.load)).toBe('v1')
    expect(loader.state.calls).toBe(1)
    await caches[0]!.expire('k')
    // The others mark their copies once the message arrived: no longer fresh, still kept.
    await vi.waitFor(() => expect(caches.map((cache) => cache.peek('k'))).toEqual([undefined, undefined, undefined]), { timeout: 10_000 })
    loader.state.next = 'v2'
    const release = loader.hold()
    const answers = await Promise.all(caches.flatMap((cache) => [cache.getOrSet('k', loader.load), cache.getOrSet('k', loader.load)]))
    // Every answer came while the one reload was held.
    expect(answers).toEqual(['v1', 'v1', 'v1', 'v1', 'v1', 'v1'])
    release()
    await vi.waitFor(() => expect(caches.map((cache) => cache.peek('k'))).toEqual(['v2', 'v2', 'v2']), { timeout: 10_000 })
    expect(loader.state.calls).toBe(2)
    expect(caches.reduce((n, cache) => n + cache.stats().total.refreshes, 0)).toBeGreaterThanOrEqual(1)
  })

  it('expire: a process with nothing in L1 reads the entry expired from Redis and serves it at once', async () => {
    const [a, b] = (await cluster(2, { ttl: '1m' })) as [RedisCache, RedisCache]
    await a.set('k', 'v1')
    // Read once the expiry's message is in: arriving later, it would void the reload (rightly) and start another.
    const heard = new Promise<void>((resolve) => b.on('bus:applied', ({ op }) => op === 'expire' && resolve()))
    await a.expire('k')
    await heard
    const loader = sharedLoader('v2')
    const release = loader.hold()
    expect(await b.getOrSet('k', loader.load)).toBe('v1')
    release()
    await vi.waitFor(async () => expect(await b.getOrSet('k', loader.load)).toBe('v2'), { timeout: 10_000 })
    expect(loader.state.calls).toBe(1)
  })

  it('eager refresh: past the point every process answers at once, the loader runs once for the cluster, and the new value outlives the old', async () => {
    const caches = await cluster(3, { ttl: '4s', eagerRefresh: 0.5 })
    const loader = sharedLoader('v1')
    for (const cache of caches) await cache.getOrSet('k', loader.load)
    expect(loader.state.calls).toBe(1)
    // Past the refresh point (2 s), well before the expiry (4 s).
    await sleep(2_200)
    loader.state.next = 'v2'
    const release = loader.hold()
    const answers = await Promise.all(caches.flatMap((cache) => Array.from({ length: 5 }, () => cache.getOrSet('k', loader.load))))
    expect(new Set(answers)).toEqual(new Set(['v1']))
    release()
    // The process that took the lease holds the new value; the others keep theirs until it expires.
    await vi.waitFor(() => expect(caches.filter((cache) => cache.peek('k') === 'v2')).toHaveLength(1), { timeout: 10_000 })
    expect(loader.state.calls).toBe(2)
    // Past the first value's expiry: every process serves the refreshed value from L2. (The
    // refreshed value may itself be past its own refresh point by then: a reload it starts answers
    // 'v3' only later, so the answers still tell L2's copy from a load.)
    loader.state.next = 'v3'
    await sleep(2_000)
    expect(await Promise.all(caches.map((cache) => cache.getOrSet('k', loader.load)))).toEqual(['v2', 'v2', 'v2'])
  })
})
