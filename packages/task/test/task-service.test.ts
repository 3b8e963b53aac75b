import { createTieredCache, InvalidOptionsError, memoryStore, type RemoteStore } from '@tiercache/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  InvalidTaskQueryError,
  InvalidTaskTransitionError,
  TaskNotFoundError,
  createCachedTaskService,
  createTaskCacheService,
  parseHostTasksQuery,
  parseTaskListQuery,
  type CachedTaskService,
  type InvalidationRecord,
  type TaskStatusView,
} from '@tiercache/task'
import { prng } from '@tiercache/task/sqlite'
import { seededRepository } from './helpers.js'
import { memoryCluster, queriesOf, settle, type Node } from './service-helpers.js'

const loaderCalls = (node: Node, family: string) => node.cache.stats().families[`${family}@1`]?.loaderCalls ?? 0

describe('TaskCacheService', () => {
  function service() {
    const cache = createTieredCache({ l2: memoryStore(), l2Timeout: '5s' })
    onTestFinished(() => cache.close())
    return createTaskCacheService({ cache })
  }

  const view: TaskStatusView = {
    taskId: 'task-000001-aaaaaa',
    name: 'rollout',
    status: 'running',
    progress: 0.5,
    createdAt: '2024-05-01T10:00:00.000Z',
    startedAt: '2024-05-01T10:00:01.500Z',
    finishedAt: null,
    hosts: { total: 2, success: 1, failed: 0, running: 1, pending: 0, timeout: 0, cancelled: 0 },
  }

  it('caches and returns task status, progress and statistics; misses are undefined', async () => {
    const tasks = service()
    expect(await tasks.getCachedTaskStatus(view.taskId)).toBeUndefined()
    await tasks.cacheTaskStatus(view.taskId, view)
    expect(await tasks.getCachedTaskStatus(view.taskId)).toEqual(view)
    const progress = { ...view, hostDetails: [] }
    await tasks.cacheTaskProgress(view.taskId, progress)
    expect(await tasks.getCachedTaskProgress(view.taskId)).toEqual(progress)
    const stats = {
      totalTasks: 1,
      tasksByStatus: { pending: 0, running: 1, success: 0, failed: 0, cancelled: 0 },
      totalExecutions: 2,
      executionsByStatus: { pending: 0, running: 1, success: 1, failed: 0, timeout: 0, cancelled: 0 },
      hosts: 2,
    }
    expect(await tasks.getCachedTaskStatistics()).toBeUndefined()
    await tasks.cacheTaskStatistics(stats)
    expect(await tasks.getCachedTaskStatistics()).toEqual(stats)
  })

  it('invalidates one task, one host, or everything', async () => {
    const tasks = service()
    const { status, progress, execution, list, hostTasks, stats } = tasks.families
    const q = parseTaskListQuery({})
    const hq = parseHostTasksQuery({})
    const fill = async () => {
      await tasks.cacheTaskStatus(view.taskId, view)
      await tasks.cacheTaskStatus('task-2', { ...view, taskId: 'task-2' })
      await progress.set(view.taskId, { ...view, hostDetails: [] })
      await execution.set(view.taskId, { taskId: view.taskId, status: 'running', startedAt: null, finishedAt: null, durationMs: null, hosts: view.hosts, exitCodes: {} })
      await list.set(q, { total: 1, ids: [view.taskId] })
      await hostTasks.set({ hostId: 'h-1', query: hq }, { hostId: 'h-1', page: 1, pageSize: 20, total: 0, items: [] })
      await hostTasks.set({ hostId: 'h-2', query: hq }, { hostId: 'h-2', page: 1, pageSize: 20, total: 0, items: [] })
      await stats.set('global', { totalTasks: 0, tasksByStatus: { pending: 0, running: 0, success: 0, failed: 0, cancelled: 0 }, totalExecutions: 0, executionsByStatus: { pending: 0, running: 0, success: 0, failed: 0, timeout: 0, cancelled: 0 }, hosts: 0 })
    }
    await fill()
    await tasks.invalidateTaskCache(view.taskId, { hostIds: ['h-1'] })
    expect(await status.get(view.taskId)).toBeUndefined()
    expect(await progress.get(view.taskId)).toBeUndefined()
    expect(await execution.get(view.taskId)).toBeUndefined()
    expect(await list.get(q)).toBeUndefined()
    expect(await hostTasks.get({ hostId: 'h-1', query: hq })).toBeUndefined()
    expect(await hostTasks.get({ hostId: 'h-2', query: hq })).toBeDefined()
    expect(await status.get('task-2')).toBeDefined()
    // The invalidation map's row for a task that may have changed in any way includes the statistics.
    expect(await stats.get('global')).toBeUndefined()

    await fill()
    await tasks.invalidateHostCache('h-2')
    expect(await hostTasks.get({ hostId: 'h-2', query: hq })).toBeUndefined()
    expect(await hostTasks.get({ hostId: 'h-1', query: hq })).toBeDefined()
    expect(await status.get(view.taskId)).toBeDefined()
    // A host's executions do not move list membership: the map leaves the list pages cached.
    expect(await list.get(q)).toBeDefined()
    expect(await stats.get('global')).toBeUndefined()

    await fill()
    await tasks.invalidateAllTaskCache()
    for (const value of [
      await status.get(view.taskId),
      await status.get('task-2'),
      await progress.get(view.taskId),
      await execution.get(view.taskId),
      await list.get(q),
      await hostTasks.get({ hostId: 'h-1', query: hq }),
      await stats.get('global'),
    ]) {
      expect(value).toBeUndefined()
    }
  })

  it('rejects invalid ids', async () => {
    const tasks = service()
    await expect(async () => tasks.getCachedTaskStatus('a b')).rejects.toBeInstanceOf(InvalidTaskQueryError)
    await expect(async () => tasks.invalidateHostCache('')).rejects.toThrow(/hostId/)
  })

  it('uses the design\'s TTLs unless overridden, and refuses bad ones', () => {
    const cache = createTieredCache()
    onTestFinished(() => cache.close())
    expect(() => createTaskCacheService({ cache, ttl: { status: -5 } })).toThrow(InvalidOptionsError)
    expect(() => createTaskCacheService({ cache, ttl: { nope: '1m' } as never })).toThrow(/ttl/)
  })
})

