import { createTieredCache, memoryStore, type Logger } from '@tiercache/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createCachedTaskService, createTaskFamilies, type InvalidationRecord } from '@tiercache/task'
import { StatisticsDebounce, statisticsInvalidationFamily } from '../src/stats-debounce.js'
import { seededRepository } from './helpers.js'
import { memoryCluster, settle, type Node } from './service-helpers.js'

const statsLoads = (nodes: readonly Node[]) => nodes.reduce((n, node) => n + (node.cache.stats().families['task:stats@1']?.loaderCalls ?? 0), 0)
const recordLookups = (node: Node) => {
  const c = node.cache.stats().families['task:stats-invalidated@1']
  return (c?.l1Hits ?? 0) + (c?.l2Hits ?? 0) + (c?.misses ?? 0)
}

/** Resolves once the wall clock has moved past the current millisecond: ticks compare times in ms. */
async function nextMillisecond(): Promise<void> {
  const now = Date.now()
  while (Date.now() <= now) await new Promise((resolve) => setTimeout(resolve, 1))
}

/** Statistics invalidations each node applies itself. */
function statisticsRecords(nodes: readonly Node[]): number[] {
  const counts = nodes.map(() => 0)
  nodes.forEach((node, i) =>
    node.service.onInvalidated((r: InvalidationRecord) => {
      if (r.write === 'statistics') counts[i] = (counts[i] ?? 0) + 1
    }),
  )
  return counts
}

// Ticks are driven with flushStatistics(): it runs a pending tick at once. The window is long
// enough that no timer fires during a test.
describe('statistics invalidation across processes', () => {
  it('reloads the statistics once for the fleet when every process wrote before the tick', async () => {
    const { nodes, oracle, summary } = memoryCluster(3, { statsMaxStaleness: '1h' })
    const records = statisticsRecords(nodes)
    const previous = await oracle.getTaskStatistics()
    for (const node of nodes) await node.service.getTaskStatistics()
    expect(statsLoads(nodes)).toBe(1)
    for (const [i, node] of nodes.entries()) await node.service.cancelTask(summary.activeTaskIds[i] as string)
    await nextMillisecond()
    const [head, ...rest] = nodes as [Node, ...Node[]]
    await head.service.flushStatistics()
    await settle()
    const truth = await oracle.getTaskStatistics()
    // The invalidation is soft: every reader gets the previous statistics at once, while one reload runs.
    for (const node of nodes) expect(await node.service.getTaskStatistics()).toEqual(previous)
    for (const node of nodes) await vi.waitFor(async () => expect(await node.service.getTaskStatistics()).toEqual(truth))
    expect(statsLoads(nodes)).toBe(2)
    // The others' ticks find their writes covered by the first invalidation: the reload stays.
    for (const node of rest) await node.service.flushStatistics()
    await settle()
    for (const node of nodes) expect(await node.service.getTaskStatistics()).toEqual(truth)
    expect(statsLoads(nodes)).toBe(2)
    expect(records).toEqual([1, 0, 0])
  })

  it('invalidates again for a write made after another process invalidated', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: '1h' })
    const [a, b] = nodes as [Node, Node]
    const records = statisticsRecords(nodes)
    await a.service.cancelTask(summary.activeTaskIds[0] as string)
    await b.service.cancelTask(summary.activeTaskIds[1] as string)
    await nextMillisecond()
    await a.service.flushStatistics()
    await settle()
    await vi.waitFor(async () => expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
    // b's next write comes after a's invalidation: a's does not cover it.
    await nextMillisecond()
    await b.service.cancelTask(summary.activeTaskIds[2] as string)
    await settle()
    expect(await a.service.getTaskStatistics()).not.toEqual(await oracle.getTaskStatistics())
    await b.service.flushStatistics()
    await settle()
    await vi.waitFor(async () => expect(await a.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
    await vi.waitFor(async () => expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
    expect(records).toEqual([1, 1])
  })

  it('a pending tick covers every write marked before it, and each flush reads the record once', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: '1h' })
    const [a, b] = nodes as [Node, Node]
    for (const id of summary.activeTaskIds.slice(0, 3)) await a.service.cancelTask(id)
    for (const id of summary.activeTaskIds.slice(3, 6)) await b.service.cancelTask(id)
    await nextMillisecond()
    await a.service.flushStatistics()
    await b.service.flushStatistics()
    // Nothing pending: no tick, no read of the record.
    await b.service.flushStatistics()
    expect(recordLookups(a)).toBe(1)
    expect(recordLookups(b)).toBe(1)
    await settle()
    expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics())
  })

  it('with statsMaxStaleness 0 invalidates before every write resolves, with no record', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: 0 })
    const [a, b] = nodes as [Node, Node]
    const records = statisticsRecords(nodes)
    for (const [i, id] of summary.activeTaskIds.slice(0, 4).entries()) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a]
      await reader.service.getTaskStatistics()
      await writer.service.cancelTask(id)
      await settle()
      expect(await reader.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics())
      expect(await writer.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics())
    }
    expect(records).toEqual([2, 2])
    expect(recordLookups(a) + recordLookups(b)).toBe(0)
  })

  it('logs a failed tick instead of rejecting', async () => {
    const { repo, summary } = seededRepository()
    const cache = createTieredCache({ l2: memoryStore(), l2Timeout: '5s' })
    const warn = vi.fn()
    const logger: Logger = { debug: () => {}, info: () => {}, warn, error: () => {} }
    const service = createCachedTaskService({ cache, repository: repo, statsMaxStaleness: '1h', maintenanceInterval: false, logger })
    await service.cancelTask(summary.activeTaskIds[0] as string)
    await cache.close()
    await expect(service.flushStatistics()).resolves.toBeUndefined()
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: expect.anything() }), 'task statistics invalidation failed')
    await service.close()
  })
})

