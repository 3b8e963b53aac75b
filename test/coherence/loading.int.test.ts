/**
 * Served-now reloads across real processes on one Redis: eager refresh and `expire()` answer at
 * once with the current value while one reload runs behind, once per key for the whole cluster
 * (through the L2 lease).
 *
 * Four cache processes are shared by the tests of this file (each test has its own key), and the
 * served-now tests run concurrently, so that the real-time waits of the eager-refresh tests
 * overlap. Loader calls are counted per key from the nodes' `loader:start` events.
 */
import { sharedRedis } from '@tiercache/testkit/vitest'
import { afterAll, beforeAll, describe, type ExpectStatic, it, vi } from 'vitest'
import { PROCESS_TEST_TIMEOUT, startCacheNodes, stopCacheNodes, type CacheNode } from './helpers.js'

/**
 * The real TTL of the eager-refresh entries and their refresh point: reads are issued between
 * the latest refresh point (`EAGER` of the TTL after the fill) and the earliest expiry, a window
 * of about 1 s that the reads (a few RPC round trips) fall in with a wide margin.
 */
const TTL_MS = 4_000
const EAGER = 0.75
const EAGER_ENTRY = { ttl: `${TTL_MS}ms`, eagerRefresh: EAGER }
/** Concurrent `getOrSet` calls of one burst on each process. */
const BURST = 50
/** Bound of the polls for background work (a reload, a fill): generous, it is not a speed test. */
const SETTLE = { timeout: 15_000, interval: 20 }

interface Answer {
  readonly values?: unknown[]
  readonly error?: string
}

interface LoadArgs {
  readonly key: string
  readonly value?: unknown
  readonly gated?: boolean
  readonly fail?: boolean
  readonly count?: number
  readonly ttl?: string
  readonly grace?: string
  readonly eagerRefresh?: number
}

const getOrSet = (node: CacheNode, args: LoadArgs) => node.process.call<Answer>('getOrSet', args)
const peek = (node: CacheNode, key: string) => node.process.call<unknown>('peek', { key })
const l2Get = (node: CacheNode, key: string) => node.process.call<unknown>('l2Get', { key })
const release = (node: CacheNode, key: string, value: unknown) => node.process.call<number>('release', { key, value })

/** `BURST` concurrent calls on every node at once. */
const burst = (nodes: readonly CacheNode[], args: LoadArgs) => Promise.all(nodes.map((node) => getOrSet(node, { count: BURST, ...args })))

/** Events `name` about `key` each node sent so far (after a round trip: its earlier events have arrived). */
async function eventsOf(nodes: readonly CacheNode[], name: string, key: string): Promise<number[]> {
  await Promise.all(nodes.map((node) => node.stats()))
  return nodes.map((node) => node.process.events.filter((e) => e.name === name && (e.data as { key: string }).key === key).length)
}

/** Loader calls for `key` across `nodes`. */
async function loads(nodes: readonly CacheNode[], key: string): Promise<number> {
  return (await eventsOf(nodes, 'loader:start', key)).reduce((sum, n) => sum + n, 0)
}

const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))

let nodes: CacheNode[] = []

beforeAll(async () => {
  const { url, namespace } = sharedRedis('loading')
  nodes = await startCacheNodes(4, { TC_REDIS_URL: url, TC_NAMESPACE: namespace }, { stop: 'manual' })
}, PROCESS_TEST_TIMEOUT)

afterAll(() => stopCacheNodes(nodes))