describe('TaskService cache integration', () => {
  it('serves repeated reads from the cache (hit) after one database read (miss)', async () => {
    const { nodes, summary } = memoryCluster(1)
    const [{ service, repo }] = nodes as [Node]
    const id = summary.activeTaskIds[0] as string
    const reads: [string, () => Promise<unknown>][] = [
      ['status', () => service.getTaskStatus(id)],
      ['progress', () => service.getTaskProgress(id)],
      ['execution', () => service.getTaskExecution(id)],
      ['list', () => service.getTasks({ status: 'running' })],
      ['host', () => service.getHostTasks(summary.hostIds[0] as string)],
      ['stats', () => service.getTaskStatistics()],
    ]
    for (const [name, read] of reads) {
      const miss = await queriesOf(repo, read)
      expect(miss.queries, name).toBeGreaterThan(0)
      const hit = await queriesOf(repo, read)
      expect(hit.queries, name).toBe(0)
      expect(hit.value, name).toEqual(miss.value)
    }
    const stats = await service.getCacheStatistics()
    expect(stats.families['task:status']?.hitRate).toBeGreaterThan(0)
    expect(stats.families['task:list']?.entries).toBe(1)
    expect(stats.l2.available).toBe(true)
    expect(stats.degraded).toBe(false)
  })

  it('answers reads exactly as the repository does', async () => {
    const { nodes, oracle, summary } = memoryCluster(1)
    const { service } = nodes[0] as Node
    const id = summary.activeTaskIds[3] as string
    const host = summary.hostIds[2] as string
    expect(await service.getTaskStatus(id)).toEqual(await oracle.getTaskStatusView(id))
    expect(await service.getTaskProgress(id)).toEqual(await oracle.getTaskProgressView(id))
    expect(await service.getTaskExecution(id)).toEqual(await oracle.getTaskExecutionSummary(id))
    for (const q of [{}, { page: 2, size: 7 }, { status: 'running' as const }, { hostId: host, sort: 'name:desc' as const }]) {
      expect(await service.getTasks(q)).toEqual(await oracle.getTaskListPage(parseTaskListQuery(q)))
    }
    expect(await service.getHostTasks(host, { size: 5 })).toEqual(await oracle.getHostTasksPage(host, parseHostTasksQuery({ size: 5 })))
    expect(await service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics())
  })

  it('loads the missing items of a cached list page in one query', async () => {
    const { nodes, oracle } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    const page = await service.getTasks({ size: 10 })
    const ids = page.items.map((t) => t.taskId)
    for (const id of ids.slice(0, 4)) await service.families.status.delete(id)
    const again = await queriesOf(repo, () => service.getTasks({ size: 10 }))
    expect(again.queries).toBe(1)
    expect(again.value).toEqual(await oracle.getTaskListPage(parseTaskListQuery({ size: 10 })))
    expect((await queriesOf(repo, () => service.getTasks({ size: 10 }))).queries).toBe(0)
  })

  it('caches an unknown task as absent, and drops that answer when a task gets the id', async () => {
    const { nodes, summary } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    expect(await service.getTaskStatus('task-unknown')).toBeNull()
    expect((await queriesOf(repo, () => service.getTaskStatus('task-unknown'))).queries).toBe(0)
    expect(await service.getTaskProgress('task-unknown')).toBeNull()
    expect(await service.getTaskExecution('task-unknown')).toBeNull()
    await expect(service.startTask('task-unknown')).rejects.toBeInstanceOf(TaskNotFoundError)
    const records: InvalidationRecord[] = []
    service.onInvalidated((r) => records.push(r))
    const task = await service.createTask({ name: 'n', command: 'c', hostIds: [summary.hostIds[0] as string] })
    expect(records[0]).toMatchObject({ write: 'createTask', taskId: task.id, taskViews: true })
    expect((await service.getTaskStatus(task.id))?.status).toBe('pending')
  })

  it('gives one cache entry to equivalent list queries, and none to invalid ones', async () => {
    const { nodes, store } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    await service.getTasks({})
    await settle()
    const keys = store.keys().length
    for (const q of [{ page: 1 }, { size: 20, page: 1 }, { sort: 'createdAt:desc', page: '1', size: '20' }] as const) {
      expect((await queriesOf(repo, () => service.getTasks(q))).queries).toBe(0)
    }
    for (const bad of [{ page: 0 }, { size: 1000 }, { status: 'nope' }, { hostId: '*' }, { extra: 1 }]) {
      await expect(async () => service.getTasks(bad as never)).rejects.toBeInstanceOf(InvalidTaskQueryError)
    }
    await expect(async () => service.getHostTasks('h 1')).rejects.toThrow(/hostId/)
    await expect(async () => service.getTasks({ size: 0 })).rejects.toThrow(/size/)
    await settle()
    expect(store.keys().length).toBe(keys)
  })

  it('counts its database queries for metrics: a miss queries, a hit does not', async () => {
    const { nodes, summary } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    const id = summary.activeTaskIds[0] as string
    const before = service.databaseQueries
    expect(before).toBe(repo.queryCount)
    await service.getTaskStatus(id)
    const afterMiss = service.databaseQueries
    expect(afterMiss).toBeGreaterThan(before)
    await service.getTaskStatus(id)
    expect(service.databaseQueries).toBe(afterMiss)
  })

  it('validates write inputs before touching the database', async () => {
    const { nodes, summary } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    const before = repo.queryCount
    await expect(service.createTask({ name: '', command: 'x', hostIds: ['h-0001'] })).rejects.toThrow(/name/)
    await expect(service.createTask({ name: 'n', command: 'x', hostIds: [] })).rejects.toThrow(/hostIds/)
    await expect(service.updateTaskStatus(summary.activeTaskIds[0] as string, 'done' as never)).rejects.toThrow(/status/)
    await expect(service.recordCommandResult(summary.activeTaskIds[0] as string, 'h-0001', { status: 'weird' as never })).rejects.toThrow(/status/)
    expect(repo.queryCount).toBe(before)
  })

  // ---------------------------------------------------------------- the invalidation map
  type Expect = { taskViews: boolean | 'n/a'; lists: boolean; hosts: 'all' | 'reporter' | 'none'; stats: boolean }

  async function checkRow(
    setup: (a: CachedTaskService, ctx: ReturnType<typeof memoryCluster>) => Promise<{ taskId: string; hostIds: readonly string[]; reporter?: string; write: () => Promise<unknown> }>,
    expected: Expect,
  ) {
    const ctx = memoryCluster(2, { statsMaxStaleness: 0 })
    const [a, b] = ctx.nodes as [Node, Node]
    const { taskId, hostIds, reporter, write } = await setup(a.service, ctx)
    const unrelatedHost = ctx.summary.hostIds.find((h) => !hostIds.includes(h)) as string
    const otherTask = ctx.summary.activeTaskIds.find((t) => t !== taskId) as string
    const o = ctx.oracle
    const views: { name: string; family: string; read: () => Promise<unknown>; truth: () => Promise<unknown>; expect: boolean | 'n/a' }[] = [
      { name: 'status', family: 'task:status', read: () => b.service.getTaskStatus(taskId), truth: () => o.getTaskStatusView(taskId), expect: expected.taskViews },
      { name: 'progress', family: 'task:progress', read: () => b.service.getTaskProgress(taskId), truth: () => o.getTaskProgressView(taskId), expect: expected.taskViews },
      { name: 'execution', family: 'task:execution', read: () => b.service.getTaskExecution(taskId), truth: () => o.getTaskExecutionSummary(taskId), expect: expected.taskViews },
      { name: 'other task status', family: 'task:status', read: () => b.service.getTaskStatus(otherTask), truth: () => o.getTaskStatusView(otherTask), expect: false },
      ...[{}, { status: 'running' as const }, { status: 'pending' as const }, { hostId: hostIds[0] as string }].map((q) => ({
        name: `list ${JSON.stringify(q)}`,
        family: 'task:list',
        read: () => b.service.getTasks(q),
        truth: () => o.getTaskListPage(parseTaskListQuery(q)),
        expect: expected.lists,
      })),
      ...hostIds.map((h) => ({
        name: `host ${h}`,
        family: 'host:tasks',
        read: () => b.service.getHostTasks(h),
        truth: () => o.getHostTasksPage(h, parseHostTasksQuery({})),
        expect: expected.hosts === 'all' || (expected.hosts === 'reporter' && h === reporter),
      })),
      { name: 'unrelated host', family: 'host:tasks', read: () => b.service.getHostTasks(unrelatedHost), truth: () => o.getHostTasksPage(unrelatedHost, parseHostTasksQuery({})), expect: false },
      { name: 'statistics', family: 'task:stats', read: () => b.service.getTaskStatistics(), truth: () => o.getTaskStatistics(), expect: expected.stats },
    ]
    for (const v of views) await v.read()
    await settle()
    for (const v of views) {
      const before = loaderCalls(b, v.family)
      await v.read()
      expect(loaderCalls(b, v.family), `${v.name} is cached before the write`).toBe(before)
    }
    await write()
    await settle()
    for (const v of views) {
      const before = loaderCalls(b, v.family)
      const value = await v.read()
      expect(value, `${v.name} on the other process equals the database`).toEqual(await v.truth())
      if (v.expect !== 'n/a') expect(loaderCalls(b, v.family) > before, `${v.name} reloaded`).toBe(v.expect)
    }
  }

  it('row createTask: lists, the new task\'s hosts and statistics', async () => {
    await checkRow(async (a, { summary }) => {
      const hostIds = summary.hostIds.slice(0, 2) as string[]
      const holder = { taskId: 'task-none' }
      return {
        taskId: summary.activeTaskIds[0] as string,
        hostIds,
        write: async () => {
          holder.taskId = (await a.createTask({ name: 'new', command: 'deploy', hostIds })).id
        },
      }
    }, { taskViews: false, lists: true, hosts: 'all', stats: true })
  })

  it('row startTask: the task\'s views, lists, its hosts, statistics', async () => {
    await checkRow(async (a, { summary }) => {
      const hostIds = summary.hostIds.slice(3, 6) as string[]
      const task = await a.createTask({ name: 'to-start', command: 'deploy', hostIds })
      return { taskId: task.id, hostIds, write: () => a.startTask(task.id) }
    }, { taskViews: true, lists: true, hosts: 'all', stats: true })
  })

  it('row cancelTask: the task\'s views, lists, its hosts, statistics', async () => {
    await checkRow(async (a, { oracle, summary }) => {
      const taskId = summary.activeTaskIds.at(-1) as string
      return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => a.cancelTask(taskId) }
    }, { taskViews: true, lists: true, hosts: 'all', stats: true })
  })

  it('row updateTaskStatus (status changes): the task\'s views, lists, its hosts, statistics', async () => {
    await checkRow(async (a, { oracle, summary }) => {
      const taskId = summary.activeTaskIds.at(-2) as string
      return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => a.updateTaskStatus(taskId, 'failed') }
    }, { taskViews: true, lists: true, hosts: 'all', stats: true })
  })

  it('row updateTaskStatus (same status): the task\'s views only', async () => {
    await checkRow(async (a, { oracle, summary }) => {
      const taskId = summary.activeTaskIds.at(-2) as string
      return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => a.updateTaskStatus(taskId, 'running') }
    }, { taskViews: true, lists: false, hosts: 'none', stats: false })
  })

  it('row recordCommandResult (task keeps running): the task\'s views, the reporting host, statistics', async () => {
    await checkRow(async (a, { summary }) => {
      const hostIds = summary.hostIds.slice(6, 9) as string[]
      const task = await a.createTask({ name: 'results', command: 'deploy', hostIds })
      await a.startTask(task.id)
      const reporter = hostIds[1] as string
      return { taskId: task.id, hostIds, reporter, write: () => a.recordCommandResult(task.id, reporter, { status: 'success', exitCode: 0, output: 'ok' }) }
    }, { taskViews: true, lists: false, hosts: 'reporter', stats: true })
  })

  it('row recordCommandResult (last host, task finishes): the task\'s views, lists, its hosts, statistics', async () => {
    await checkRow(async (a, { summary }) => {
      const hostIds = summary.hostIds.slice(9, 11) as string[]
      const task = await a.createTask({ name: 'finishing', command: 'deploy', hostIds })
      await a.startTask(task.id)
      await a.recordCommandResult(task.id, hostIds[0] as string, { status: 'success', exitCode: 0 })
      return { taskId: task.id, hostIds, reporter: hostIds[1], write: () => a.recordCommandResult(task.id, hostIds[1] as string, { status: 'failed', exitCode: 2 }) }
    }, { taskViews: true, lists: true, hosts: 'all', stats: true })
  })

  // The operator's invalidations are rows of the same map: what they may have changed, not what a write reports.
  it('row invalidateTaskCache (operator): as a status change — the task\'s views, lists, its hosts, statistics', async () => {
    await checkRow(async (a, { oracle, summary }) => {
      const taskId = summary.activeTaskIds.at(-2) as string
      return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => a.invalidateTaskCache(taskId) }
    }, { taskViews: true, lists: true, hosts: 'all', stats: true })
  })

  it('row invalidateHostCache (operator): as the host\'s executions changing — its pages, statistics; lists stay', async () => {
    await checkRow(async (a, { oracle, summary }) => {
      const taskId = summary.activeTaskIds.at(-2) as string
      const hostIds = await oracle.getTaskHostIds(taskId)
      const host = hostIds[0] as string
      return { taskId, hostIds, reporter: host, write: () => a.invalidateHostCache(host) }
    }, { taskViews: false, lists: false, hosts: 'reporter', stats: true })
  })

  it('the operator\'s invalidations and the writes follow one map', async () => {
    const { nodes, oracle, summary } = memoryCluster(1, { statsMaxStaleness: 0 })
    const { service } = nodes[0] as Node
    const records: InvalidationRecord[] = []
    service.onInvalidated((r) => {
      if (r.write !== 'statistics') records.push(r)
    })
    const taskId = summary.activeTaskIds[0] as string
    const host = (await oracle.getTaskHostIds(taskId))[0] as string
    await service.invalidateTaskCache(taskId)
    await service.cancelTask(taskId)
    await service.invalidateHostCache(host)
    await service.recordCommandResult(taskId, host, { status: 'success', exitCode: 0 })
    const [byOperator, cancel, byHostOperator, result] = records as [InvalidationRecord, InvalidationRecord, InvalidationRecord, InvalidationRecord]
    const row = ({ taskViews, lists, hosts, statistics }: InvalidationRecord) => ({ taskViews, lists, hosts, statistics })
    expect(byOperator).toMatchObject({ write: 'invalidateTaskCache', taskId })
    expect(row(byOperator)).toEqual(row(cancel))
    // A late result on the cancelled task: recorded, the task keeps its status.
    expect(result).toMatchObject({ write: 'recordCommandResult', lists: false, hosts: [host] })
    expect(byHostOperator).toMatchObject({ write: 'invalidateHostCache' })
    expect(byHostOperator.taskId).toBeUndefined()
    expect(row(byHostOperator)).toEqual({ ...row(result), taskViews: false })
  })

  // ---------------------------------------------------------------- statistics staleness
  it('lets statistics lag a write by at most statsMaxStaleness, coalescing invalidations', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: '400ms' })
    const [a, b] = nodes as [Node, Node]
    const records: (InvalidationRecord & { at: number })[] = []
    a.service.onInvalidated((r) => records.push({ ...r, at: Date.now() }))
    await b.service.getTaskStatistics()
    const first = Date.now()
    for (const id of summary.activeTaskIds.slice(0, 5)) await a.service.cancelTask(id)
    const last = Date.now()
    // The timer (not a forced flush) brings the statistics up to date after the last write.
    await vi.waitFor(() => expect(records.some((r) => r.write === 'statistics' && r.at >= last)).toBe(true), { timeout: 10_000 })
    await settle()
    // Soft: the first read after the invalidation may still get the previous statistics, while the reload runs.
    await vi.waitFor(async () => expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
    expect(records.filter((r) => r.write === 'cancelTask')).toHaveLength(5)
    // Five writes, at most one invalidation per tick of the 200 ms grid they span (not one per write).
    const ticks = Math.floor(last / 200) - Math.floor(first / 200) + 1
    expect(records.filter((r) => r.write === 'statistics').length).toBeLessThanOrEqual(ticks)
  })

  it('applies a pending statistics invalidation on flushStatistics() and close()', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: '10m' })
    const [a, b] = nodes as [Node, Node]
    await b.service.getTaskStatistics()
    await a.service.cancelTask(summary.activeTaskIds[0] as string)
    await settle()
    expect(await b.service.getTaskStatistics()).not.toEqual(await oracle.getTaskStatistics())
    await a.service.flushStatistics()
    await settle()
    const previous = await b.service.getTaskStatistics()
    expect(previous).not.toEqual(await oracle.getTaskStatistics())
    await vi.waitFor(async () => expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
    await a.service.cancelTask(summary.activeTaskIds[1] as string)
    await a.service.close()
    await settle()
    await vi.waitFor(async () => expect(await b.service.getTaskStatistics()).toEqual(await oracle.getTaskStatistics()))
  })

  // ---------------------------------------------------------------- oracle
  it('oracle: after random writes, every process reads what the database holds', async () => {
    const { nodes, oracle, summary } = memoryCluster(3, { statsMaxStaleness: 0 }, { tasks: 200, hosts: 12, activeTasks: 40, maxHostsPerTask: 4 })
    const random = prng(99)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
    const taskIds = [...summary.activeTaskIds]
    const hosts = summary.hostIds
    for (let step = 0; step < 60; step++) {
      const writer = pick(nodes).service
      const taskId = pick(taskIds)
      const roll = random()
      try {
        if (roll < 0.6) {
          const hostIds = await oracle.getTaskHostIds(taskId)
          await writer.recordCommandResult(taskId, pick(hostIds), { status: pick(['running', 'success', 'failed', 'timeout'] as const), exitCode: Math.floor(random() * 3) })
        } else if (roll < 0.75) await writer.updateTaskStatus(taskId, pick(['running', 'success', 'failed'] as const))
        else if (roll < 0.85) await writer.cancelTask(taskId)
        else if (roll < 0.95) {
          const created = await writer.createTask({ name: `t${step}`, command: 'c', hostIds: [pick(hosts), ...new Set([pick(hosts)])].filter((h, i, a) => a.indexOf(h) === i) })
          taskIds.push(created.id)
        } else await writer.startTask(taskId)
      } catch (error) {
        if (!(error instanceof InvalidTaskTransitionError)) throw error
      }
      await settle()
      for (const node of nodes) {
        const s = node.service
        const id = pick(taskIds)
        const host = pick(hosts)
        const q = pick([{}, { status: 'running' as const }, { hostId: host }, { page: 2, size: 5 }])
        expect(await s.getTaskStatus(id), `step ${step} status`).toEqual(await oracle.getTaskStatusView(id))
        expect(await s.getTaskProgress(id), `step ${step} progress`).toEqual(await oracle.getTaskProgressView(id))
        expect(await s.getTaskExecution(id), `step ${step} execution`).toEqual(await oracle.getTaskExecutionSummary(id))
        expect(await s.getTasks(q), `step ${step} list`).toEqual(await oracle.getTaskListPage(parseTaskListQuery(q)))
        expect(await s.getHostTasks(host), `step ${step} host`).toEqual(await oracle.getHostTasksPage(host, parseHostTasksQuery({})))
        expect(await s.getTaskStatistics(), `step ${step} stats`).toEqual(await oracle.getTaskStatistics())
      }
    }
    const stats = await (nodes[0] as Node).service.getCacheStatistics()
    expect(stats.total.hitRate).toBeGreaterThan(0)
  })

  it('backgroundWrites: the writer reads its own writes at once; once its queue ran, every process reads the database', async () => {
    const { nodes, oracle, summary } = memoryCluster(2, { statsMaxStaleness: 0, backgroundWrites: true }, { tasks: 60, hosts: 6, activeTasks: 20, maxHostsPerTask: 3 })
    const [a, b] = nodes as [Node, Node]
    const ids = summary.activeTaskIds.slice(0, 6)
    for (const id of ids) {
      await a.service.getTaskStatus(id)
      await b.service.getTaskStatus(id)
      await b.service.getTasks({ status: 'running' })
    }
    for (const id of ids) {
      const hostIds = await oracle.getTaskHostIds(id)
      await a.service.recordCommandResult(id, hostIds[0] as string, { status: 'success', exitCode: 0 })
      await a.service.cancelTask(id)
      // Read at once, queue or not: the writer sees the database.
      expect(await a.service.getTaskStatus(id)).toEqual(await oracle.getTaskStatusView(id))
      expect(await a.service.getTasks({ status: 'running' })).toEqual(await oracle.getTaskListPage(parseTaskListQuery({ status: 'running' })))
    }
    while (a.cache.stats().writeQueueDepth > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    await settle()
    for (const node of nodes) {
      for (const id of ids) expect(await node.service.getTaskStatus(id)).toEqual(await oracle.getTaskStatusView(id))
      expect(await node.service.getTasks({ status: 'running' })).toEqual(await oracle.getTaskListPage(parseTaskListQuery({ status: 'running' })))
    }
    expect(() => createCachedTaskService({ cache: a.cache, repository: a.repo, backgroundWrites: 'yes' as never })).toThrow(/backgroundWrites/)
  })

  // ---------------------------------------------------------------- management
  it('warms up statistics, first list pages and running tasks', async () => {
    const { nodes, summary } = memoryCluster(1)
    const { service, repo } = nodes[0] as Node
    const report = await service.warmupCache()
    expect(report).toMatchObject({ tasks: 30, listPages: 2, statistics: true })
    const reads = await queriesOf(repo, async () => {
      await service.getTaskStatistics()
      await service.getTasks()
      await service.getTasks({ status: 'running' })
      for (const id of summary.activeTaskIds) await service.getTaskStatus(id)
    })
    expect(reads.queries).toBe(0)
  })

  it('warms up at start when asked', async () => {
    const { nodes } = memoryCluster(1, { warmupOnStart: true, logger: captureLogger().logger })
    const { service } = nodes[0] as Node
    await vi.waitFor(() => expect(service.families.stats.peek('global')).toBeDefined())
  })

  it('cleans up what older list and host generations left in L2, and leaves live pages and task views alone', async () => {
    const { nodes, summary, store } = memoryCluster(1)
    const { service } = nodes[0] as Node
    const host = summary.hostIds[0] as string
    await service.getTasks()
    await service.getTasks({ page: 2 })
    await service.getHostTasks(host)
    await service.getTaskStatus(summary.activeTaskIds[0] as string)
    // A status change moves the list generation; a family-wide bump (what a namespace move does) the host pages'.
    await service.cancelTask(summary.activeTaskIds[1] as string)
    await service.families.hostTasks.invalidate()
    await service.getTasks()
    await service.getHostTasks(host)
    await settle()
    const before = store.keys()
    const report = await service.cleanupCache()
    expect(report.deleted).toBe(3)
    const after = store.keys()
    expect(after.filter((k) => k.includes('task:list'))).toHaveLength(1)
    expect(after.filter((k) => k.includes('host:tasks'))).toHaveLength(1)
    expect(after.filter((k) => k.includes('task:status'))).toEqual(before.filter((k) => k.includes('task:status')))
    expect((await service.cleanupCache()).deleted).toBe(0)
  })

  it('clears everything on every process with invalidateAllCache()', async () => {
    const { nodes, summary } = memoryCluster(2)
    const [a, b] = nodes as [Node, Node]
    const id = summary.activeTaskIds[0] as string
    await b.service.getTaskStatus(id)
    await b.service.getTasks()
    await a.service.invalidateAllCache()
    await settle()
    expect((await queriesOf(b.repo, () => b.service.getTaskStatus(id))).queries).toBe(1)
  })

  it('invalidates one task or one host through the management methods', async () => {
    const { nodes, oracle, summary } = memoryCluster(2)
    const [a, b] = nodes as [Node, Node]
    const id = summary.activeTaskIds[0] as string
    const host = (await oracle.getTaskHostIds(id))[0] as string
    await b.service.getTaskStatus(id)
    await b.service.getHostTasks(host)
    await a.service.invalidateTaskCache(id)
    await settle()
    expect((await queriesOf(b.repo, () => b.service.getTaskStatus(id))).queries).toBe(1)
    expect((await queriesOf(b.repo, () => b.service.getHostTasks(host))).queries).toBeGreaterThan(0)
    await a.service.invalidateHostCache(host)
    await settle()
    expect((await queriesOf(b.repo, () => b.service.getHostTasks(host))).queries).toBeGreaterThan(0)
    expect((await queriesOf(b.repo, () => b.service.getTaskStatus(id))).queries).toBe(0)
  })

  it('keeps answering from the database when L2 fails, and says so', async () => {
    let failing = false
    const failable = (store: RemoteStore): RemoteStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          const original = Reflect.get(target, property, receiver) as unknown
          if (typeof original !== 'function' || property === 'close') return original
          return (...args: unknown[]) =>
            failing ? Promise.reject(new Error(`injected ${String(property)} failure`)) : (original as (...a: unknown[]) => unknown).apply(target, args)
        },
      })
    const { nodes, oracle, summary } = memoryCluster(1, {}, {}, failable)
    const { service } = nodes[0] as Node
    failing = true
    const id = summary.activeTaskIds[0] as string
    for (let i = 0; i < 10; i++) {
      expect(await service.getTaskStatus(id)).toEqual(await oracle.getTaskStatusView(id))
      expect(await service.getTasks({ status: 'running' })).toEqual(await oracle.getTaskListPage(parseTaskListQuery({ status: 'running' })))
    }
    await service.cancelTask(id)
    expect(await service.getTaskStatus(id)).toEqual(await oracle.getTaskStatusView(id))
    const stats = await service.getCacheStatistics()
    expect(stats.degraded).toBe(true)
    expect(stats.l2.available).toBe(false)
  })

  it('logs hits and misses at debug, and a statistics line from the maintenance run', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const { logger, lines } = captureLogger()
    const { nodes, summary } = memoryCluster(1, { logger, maintenanceInterval: '30m' })
    const { service } = nodes[0] as Node
    const id = summary.activeTaskIds[0] as string
    await service.getTaskStatus(id)
    await service.getTaskStatus(id)
    expect(lines.filter((l) => l.level === 'debug' && l.msg === 'task cache miss')).toHaveLength(1)
    expect(lines.filter((l) => l.level === 'debug' && l.msg === 'task cache hit')).toHaveLength(1)
    vi.advanceTimersByTime(30 * 60_000)
    await vi.waitFor(() => expect(lines.some((l) => l.msg === 'task cache maintenance')).toBe(true))
    const line = lines.find((l) => l.msg === 'task cache maintenance')
    expect(line?.obj).toMatchObject({ hitRate: 0.5 })
    await service.close()
    const count = lines.length
    vi.advanceTimersByTime(2 * 30 * 60_000)
    await settle()
    expect(lines.filter((l) => l.msg === 'task cache maintenance')).toHaveLength(1)
    expect(lines.length).toBe(count)
  })

  it('refuses invalid options naming the option', () => {
    const cache = createTieredCache()
    onTestFinished(() => cache.close())
    const { repo } = seededRepository()
    expect(() => createCachedTaskService({ cache, repository: repo, statsMaxStaleness: 'soon' })).toThrow(/statsMaxStaleness/)
    expect(() => createCachedTaskService({ cache, repository: repo, maintenanceInterval: 10 })).toThrow(/maintenanceInterval/)
    expect(() => createCachedTaskService({ cache, repository: {} as never })).toThrow(InvalidOptionsError)
    expect(() => createCachedTaskService({ cache, repository: repo, logger: console.log as never })).toThrow(/logger/)
  })
})

function captureLogger() {
  const lines: { level: string; obj: object; msg: string | undefined }[] = []
  const at = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj, msg })
  }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}