// The debounce itself, on one cache standing for the shared L2, with its clock in hand: two
// instances are two processes' debounces.
describe('StatisticsDebounce', () => {
  function debounces(count: number, now: () => number) {
    const cache = createTieredCache({ l2: memoryStore(), l2Timeout: '5s' })
    onTestFinished(() => cache.close())
    const families = createTaskFamilies(cache)
    const invalidations = statisticsInvalidationFamily(cache, 1000)
    const debug = vi.fn()
    const log: Logger = { debug, info: () => {}, warn: () => {}, error: () => {} }
    const applied = Array.from({ length: count }, () => 0)
    const list = applied.map((_, i) => new StatisticsDebounce(families.stats, invalidations, 1000, log, () => (applied[i] = (applied[i] ?? 0) + 1), now))
    return { list, applied, debug }
  }

  it('does not take an invalidation begun in the millisecond of its last write as covering it', async () => {
    let t = 20_000
    const { list, applied } = debounces(2, () => t)
    const [a, b] = list as [StatisticsDebounce, StatisticsDebounce]
    await a.changed()
    await b.changed()
    await a.flush()
    await b.flush()
    expect(applied).toEqual([1, 1])
    // One millisecond later, b's next write is covered by a's next invalidation.
    await b.changed()
    t++
    await a.changed()
    await a.flush()
    await b.flush()
    expect(applied).toEqual([2, 1])
  })

  it('leaves a write marked once its tick was due (the timer late) to the next tick', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    let t = 10_000
    const { list, applied, debug } = debounces(2, () => t)
    const [a, b] = list as [StatisticsDebounce, StatisticsDebounce]
    await a.changed() // due at 10 500
    await b.changed()
    t = 10_300
    await b.flush() // b invalidates at 10 300: after a's first write
    expect(applied).toEqual([0, 1])
    t = 10_600
    await a.changed() // after 10 500, before a's timer ran
    t = 10_650
    await vi.advanceTimersByTimeAsync(500)
    // The 10 500 tick covers the 10 000 write, which b's invalidation covered: nothing to do.
    await vi.waitFor(() => expect(debug).toHaveBeenCalledWith(expect.anything(), 'task statistics invalidation already made by another process'))
    expect(applied).toEqual([0, 1])
    // The 11 000 tick covers the 10 600 write, which it did not.
    t = 11_000
    await vi.advanceTimersByTimeAsync(350)
    await vi.waitFor(() => expect(applied).toEqual([1, 1]))
  })
})