describe('served-now reloads across processes', { timeout: PROCESS_TEST_TIMEOUT, concurrent: true }, () => {
  /**
   * Every node reads `key`: the first loads 'v1' (short TTL, eager refresh), then the others read
   * it from L2 at once (a loader call there would answer 'never'). Answers when every refresh
   * point has passed at the latest (`refreshBy`) and when the first value expires at the earliest
   * (`expiresAfter`) and at the latest (`expiredBy`), by this process's clock (the same machine's
   * as the nodes').
   *
   * The first load runs alone so that no other load of the key can race it: a cold key read at
   * once on several processes may be loaded twice (see the last test of this file), and a second
   * fill, expiring later, would pass for a refresh.
   */
  async function fillEverywhere(key: string) {
    const issued = Date.now()
    const [first, ...rest] = nodes as [CacheNode, ...CacheNode[]]
    const loaded = await getOrSet(first, { key, value: 'v1', ...EAGER_ENTRY })
    const answers = [loaded, ...(await Promise.all(rest.map((node) => getOrSet(node, { key, value: 'never', ...EAGER_ENTRY }))))]
    const done = Date.now()
    for (const answer of answers) if (answer.values?.[0] !== 'v1' || answer.values.length !== 1) throw new Error(`fill of ${key}: ${JSON.stringify(answers)}`)
    // A value read from L2 refreshes no later than one written when it was read.
    return { refreshBy: done + EAGER * TTL_MS, expiresAfter: issued + TTL_MS, expiredBy: done + TTL_MS }
  }

  /** The reads must fall before the first value expired, or the test says nothing: say so plainly. */
  function inWindow(expect: ExpectStatic, expiresAfter: number) {
    const late = Date.now() - expiresAfter
    expect(late, `the reads finished ${late} ms after the first value could expire: the machine stalled, the test's window was missed`).toBeLessThan(0)
  }

  it('eager refresh: past the point every read on every process answers the current value, and one reload runs for the cluster', async ({ expect }) => {
    const key = 'eager-once'
    const { refreshBy, expiresAfter, expiredBy } = await fillEverywhere(key)
    expect(await loads(nodes, key)).toBe(1)

    await sleepUntil(refreshBy + 50)
    // Any loader call would answer 'v2'.
    const answers = await burst(nodes, { key, value: 'v2', ...EAGER_ENTRY })
    inWindow(expect, expiresAfter)
    expect(answers).toEqual(nodes.map(() => ({ values: ['v1'] })))

    // The one reload (the lease holder's) fills L2 behind the answers.
    await vi.waitFor(async () => expect(await l2Get(nodes[0] as CacheNode, key)).toBe('v2'), SETTLE)
    expect(await loads(nodes, key)).toBe(2)

    // Past the first value's expiry: every process serves the refreshed value (the others read
    // it from L2), without a loader call.
    await sleepUntil(expiredBy + 50)
    expect(await burst(nodes, { key, value: 'v3', ...EAGER_ENTRY })).toEqual(nodes.map(() => ({ values: ['v2'] })))
    expect(await loads(nodes, key)).toBe(2)
  })

  it('eager refresh: a reload held by its loader blocks no reader on any process', async ({ expect }) => {
    const key = 'eager-gated'
    const { refreshBy, expiresAfter } = await fillEverywhere(key)
    await sleepUntil(refreshBy + 50)
    const answers = await burst(nodes, { key, gated: true, ...EAGER_ENTRY })
    expect(answers).toEqual(nodes.map(() => ({ values: ['v1'] })))
    // The reload reached its loader, which is still parked...
    await vi.waitFor(async () => expect(await loads(nodes, key)).toBe(2), SETTLE)
    // ...and readers everywhere still answer at once.
    expect(await burst(nodes, { key, gated: true, ...EAGER_ENTRY })).toEqual(nodes.map(() => ({ values: ['v1'] })))
    inWindow(expect, expiresAfter)

    // Only now does the loader answer: exactly one was waiting, on one process.
    const released = await Promise.all(nodes.map((node) => release(node, key, 'v2')))
    expect([...released].sort()).toEqual([0, 0, 0, 1])
    await vi.waitFor(async () => expect(await l2Get(nodes[0] as CacheNode, key)).toBe('v2'), SETTLE)
    const holder = nodes[released.indexOf(1)] as CacheNode
    expect(await peek(holder, key)).toBe('v2')
    expect(await loads(nodes, key)).toBe(2)
  })

  it('eager refresh: a failed reload keeps the current value until it expires', async ({ expect }) => {
    const key = 'eager-failing'
    const { refreshBy, expiresAfter } = await fillEverywhere(key)
    await sleepUntil(refreshBy + 50)
    // Every loader from here on throws.
    expect(await burst(nodes, { key, fail: true, ...EAGER_ENTRY })).toEqual(nodes.map(() => ({ values: ['v1'] })))
    await vi.waitFor(async () => expect((await eventsOf(nodes, 'loader-error', key)).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1), SETTLE)

    // After the failure: still the current value, everywhere, in L2 too.
    expect(await burst(nodes, { key, fail: true, ...EAGER_ENTRY })).toEqual(nodes.map(() => ({ values: ['v1'] })))
    inWindow(expect, expiresAfter)
    expect(await l2Get(nodes[0] as CacheNode, key)).toBe('v1')
    expect(await Promise.all(nodes.map((node) => peek(node, key)))).toEqual(nodes.map(() => 'v1'))
    // One refresh attempt for the cluster: the lease holder's (the others kept their copy).
    expect(await loads(nodes, key)).toBe(2)
  })

  it('expire: every process serves its expired copy at once while one reload runs for the cluster, then the new value', async ({ expect }) => {
    const key = 'expired'
    const cluster = nodes.slice(0, 3)
    const [writer, ...others] = cluster as [CacheNode, CacheNode, CacheNode]
    expect(await getOrSet(writer, { key, value: 'v1' })).toEqual({ values: ['v1'] })
    for (const node of others) expect(await getOrSet(node, { key, value: 'never' })).toEqual({ values: ['v1'] })
    expect(await loads(cluster, key)).toBe(1)

    const ack = await writer.expire(key)
    expect(ack.clean).toBe(true)
    for (const node of others) {
      const applied = await node.applied(writer, ack.seq)
      expect(applied.op).toBe('expire')
      expect(applied.keys).toContain(key)
    }
    // Soft: get and peek take it for absent, L2 still holds the value.
    expect(await Promise.all(cluster.map((node) => peek(node, key)))).toEqual([null, null, null])
    expect(await l2Get(writer, key)).toBe('v1')

    // Every process reads at once; the reload's loader is held.
    expect(await burst(cluster, { key, gated: true })).toEqual(cluster.map(() => ({ values: ['v1'] })))
    await vi.waitFor(async () => expect(await loads(cluster, key)).toBe(2), SETTLE)
    expect(await burst(cluster, { key, gated: true })).toEqual(cluster.map(() => ({ values: ['v1'] })))

    const released = await Promise.all(cluster.map((node) => release(node, key, 'v2')))
    expect([...released].sort()).toEqual([0, 0, 1])
    // The others waited behind for the holder's fill, and take it.
    await vi.waitFor(async () => expect(await Promise.all(cluster.map((node) => peek(node, key)))).toEqual(['v2', 'v2', 'v2']), SETTLE)
    expect(await burst(cluster, { key, value: 'v3' })).toEqual(cluster.map(() => ({ values: ['v2'] })))
    expect(await loads(cluster, key)).toBe(2)
    expect(await l2Get(writer, key)).toBe('v2')
  })

  it('expire: a process that never read the key reads it expired from L2, serves it at once and reloads behind', async ({ expect }) => {
    const key = 'expired-cold'
    const writer = nodes[1] as CacheNode
    const cold = nodes[3] as CacheNode
    expect(await getOrSet(writer, { key, value: 'v1' })).toEqual({ values: ['v1'] })
    const ack = await writer.expire(key)
    expect(ack.clean).toBe(true)
    expect(await peek(cold, key)).toBeNull()

    expect(await getOrSet(cold, { key, gated: true, count: BURST })).toEqual({ values: ['v1'] })
    await vi.waitFor(async () => expect(await eventsOf([cold], 'loader:start', key)).toEqual([1]), SETTLE)
    expect((await eventsOf([cold], 'stale-served', key))[0]).toBeGreaterThanOrEqual(1)
    // Answered while its reload is still held: served from L2 and kept, not waited for.
    expect(await getOrSet(cold, { key, gated: true, count: BURST })).toEqual({ values: ['v1'] })
    expect(await release(cold, key, 'v2')).toBe(1)

    await vi.waitFor(async () => expect(await peek(cold, key)).toBe('v2'), SETTLE)
    expect(await getOrSet(cold, { key, value: 'v3' })).toEqual({ values: ['v2'] })
    expect(await loads(nodes, key)).toBe(2)
    expect(await l2Get(cold, key)).toBe('v2')
  })
})

