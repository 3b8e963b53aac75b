import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { PROCESS_TEST_TIMEOUT, startCacheNodes, type CacheNode } from './helpers.js'

function loaderStarted(node: CacheNode, key: string): Promise<unknown> {
  const past = node.process.events.find((e) => e.name === 'loader:start' && (e.data as { key: string }).key === key)
  return past ? Promise.resolve(past.data) : node.process.waitForEvent('loader:start', (e: { key: string }) => e.key === key)
}

async function totalLoaderCalls(nodes: readonly CacheNode[]): Promise<number> {
  const stats = await Promise.all(nodes.map((node) => node.stats()))
  return stats.reduce((sum, s) => sum + s.loaderCalls, 0)
}

describe('stale fills (leases)', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  it.each(['set', 'delete'] as const)(
    'a load that started before a write (%s) elsewhere never lands its old value in L2 or any L1',
    async (kind) => {
      const { url, namespace } = sharedRedis('lease')
      const nodes = await startCacheNodes(4, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
      const [reader, writer, ...observers] = nodes as [CacheNode, CacheNode, CacheNode, CacheNode]

      // The reader misses and starts loading: it has read the old row from the database.
      const reading = reader.process.call<{ values: unknown[] }>('getOrSet', { key: 'row', gated: true })
      await loaderStarted(reader, 'row')

      // Meanwhile the database row changes and the writer invalidates; everyone hears of it.
      const ack = kind === 'set' ? await writer.set('row', 'new') : await writer.delete('row')
      for (const node of [reader, ...observers]) await node.applied(writer, ack.seq)

      // Only now does the reader's load return the old row.
      expect(await reader.process.call('release', { key: 'row', value: 'old' })).toBe(1)
      // The caller that asked before the write may get what it loaded...
      expect((await reading).values).toEqual(['old'])
      // ...but the old value landed nowhere.
      const expected = kind === 'set' ? 'new' : null
      expect(await reader.process.call('l2Get', { key: 'row' })).toBe(expected)
      expect(await reader.process.call('peek', { key: 'row' })).not.toBe('old')
      for (const node of nodes) expect((await node.get('row')).value).toBe(expected)
    },
  )

  it('a local write during a load voids the load too', async () => {
    const { url, namespace } = sharedRedis('lease')
    const [node, other] = (await startCacheNodes(2, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })) as [CacheNode, CacheNode]
    const reading = node.process.call<{ values: unknown[] }>('getOrSet', { key: 'row', gated: true })
    await loaderStarted(node, 'row')
    const ack = await node.set('row', 'new')
    await node.process.call('release', { key: 'row', value: 'old' })
    await reading
    await other.applied(node, ack.seq)
    expect(await node.process.call('l2Get', { key: 'row' })).toBe('new')
    expect((await node.get('row')).value).toBe('new')
    expect((await other.get('row')).value).toBe('new')
  })
})

describe('distributed stampede protection', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  it('1,000 concurrent getOrSet on one cold key over 4 processes call the loader once', async () => {
    const { url, namespace } = sharedRedis('stampede')
    const nodes = await startCacheNodes(4, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
    const results = await Promise.all(
      nodes.map((node) => node.process.call<{ values: unknown[] }>('getOrSet', { key: 'cold', value: { v: 1 }, delayMs: 200, count: 250 })),
    )
    for (const result of results) expect(result.values).toEqual([{ v: 1 }])
    expect(await totalLoaderCalls(nodes)).toBe(1)
  })

  it('the lease holder killed mid-load: the value still arrives, with at most 2 loader calls', async () => {
    const { url, namespace } = sharedRedis('stampede')
    const nodes = await startCacheNodes(4, { TC_REDIS_URL: url, TC_NAMESPACE: namespace, TC_LEASE_TTL: '1s', TC_LEASE_WAIT: '3s' })
    const [holder, ...waiters] = nodes as [CacheNode, ...CacheNode[]]
    void holder.process.call('getOrSet', { key: 'cold', gated: true }).catch(() => {})
    await loaderStarted(holder, 'cold')
    const waiting = waiters.map((node) => node.process.call<{ values: unknown[] }>('getOrSet', { key: 'cold', value: { v: 2 }, delayMs: 100, count: 333 }))
    await holder.process.kill('SIGKILL')
    const results = await Promise.all(waiting)
    for (const result of results) expect(result.values).toEqual([{ v: 2 }])
    // The dead holder's call, plus the one process that took the expired lease over.
    const takeovers = await totalLoaderCalls(waiters)
    expect(takeovers).toBeGreaterThanOrEqual(1)
    expect(1 + takeovers).toBeLessThanOrEqual(2)
  })
})
