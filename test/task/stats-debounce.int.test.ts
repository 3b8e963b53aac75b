import { createTieredCache, type TieredCache } from '@tiercache/core'
import { redisBus, redisStore } from '@tiercache/redis'
import { sharedRedis, type SharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createCachedTaskService, type CachedTaskService, type CachedTaskServiceOptions, type InvalidationRecord } from '@tiercache/task'
import { createSqliteTaskRepository, type SqliteTaskRepository } from '@tiercache/task/sqlite'
import { seededDatabase } from './helpers.js'

interface Service {
  cache: TieredCache
  repo: SqliteTaskRepository
  service: CachedTaskService
  /** Statistics invalidations this service applied itself. */
  applied: number
}

/** `count` services, each with its own cache (L1, redisStore, redisBus) and SQLite connection, over one Redis namespace and one database file. */
async function services(count: number, redis: SharedRedis, filename: string, options: Partial<CachedTaskServiceOptions>): Promise<Service[]> {
  const out: Service[] = []
  for (let i = 0; i < count; i++) {
    const repo = createSqliteTaskRepository({ filename })
    const cache = createTieredCache({
      l2: redisStore({ redis: redis.url, namespace: redis.namespace }),
      bus: redisBus({ redis: redis.url, namespace: redis.namespace, instanceId: `s${i}-${process.pid}` }),
      l2Timeout: '2s',
    })
    const service = createCachedTaskService({ cache, repository: repo, maintenanceInterval: false, ...options })
    onTestFinished(async () => {
      await service.close()
      await cache.close()
      await repo.close()
    })
    const s: Service = { cache, repo, service, applied: 0 }
    service.onInvalidated((r: InvalidationRecord) => {
      if (r.write === 'statistics') s.applied++
    })
    out.push(s)
  }
  for (const s of out) expect(await s.cache.ready({ timeout: '10s' })).toEqual({ l2: true, bus: true })
  return out
}

const statsLoads = (list: readonly Service[]) => list.reduce((n, s) => n + (s.cache.stats().families['task:stats@1']?.loaderCalls ?? 0), 0)

/** Resolves once the wall clock has moved past the current millisecond: ticks compare times in ms. */
async function nextMillisecond(): Promise<void> {
  const now = Date.now()
  while (Date.now() <= now) await new Promise((resolve) => setTimeout(resolve, 1))
}

describe('statistics invalidation across processes (SQLite + Redis)', () => {
  it('one tick reloads the statistics once for the fleet, however many processes wrote before it', async () => {
    const redis = sharedRedis('task-stats-tick')
    const { filename, oracle, summary } = seededDatabase()
    // A window long enough that ticks run only when flushed.
    const list = await services(3, redis, filename, { statsMaxStaleness: '1h' })
    const previous = await oracle.getTaskStatistics()
    for (const s of list) await s.service.getTaskStatistics()
    expect(statsLoads(list)).toBe(1)
    for (const [i, s] of list.entries()) await s.service.cancelTask(summary.activeTaskIds[i] as string)
    await nextMillisecond()
    const [head, ...rest] = list as [Service, ...Service[]]
    await head.service.flushStatistics()
    // The first invalidation's message reaches the others; then every process reads the reload.
    await vi.waitFor(() => expect(list.map((s) => s.service.families.stats.peek('global'))).toEqual([undefined, undefined, undefined]), { timeout: 10_000 })
    const truth = await oracle.getTaskStatistics()
    // Soft: every reader gets the previous statistics at once (none waits on the query) while one reload runs.
    for (const s of list) expect(await s.service.getTaskStatistics()).toEqual(previous)
    for (const s of list) await vi.waitFor(async () => expect(await s.service.getTaskStatistics()).toEqual(truth), { timeout: 10_000 })
    expect(statsLoads(list)).toBe(2)
    // The others' ticks find their writes covered: the reload stays, in L2 and in every L1.
    for (const s of rest) await s.service.flushStatistics()
    expect(list.map((s) => s.applied)).toEqual([1, 0, 0])
    for (const s of list) expect(await s.service.getTaskStatistics()).toEqual(truth)
    expect(statsLoads(list)).toBe(2)

    // A write after that invalidation is not covered by it: its own tick invalidates again.
    const [first, second] = list as [Service, Service]
    await nextMillisecond()
    await second.service.cancelTask(summary.activeTaskIds[5] as string)
    await nextMillisecond()
    await first.service.flushStatistics()
    await second.service.flushStatistics()
    expect(list.map((s) => s.applied)).toEqual([1, 1, 0])
    await vi.waitFor(() => expect(first.service.families.stats.peek('global')).toBeUndefined(), { timeout: 10_000 })
    const latest = await oracle.getTaskStatistics()
    await vi.waitFor(async () => expect(await first.service.getTaskStatistics()).toEqual(latest), { timeout: 10_000 })
  })

  it('the statistics reflect every write once the window passed, with ticks on their timers', async () => {
    const redis = sharedRedis('task-stats-timer')
    const { filename, oracle, summary } = seededDatabase()
    const list = await services(3, redis, filename, { statsMaxStaleness: '300ms' })
    for (const s of list) await s.service.getTaskStatistics()
    const ids = summary.activeTaskIds.slice(0, 9)
    await Promise.all(list.map(async (s, i) => {
      for (const id of ids.filter((_, j) => j % list.length === i)) await s.service.cancelTask(id)
    }))
    const truth = await oracle.getTaskStatistics()
    await vi.waitFor(async () => {
      for (const s of list) expect(await s.service.getTaskStatistics()).toEqual(truth)
    }, { timeout: 20_000, interval: 100 })
  })

  it('flushes racing on every process leave every process reading the database', async () => {
    const redis = sharedRedis('task-stats-race')
    const { filename, oracle, summary } = seededDatabase()
    const list = await services(3, redis, filename, { statsMaxStaleness: '1h' })
    for (let round = 0; round < 3; round++) {
      for (const s of list) await s.service.getTaskStatistics()
      await Promise.all(list.map((s, i) => s.service.cancelTask(summary.activeTaskIds[round * list.length + i] as string)))
      await Promise.all(list.map(async (s) => {
        await s.service.flushStatistics()
        await s.service.getTaskStatistics()
      }))
      const truth = await oracle.getTaskStatistics()
      await vi.waitFor(async () => {
        for (const s of list) expect(await s.service.getTaskStatistics()).toEqual(truth)
      }, { timeout: 10_000 })
    }
  })
})