describe('stampede protection on a cold key', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  // A lease granted right after another process's fill (its miss read L2 before that fill) must
  // not load again: the claim reads L2 once more after a new grant and hands the lease back.
  it("is loaded once even when the holder's fill lands between another process's L2 read and its lease request", async ({ expect }) => {
    const key = 'cold-race'
    const [holder, late] = nodes as [CacheNode, CacheNode]
    // `late` misses in L2, and its lease request is held (as if it were descheduled there).
    await late.process.call('holdLeases')
    const lateRead = getOrSet(late, { key, value: 'from-late' })
    try {
      await late.process.waitForEvent('lease:held', (e: { key: string }) => e.key === key)
      // Meanwhile `holder` misses, takes the lease, loads and fills.
      expect(await getOrSet(holder, { key, value: 'from-holder' })).toEqual({ values: ['from-holder'] })
      await vi.waitFor(async () => expect(await l2Get(holder, key)).toBe('from-holder'), SETTLE)
    } finally {
      await late.process.call('releaseLeases')
    }
    // The key is in L2 now: `late` should serve it, not load it again (and fill over it).
    expect(await lateRead).toEqual({ values: ['from-holder'] })
    expect(await loads(nodes, key)).toBe(1)
    expect(await l2Get(holder, key)).toBe('from-holder')
  })
})
