import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { PROCESS_TEST_TIMEOUT, startCacheNodes, type CacheNode } from './helpers.js'

type Loaded = { values: unknown[] } | { error: string }

function loaderStarts(node: CacheNode, key: string): number {
  return node.process.events.filter((e) => e.name === 'loader:start' && (e.data as { key: string }).key === key).length
}

/** Resolves once `node` started its `count`-th load of `key`. */
function loaderStarted(node: CacheNode, key: string, count = 1): Promise<unknown> {
  if (loaderStarts(node, key) >= count) return Promise.resolve()
  return node.process.waitForEvent('loader:start', (e: { key: string }) => e.key === key && loaderStarts(node, key) >= count)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('tags across processes on one Redis', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  it('an invalidation reaches every L1 and L2 copy of its tags and no other entry, in one message and one store call', async () => {
    const { url, namespace } = sharedRedis('tags')
    const nodes = await startCacheNodes(3, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
    const [writer, invalidator, reader] = nodes as [CacheNode, CacheNode, CacheNode]

    // 200 entries of host h1, 200 of host h2, one untagged; every node holds them in L1.
    for (let i = 0; i < 200; i++) {
      await writer.set(`h1:${i}`, { host: 'h1', i }, ['host:h1', 'tenant:t'])
      await writer.set(`h2:${i}`, { host: 'h2', i }, ['host:h2', 'tenant:t'])
    }
    await writer.set('plain', 'untagged')
    for (const node of nodes) {
      for (const key of ['h1:0', 'h1:199', 'h2:0', 'plain']) expect((await node.get(key)).value).not.toBeNull()
    }
    const before = await Promise.all(nodes.map((node) => node.stats()))

    const ack = await invalidator.process.call<{ seq: number }>('invalidateTags', { tags: ['host:h1'] })
    for (const node of [writer, reader]) {
      const applied = await node.applied(invalidator, ack.seq)
      expect(applied.op).toBe('tags')
    }

    // Nothing of h1 is served anywhere — the writer's and the reader's L1, the invalidator's own —
    // and L2 answers for it as for a miss; the rest stands.
    for (const node of nodes) {
      for (let i = 0; i < 200; i += 37) expect((await node.get(`h1:${i}`)).value).toBeNull()
      expect((await node.get('h2:0')).value).toEqual({ host: 'h2', i: 0 })
      expect((await node.get('plain')).value).toBe('untagged')
    }
    // O(1): the invalidation was one message to each receiver, whatever the number of entries.
    const after = await Promise.all(nodes.map((node) => node.stats()))
    for (const i of [0, 2]) expect(after[i]!.cache.busMessagesApplied - before[i]!.cache.busMessagesApplied).toBe(1)

    // An entry tagged h1 and written after the invalidation stands, on every node.
    await writer.set('h1:new', 'after', ['host:h1'])
    for (const node of nodes) expect((await node.get('h1:new')).value).toBe('after')
  })

  it('a grace copy of an invalidated entry is never served, in L1 or L2; an untagged one is', async () => {
    const { url, namespace } = sharedRedis('tags')
    const nodes = await startCacheNodes(3, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
    const [holder, invalidator, fresh] = nodes as [CacheNode, CacheNode, CacheNode]
    const short = { ttl: '100ms', grace: '1h' }

    // Both entries expire at once and stay within grace for an hour; the holder has L1 copies.
    await holder.process.call('getOrSet', { key: 'tagged', value: 'old', tags: ['task:1'], ...short })
    await holder.process.call('getOrSet', { key: 'untagged', value: 'old', ...short })
    await sleep(250)

    const ack = await invalidator.process.call<{ seq: number }>('invalidateTags', { tags: ['task:1'] })
    for (const node of [holder, fresh]) await node.applied(invalidator, ack.seq)

    // The database fails now. The untagged entry's stale copy stands in; the tagged one's does
    // not — neither from the holder's L1 nor from L2 for a node that never held it.
    for (const node of [holder, fresh]) {
      const tagged = await node.process.call<Loaded>('getOrSet', { key: 'tagged', fail: true, tags: ['task:1'], ...short })
      expect(tagged).toEqual({ error: 'E_LOADER' })
      const untagged = await node.process.call<Loaded>('getOrSet', { key: 'untagged', fail: true, ...short })
      expect(untagged).toEqual({ values: ['old'] })
    }
    expect(holder.process.events.filter((e) => e.name === 'stale-served').map((e) => (e.data as { key: string }).key)).toEqual(['untagged'])
  })

  it('a load that began before an invalidation elsewhere does not land, and a caller after it loads again', async () => {
    const { url, namespace } = sharedRedis('tags')
    const nodes = await startCacheNodes(3, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
    const [loader, invalidator, observer] = nodes as [CacheNode, CacheNode, CacheNode]

    // The loader node misses and reads the old row from the database.
    const first = loader.process.call<Loaded>('getOrSet', { key: 'row', gated: true, tags: ['task:7'] })
    await loaderStarted(loader, 'row')

    // Meanwhile the row changes and its tag is invalidated; everyone hears of it.
    const ack = await invalidator.process.call<{ seq: number }>('invalidateTags', { tags: ['task:7'] })
    for (const node of [loader, observer]) await node.applied(invalidator, ack.seq)

    // A caller after the invalidation joins the load in progress...
    const second = loader.process.call<Loaded>('getOrSet', { key: 'row', gated: true, tags: ['task:7'] })
    await sleep(50)
    expect(loaderStarts(loader, 'row')).toBe(1)

    // ...which only now returns the old row: its own caller, who asked before, may have it.
    expect(await loader.process.call('release', { key: 'row', value: 'old' })).toBe(1)
    expect(await first).toEqual({ values: ['old'] })

    // The later caller does not: its tags were invalidated after the load began, so it loads again.
    await loaderStarted(loader, 'row', 2)
    expect(await loader.process.call('release', { key: 'row', value: 'new' })).toBe(1)
    expect(await second).toEqual({ values: ['new'] })

    // The old value landed nowhere; the new one, loaded after the invalidation, stands everywhere.
    for (const node of nodes) expect((await node.get('row')).value).toBe('new')
    expect(await loader.process.call('l2Get', { key: 'row' })).toBe('new')
  })
})
