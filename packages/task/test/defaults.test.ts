// The original design's defaults, pinned by behaviour: how long each family's entries serve
// before the database is asked again, and how often the maintenance run comes.
import { createTieredCache, memoryBackend, memoryStore, type Clock } from '@tiercache/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  DEFAULT_TASK_TTLS,
  TASK_FAMILY_NAMES,
  createCachedTaskService,
  resolveCachedTaskServiceOptions,
  type CachedTaskService,
  type TaskRepository,
} from '@tiercache/task'
import { seededRepository } from './helpers.js'
import { settle } from './service-helpers.js'

const MINUTE = 60_000
/** The core's default jitter: an entry lives between 90% and 100% of its TTL. */
const DEFAULT_JITTER = 0.1

function manualClock(start: number): Clock & { set(ms: number): void } {
  let now = start
  return { now: () => now, set: (ms) => void (now = ms) }
}

/** Calls per repository method: each one is a database query. */
function counted(repository: TaskRepository): { repository: TaskRepository; calls: Map<string, number> } {
  const calls = new Map<string, number>()
  const proxy = new Proxy(repository, {
    get(target, name, receiver) {
      const member: unknown = Reflect.get(target, name, receiver)
      if (typeof member !== 'function' || typeof name !== 'string') return member
      return (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1)
        return (member as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { repository: proxy, calls }
}

/** A service on the default options, with a clock the test moves, over a memory L2 it can look into. */
function serviceAt(start: number) {
  const clock = manualClock(start)
  const backend = memoryBackend()
  const { repo, summary } = seededRepository()
  const { repository, calls } = counted(repo)
  const cache = createTieredCache({ l2: memoryStore({ backend, clock, namespace: 'defaults' }), clock })
  const service = createCachedTaskService({ cache, repository, maintenanceInterval: false })
  onTestFinished(async () => {
    await service.close()
    await cache.close()
  })
  return { clock, backend, summary, service, calls }
}

type Family = Exclude<keyof typeof DEFAULT_TASK_TTLS, 'finished'>
const reads: Record<Family, { minutes: number; method: string; read: (s: CachedTaskService, taskId: string, hostId: string) => Promise<unknown> }> = {
  status: { minutes: 5, method: 'getTaskStatusView', read: (s, id) => s.getTaskStatus(id) },
  progress: { minutes: 2, method: 'getTaskProgressView', read: (s, id) => s.getTaskProgress(id) },
  stats: { minutes: 10, method: 'getTaskStatistics', read: (s) => s.getTaskStatistics() },
  list: { minutes: 3, method: 'listTaskIds', read: (s) => s.getTasks({ page: 1, size: 10 }) },
  hostTasks: { minutes: 5, method: 'getHostTasksPage', read: (s, _id, host) => s.getHostTasks(host) },
  execution: { minutes: 1, method: 'getTaskExecutionSummary', read: (s, id) => s.getTaskExecution(id) },
}

describe('the task families keep the original design\'s TTLs', () => {
  it('declares status 5m, progress 2m, stats 10m, list 3m, host 5m, execution 1m', () => {
    expect(DEFAULT_TASK_TTLS).toEqual({ status: '5m', progress: '2m', stats: '10m', list: '3m', hostTasks: '5m', execution: '1m', finished: '1h' })
  })

  it('a finished task\'s status, progress and execution views live ttl.finished (1h); a running one\'s their family TTL', async () => {
    const t0 = Date.UTC(2026, 0, 1)
    const { backend, summary, service, calls } = serviceAt(t0)
    const page = await service.getTasks({ page: 1, size: 100 })
    const finished = page.items.find((item) => item.status === 'success' || item.status === 'failed' || item.status === 'cancelled')
    expect(finished).toBeDefined()
    const running = summary.activeTaskIds[0] as string
    for (const id of [finished!.taskId, running]) {
      await service.getTaskStatus(id)
      await service.getTaskProgress(id)
      await service.getTaskExecution(id)
    }
    await settle()
    const expiry = (family: string, id: string) => {
      const found = [...backend.values].find(([key]) => key.startsWith(`defaults:${family}@`) && key.includes(id))
      expect(found, `${family} ${id}`).toBeDefined()
      return (found![1].expiresAt - t0) / MINUTE
    }
    for (const family of ['task:status', 'task:progress', 'task:execution']) {
      expect(expiry(family, finished!.taskId)).toBeGreaterThan(50)
      expect(expiry(family, finished!.taskId)).toBeLessThanOrEqual(60)
    }
    expect(expiry('task:status', running)).toBeLessThanOrEqual(5)
    expect(expiry('task:progress', running)).toBeLessThanOrEqual(2)
    expect(expiry('task:execution', running)).toBeLessThanOrEqual(1)
    expect(calls.get('getTaskProgressView')).toBe(2)
  })

  it('a list page loads its missing items in one repository query (getOrSetMany), and none once they are cached', async () => {
    const { service, calls } = serviceAt(Date.UTC(2026, 0, 1))
    const status = await service.getTasks({ page: 1, size: 5 })
    await service.getTaskStatus(status.items[0]!.taskId)
    const page = await service.getTasks({ page: 1, size: 50 })
    expect(page.items).toHaveLength(50)
    expect(calls.get('getTaskStatusViews')).toBe(2)
    await service.getTasks({ page: 1, size: 50 })
    expect(calls.get('getTaskStatusViews')).toBe(2)
    expect(calls.get('getTaskStatusView') ?? 0).toBe(0)
  })

  it.each(Object.keys(reads) as Family[])('%s: served from the cache until nine tenths of its TTL, loaded again at its TTL', async (family) => {
    const { minutes, method, read } = reads[family]
    const ttl = minutes * MINUTE
    const t0 = Date.UTC(2026, 0, 1)
    const { clock, backend, summary, service, calls } = serviceAt(t0)
    const taskId = summary.activeTaskIds[0] as string
    const hostId = summary.hostIds[0] as string

    await read(service, taskId, hostId)
    await settle()
    expect(calls.get(method)).toBe(1)

    // What landed in L2 for this family expires within (90% of the TTL, the TTL]: jitter only shortens.
    const name = TASK_FAMILY_NAMES[family]
    const entries = [...backend.values].filter(([key]) => key.startsWith(`defaults:${name}@`))
    expect(entries.length).toBeGreaterThan(0)
    for (const [, entry] of entries) {
      expect(entry.expiresAt - t0).toBeLessThanOrEqual(ttl)
      expect(entry.expiresAt - t0).toBeGreaterThanOrEqual(Math.floor(ttl * (1 - DEFAULT_JITTER)))
    }

    clock.set(t0 + Math.floor(ttl * (1 - DEFAULT_JITTER)) - 1)
    await read(service, taskId, hostId)
    expect(calls.get(method)).toBe(1)

    clock.set(t0 + ttl)
    await read(service, taskId, hostId)
    expect(calls.get(method)).toBe(2)
  })

  it('with the default jitter no entry outlives its TTL, over many entries', async () => {
    const t0 = Date.UTC(2026, 0, 1)
    const { clock, backend, summary, service, calls } = serviceAt(t0)
    const ids = summary.activeTaskIds.slice(0, 30)
    for (const id of ids) await service.getTaskStatus(id)
    await settle()
    const expiries = [...backend.values].filter(([key]) => key.startsWith('defaults:task:status@')).map(([, e]) => e.expiresAt - t0)
    expect(expiries).toHaveLength(ids.length)
    expect(Math.max(...expiries)).toBeLessThanOrEqual(5 * MINUTE)
    // The jitter spreads expiries (so that entries written together do not expire together).
    expect(new Set(expiries).size).toBeGreaterThan(1)

    clock.set(t0 + 5 * MINUTE)
    const before = calls.get('getTaskStatusView') ?? 0
    for (const id of ids) await service.getTaskStatus(id)
    expect((calls.get('getTaskStatusView') ?? 0) - before).toBe(ids.length)
  })
})

describe('the maintenance run', () => {
  it('defaults to every 30 minutes', async () => {
    const { repo } = seededRepository()
    const cache = createTieredCache()
    onTestFinished(() => cache.close())
    expect(resolveCachedTaskServiceOptions({ cache, repository: repo }).maintenanceIntervalMs).toBe(30 * MINUTE)

    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const runs: string[] = []
    const logger = {
      debug() {},
      info: (_obj: object, msg?: string) => void (msg === 'task cache maintenance' && runs.push(msg)),
      warn() {},
      error() {},
    }
    const service = createCachedTaskService({ cache, repository: repo, logger })
    onTestFinished(() => service.close())
    vi.advanceTimersByTime(30 * MINUTE - 1)
    await settle()
    expect(runs).toHaveLength(0)
    vi.advanceTimersByTime(1)
    await vi.waitFor(() => expect(runs).toHaveLength(1))
  })
})
