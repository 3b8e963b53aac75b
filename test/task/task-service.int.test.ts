import { startRedis } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { parseHostTasksQuery, parseTaskListQuery, type Task } from '@tiercache/task'
import { prng, type SqliteTaskRepository } from '@tiercache/task/sqlite'
import { busRoundTrip, seededDatabase, startTaskNodes, type TaskNode } from './helpers.js'

/** Runs a write on `writer` and waits until every other node applied its invalidations. */
async function writeOn<T>(writer: TaskNode, others: readonly TaskNode[], method: string, ...args: unknown[]): Promise<T> {
  const result = await writer.call<T>(method, ...args)
  await Promise.all(others.map((n) => n.applied(writer, result.seq)))
  return result.value
}

type Rows = { taskViews: boolean; lists: boolean; hosts: 'all' | 'reporter' | 'none'; stats: boolean }

interface View {
  name: string
  family: string
  method: string
  args: unknown[]
  truth: (o: SqliteTaskRepository) => Promise<unknown>
  expect: boolean
}

function viewsOf(taskId: string, hostIds: readonly string[], reporter: string | undefined, otherTask: string, unrelatedHost: string, e: Rows): View[] {
  const lists = [{}, { status: 'running' }, { status: 'pending' }, { hostId: hostIds[0] }] as const
  return [
    { name: 'status', family: 'task:status', method: 'getTaskStatus', args: [taskId], truth: (o) => o.getTaskStatusView(taskId), expect: e.taskViews },
    { name: 'progress', family: 'task:progress', method: 'getTaskProgress', args: [taskId], truth: (o) => o.getTaskProgressView(taskId), expect: e.taskViews },
    { name: 'execution', family: 'task:execution', method: 'getTaskExecution', args: [taskId], truth: (o) => o.getTaskExecutionSummary(taskId), expect: e.taskViews },
    { name: 'other task', family: 'task:status', method: 'getTaskStatus', args: [otherTask], truth: (o) => o.getTaskStatusView(otherTask), expect: false },
    ...lists.map((q) => ({
      name: `list ${JSON.stringify(q)}`,
      family: 'task:list',
      method: 'getTasks',
      args: [q],
      truth: (o: SqliteTaskRepository) => o.getTaskListPage(parseTaskListQuery(q as never)),
      expect: e.lists,
    })),
    ...hostIds.map((h) => ({
      name: `host ${h}`,
      family: 'host:tasks',
      method: 'getHostTasks',
      args: [h],
      truth: (o: SqliteTaskRepository) => o.getHostTasksPage(h, parseHostTasksQuery({})),
      expect: e.hosts === 'all' || (e.hosts === 'reporter' && h === reporter),
    })),
    { name: 'unrelated host', family: 'host:tasks', method: 'getHostTasks', args: [unrelatedHost], truth: (o) => o.getHostTasksPage(unrelatedHost, parseHostTasksQuery({})), expect: false },
    { name: 'statistics', family: 'task:stats', method: 'getTaskStatistics', args: [], truth: (o) => o.getTaskStatistics(), expect: e.stats },
  ]
}

describe('TaskService cache integration across processes (SQLite + Redis)', () => {
  it('applies every row of the invalidation map on the other process', async () => {
    const redis = sharedRedis('task-map')
    const { filename, oracle, summary } = seededDatabase()
    const [a, b] = (await startTaskNodes(2, { TC_REDIS_URL: redis.url, TC_NAMESPACE: redis.namespace, TC_DB: filename })) as [TaskNode, TaskNode]

    const rows: { name: string; expected: Rows; setup: () => Promise<{ taskId: string; hostIds: string[]; reporter?: string; write: () => Promise<unknown> }> }[] = [
      {
        name: 'createTask',
        expected: { taskViews: false, lists: true, hosts: 'all', stats: true },
        setup: async () => {
          const hostIds = summary.hostIds.slice(0, 2) as string[]
          return { taskId: summary.activeTaskIds[0] as string, hostIds, write: () => writeOn(a, [b], 'createTask', { name: 'new', command: 'deploy', hostIds }) }
        },
      },
      {
        name: 'startTask',
        expected: { taskViews: true, lists: true, hosts: 'all', stats: true },
        setup: async () => {
          const hostIds = summary.hostIds.slice(3, 6) as string[]
          const task = await writeOn<Task>(a, [b], 'createTask', { name: 'to-start', command: 'deploy', hostIds })
          return { taskId: task.id, hostIds, write: () => writeOn(a, [b], 'startTask', task.id) }
        },
      },
      {
        name: 'cancelTask',
        expected: { taskViews: true, lists: true, hosts: 'all', stats: true },
        setup: async () => {
          const taskId = summary.activeTaskIds.at(-1) as string
          return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => writeOn(a, [b], 'cancelTask', taskId) }
        },
      },
      {
        name: 'updateTaskStatus (changes)',
        expected: { taskViews: true, lists: true, hosts: 'all', stats: true },
        setup: async () => {
          const taskId = summary.activeTaskIds.at(-2) as string
          return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => writeOn(a, [b], 'updateTaskStatus', taskId, 'failed') }
        },
      },
      {
        name: 'updateTaskStatus (same status)',
        expected: { taskViews: true, lists: false, hosts: 'none', stats: false },
        setup: async () => {
          const taskId = summary.activeTaskIds.at(-3) as string
          return { taskId, hostIds: await oracle.getTaskHostIds(taskId), write: () => writeOn(a, [b], 'updateTaskStatus', taskId, 'running') }
        },
      },
      {
        name: 'recordCommandResult (task keeps running)',
        expected: { taskViews: true, lists: false, hosts: 'reporter', stats: true },
        setup: async () => {
          const hostIds = summary.hostIds.slice(6, 9) as string[]
          const task = await writeOn<Task>(a, [b], 'createTask', { name: 'results', command: 'deploy', hostIds })
          await writeOn(a, [b], 'startTask', task.id)
          const reporter = hostIds[1] as string
          return { taskId: task.id, hostIds, reporter, write: () => writeOn(a, [b], 'recordCommandResult', task.id, reporter, { status: 'success', exitCode: 0, output: 'ok' }) }
        },
      },
      {
        name: 'recordCommandResult (last host: task finishes)',
        expected: { taskViews: true, lists: true, hosts: 'all', stats: true },
        setup: async () => {
          const hostIds = summary.hostIds.slice(9, 11) as string[]
          const task = await writeOn<Task>(a, [b], 'createTask', { name: 'finishing', command: 'deploy', hostIds })
          await writeOn(a, [b], 'startTask', task.id)
          await writeOn(a, [b], 'recordCommandResult', task.id, hostIds[0], { status: 'success', exitCode: 0 })
          return { taskId: task.id, hostIds, reporter: hostIds[1], write: () => writeOn(a, [b], 'recordCommandResult', task.id, hostIds[1], { status: 'failed', exitCode: 2 }) }
        },
      },
    ]

    for (const row of rows) {
      const { taskId, hostIds, reporter, write } = await row.setup()
      const otherTask = summary.activeTaskIds.find((t) => t !== taskId && !summary.activeTaskIds.slice(-3).includes(t)) as string
      const unrelatedHost = summary.hostIds.find((h) => !hostIds.includes(h)) as string
      const views = viewsOf(taskId, hostIds, reporter, otherTask, unrelatedHost, row.expected)
      for (const v of views) await b.call(v.method, ...v.args)
      for (const v of views) {
        const warm = await b.call(v.method, ...v.args)
        expect(warm.loads[v.family] ?? 0, `${row.name}: ${v.name} cached before the write`).toBe(0)
      }
      await write()
      for (const v of views) {
        const read = await b.call(v.method, ...v.args)
        expect(read.value, `${row.name}: ${v.name} equals the database on the other process`).toEqual(await v.truth(oracle))
        expect((read.loads[v.family] ?? 0) > 0, `${row.name}: ${v.name} reloaded`).toBe(v.expect)
      }
    }
  })

  it('oracle: random writes on random processes; every process then reads what the database holds', async () => {
    const redis = sharedRedis('task-oracle')
    const { filename, oracle, summary } = seededDatabase({ tasks: 200, hosts: 12, activeTasks: 40, maxHostsPerTask: 4 })
    const nodes = await startTaskNodes(3, { TC_REDIS_URL: redis.url, TC_NAMESPACE: redis.namespace, TC_DB: filename })
    const random = prng(2024)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
    const taskIds = [...summary.activeTaskIds]
    for (let step = 0; step < 40; step++) {
      const writer = pick(nodes)
      const others = nodes.filter((n) => n !== writer)
      const taskId = pick(taskIds)
      const roll = random()
      try {
        if (roll < 0.6) {
          const host = pick(await oracle.getTaskHostIds(taskId))
          await writeOn(writer, others, 'recordCommandResult', taskId, host, { status: pick(['running', 'success', 'failed', 'timeout']), exitCode: Math.floor(random() * 3) })
        } else if (roll < 0.75) await writeOn(writer, others, 'updateTaskStatus', taskId, pick(['running', 'success', 'failed']))
        else if (roll < 0.85) await writeOn(writer, others, 'cancelTask', taskId)
        else if (roll < 0.95) taskIds.push((await writeOn<Task>(writer, others, 'createTask', { name: `t${step}`, command: 'c', hostIds: [pick(summary.hostIds)] })).id)
        else await writeOn(writer, others, 'startTask', taskId)
      } catch (error) {
        if ((error as { code?: string }).code !== 'E_INVALID_TRANSITION') throw error
      }
      for (const node of nodes) {
        const id = pick(taskIds)
        const host = pick(summary.hostIds)
        const q = pick([{}, { status: 'running' }, { hostId: host }, { page: 2, size: 5 }] as const)
        const at = `step ${step} on ${node.name}`
        expect((await node.call('getTaskStatus', id)).value, `${at}: status`).toEqual(await oracle.getTaskStatusView(id))
        expect((await node.call('getTaskProgress', id)).value, `${at}: progress`).toEqual(await oracle.getTaskProgressView(id))
        expect((await node.call('getTaskExecution', id)).value, `${at}: execution`).toEqual(await oracle.getTaskExecutionSummary(id))
        expect((await node.call('getTasks', q)).value, `${at}: list`).toEqual(await oracle.getTaskListPage(parseTaskListQuery(q as never)))
        expect((await node.call('getHostTasks', host)).value, `${at}: host`).toEqual(await oracle.getHostTasksPage(host, parseHostTasksQuery({})))
        expect((await node.call('getTaskStatistics')).value, `${at}: statistics`).toEqual(await oracle.getTaskStatistics())
      }
    }
  })

  it('keeps serving reads from SQLite while Redis is killed, and uses Redis again once it is back', async () => {
    await using server = await startRedis()
    const { filename, oracle, summary } = seededDatabase()
    const [a, b] = (await startTaskNodes(2, {
      TC_REDIS_URL: server.url,
      TC_NAMESPACE: 'outage',
      TC_DB: filename,
      TC_L2_TIMEOUT: '100ms',
    })) as [TaskNode, TaskNode]
    const id = summary.activeTaskIds[0] as string
    const reads = [
      ['getTaskStatus', id],
      ['getTaskProgress', id],
      ['getTasks', { status: 'running' }],
      ['getHostTasks', summary.hostIds[0]],
      ['getTaskStatistics'],
    ] as const
    const truth = async (method: string, arg: unknown) =>
      method === 'getTaskStatus'
        ? oracle.getTaskStatusView(id)
        : method === 'getTaskProgress'
          ? oracle.getTaskProgressView(id)
          : method === 'getTasks'
            ? oracle.getTaskListPage(parseTaskListQuery({ status: 'running' }))
            : method === 'getHostTasks'
              ? oracle.getHostTasksPage(arg as string, parseHostTasksQuery({}))
              : oracle.getTaskStatistics()
    for (const node of [a, b]) for (const [method, arg] of reads) await node.call(method, arg)

    const unhealthy = b.process.waitForEvent<{ healthy: boolean }>('bus-health', (e) => !e.healthy)
    await server.kill()
    await unhealthy
    // The writer's own reads reflect its write at once; the other process's L1 copies are capped
    // while its bus is down, so its reads reflect the write once the cap has passed.
    await a.call('cancelTask', id)
    for (let i = 0; i < 3; i++) {
      for (const [method, arg] of reads) expect((await a.call(method, arg)).value, `${method} during the outage`).toEqual(await truth(method, arg))
    }
    for (const [method, arg] of reads) {
      const expected = await truth(method, arg)
      await expect.poll(async () => (await b.call(method, arg)).value, { timeout: 10_000, message: `${method} on the other process` }).toEqual(expected)
    }
    const degraded = await a.call<{ degraded: boolean }>('getCacheStatistics')
    expect(degraded.value.degraded).toBe(true)

    const healthyAgain = Promise.all([a, b].map((n) => n.process.waitForEvent<{ healthy: boolean }>('bus-health', (e) => e.healthy, { timeoutMs: 30_000 })))
    await server.restart()
    await healthyAgain
    await expect.poll(async () => (await a.call<{ degraded: boolean }>('getCacheStatistics')).value.degraded, { timeout: 20_000 }).toBe(false)
    await busRoundTrip(a, b, summary.hostIds[5] as string)
    await writeOn(a, [b], 'updateTaskStatus', id, 'failed')
    for (const node of [a, b]) for (const [method, arg] of reads) expect((await node.call(method, arg)).value, `${method} after recovery`).toEqual(await truth(method, arg))
    // L2 serves again: a status read on a fresh key is loaded once and then shared.
    const other = summary.activeTaskIds[1] as string
    expect((await a.call('getTaskStatus', other)).loads['task:status']).toBe(1)
    await expect.poll(async () => (await b.call('getTaskStatus', other)).loads['task:status'] ?? 0, { timeout: 10_000 }).toBe(0)
  })

  it('warms up, reports and cleans up on Redis; a warmed entry serves the other process without a query', async () => {
    const redis = sharedRedis('task-manage')
    const { filename, summary } = seededDatabase()
    const [a, b] = (await startTaskNodes(2, { TC_REDIS_URL: redis.url, TC_NAMESPACE: redis.namespace, TC_DB: filename })) as [TaskNode, TaskNode]
    const report = await a.call<{ tasks: number; listPages: number }>('warmupCache')
    expect(report.value).toMatchObject({ tasks: 30, listPages: 2 })
    await expect.poll(async () => (await a.call<{ families: Record<string, { entries: number }> }>('getCacheStatistics')).value.families['task:status']?.entries, { timeout: 10_000 }).toBe(30)
    for (const id of summary.activeTaskIds) expect((await b.call('getTaskStatus', id)).loads['task:status'] ?? 0, id).toBe(0)
    expect((await b.call('getTasks', { status: 'running' })).loads['task:list'] ?? 0).toBe(0)
    const stats = await a.call<{ l2: { available: boolean; usedMemoryBytes: number; connection: string }; degraded: boolean; busHealthy: boolean }>('getCacheStatistics')
    expect(stats.value.l2).toMatchObject({ available: true, connection: 'ready' })
    expect(stats.value.l2.usedMemoryBytes).toBeGreaterThan(0)
    expect(stats.value).toMatchObject({ degraded: false, busHealthy: true })
    await b.call('getHostTasks', summary.hostIds[0])
    // A new task moves the list generation: the two warmed pages are left to the older one. Its
    // hosts are not the one whose page was read, so that page stays live.
    await writeOn(a, [b], 'createTask', { name: 'new', command: 'deploy', hostIds: summary.hostIds.slice(1, 3) })
    const cleanup = await a.call<{ deleted: number }>('cleanupCache')
    expect(cleanup.value.deleted).toBe(2)
    const after = await a.call<{ families: Record<string, { entries: number }> }>('getCacheStatistics')
    expect(after.value.families['task:list']?.entries).toBe(0)
    expect(after.value.families['host:tasks']?.entries).toBe(1)
    expect(after.value.families['task:status']?.entries).toBe(30)
    expect((await a.call<{ deleted: number }>('cleanupCache')).value.deleted).toBe(0)
  })

  it('brings statistics up to date on the other process within the staleness window', async () => {
    const redis = sharedRedis('task-stats')
    const { filename, oracle, summary } = seededDatabase()
    const [a, b] = (await startTaskNodes(2, { TC_REDIS_URL: redis.url, TC_NAMESPACE: redis.namespace, TC_DB: filename, TC_STATS_STALENESS: '300ms' })) as [TaskNode, TaskNode]
    await b.call('getTaskStatistics')
    const before = await oracle.getTaskStatistics()
    for (const id of summary.activeTaskIds.slice(0, 3)) await a.call('cancelTask', id)
    const truth = await oracle.getTaskStatistics()
    expect(truth).not.toEqual(before)
    // Eventually (one coalesced invalidation later) the other process reads the new figures.
    await expect.poll(async () => (await b.call('getTaskStatistics')).value, { timeout: 10_000, interval: 50 }).toEqual(truth)
  })
})
