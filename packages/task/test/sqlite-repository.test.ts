import { join } from 'node:path'
import { InvalidOptionsError } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { taskFixture, type TaskFixtureName } from '@tiercache/testkit'
import {
  HostNotFoundError,
  InvalidTaskTransitionError,
  TaskNotFoundError,
  TaskExecutionSummarySchema,
  TaskProgressViewSchema,
  TaskStatisticsSchema,
  parseHostTasksQuery,
  parseTaskListQuery,
} from '@tiercache/task'
import { SCHEMA_VERSION, createSqliteTaskRepository, seedTasks } from '@tiercache/task/sqlite'
import { seededRepository, tempDir } from './helpers.js'

const fixtureKeys = (name: `${TaskFixtureName}.json`): string[] =>
  Object.keys(taskFixture(name.slice(0, -'.json'.length) as TaskFixtureName)).sort()

describe('SQLite task repository', () => {
  it('creates the schema in WAL mode, records its version, and reopens without migrating again', async () => {
    const filename = join(tempDir(), 'a.db')
    const first = createSqliteTaskRepository({ filename })
    expect(first.db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(first.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    seedTasks(first, { tasks: 10, hosts: 3, activeTasks: 2 })
    await first.close()
    const second = createSqliteTaskRepository({ filename })
    expect(second.db.prepare('SELECT count(*) FROM tasks').pluck().get()).toBe(10)
    await second.close()
  })

  it('refuses a database of a newer schema, and seeding one that holds tasks, with coded errors', async () => {
    const filename = join(tempDir(), 'newer.db')
    const first = createSqliteTaskRepository({ filename })
    seedTasks(first, { tasks: 2, hosts: 1, activeTasks: 0 })
    expect(() => seedTasks(first, { tasks: 1, activeTasks: 0 })).toThrow(expect.objectContaining({ code: 'E_DATABASE_NOT_EMPTY', tasks: 2 }))
    first.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    await first.close()
    expect(() => createSqliteTaskRepository({ filename })).toThrow(
      expect.objectContaining({ code: 'E_SCHEMA_TOO_NEW', message: expect.stringContaining(`version ${SCHEMA_VERSION + 1} is newer than this library's (${SCHEMA_VERSION})`) }),
    )
  })

  it('refuses invalid options naming the option', () => {
    expect(() => createSqliteTaskRepository({ filename: '' })).toThrow(InvalidOptionsError)
    expect(() => createSqliteTaskRepository({ filename: 'x', busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs/)
  })

  it('seeds deterministically: same seed, same data; another seed, other data', async () => {
    const a = seededRepository({ seed: 3 })
    const b = seededRepository({ seed: 3 })
    const c = seededRepository({ seed: 4 })
    const q = parseTaskListQuery({ size: 50 })
    expect(await a.repo.getTaskListPage(q)).toEqual(await b.repo.getTaskListPage(q))
    expect(await a.repo.getTaskListPage(q)).not.toEqual(await c.repo.getTaskListPage(q))
    expect(a.summary.activeTaskIds).toEqual(b.summary.activeTaskIds)
  })

  it('seeds the asked numbers of tasks, hosts and running tasks', async () => {
    const { repo, summary } = seededRepository({ tasks: 500, hosts: 50, activeTasks: 40 })
    const stats = await repo.getTaskStatistics()
    expect(TaskStatisticsSchema.parse(stats)).toEqual(stats)
    expect(stats.totalTasks).toBe(500)
    expect(stats.hosts).toBe(50)
    expect(stats.tasksByStatus.running).toBe(40)
    expect(stats.totalExecutions).toBe(summary.executions)
    expect(Object.values(stats.tasksByStatus).reduce((a, b) => a + b)).toBe(500)
    expect((await repo.listRunningTaskIds(1000)).sort()).toEqual([...summary.activeTaskIds].sort())
    expect(() => seedTasks(repo, { tasks: 1, activeTasks: 0 })).toThrow(/empty database/)
  })

  it('builds views in the fixtures\' shapes', async () => {
    const { repo, summary } = seededRepository()
    const id = summary.activeTaskIds[0] as string
    const status = await repo.getTaskStatusView(id)
    expect(Object.keys(status ?? {}).sort()).toEqual([...fixtureKeys('task-status.json'), 'finishedAt'].sort())
    const progress = await repo.getTaskProgressView(id)
    expect(TaskProgressViewSchema.parse(progress)).toEqual(progress)
    expect(Object.keys(progress ?? {}).sort()).toEqual([...fixtureKeys('task-progress.json'), 'finishedAt'].sort())
    expect(progress?.hosts).toEqual(status?.hosts)
    expect(progress?.hostDetails).toHaveLength(status?.hosts.total ?? -1)
    const page = await repo.getTaskListPage(parseTaskListQuery({}))
    expect(Object.keys(page).sort()).toEqual(fixtureKeys('task-list-page.json'))
    const summaryView = await repo.getTaskExecutionSummary(id)
    expect(TaskExecutionSummarySchema.parse(summaryView)).toEqual(summaryView)
    expect(await repo.getTaskStatusView('task-nope')).toBeNull()
    expect(await repo.getTaskProgressView('task-nope')).toBeNull()
    expect(await repo.getTaskExecutionSummary('task-nope')).toBeNull()
  })

  it('filters, sorts and pages lists with exact totals', async () => {
    const { repo, summary } = seededRepository()
    const all = await repo.listTaskIds(parseTaskListQuery({ size: 100, page: 1 }))
    expect(all.total).toBe(300)
    const page2 = await repo.listTaskIds(parseTaskListQuery({ size: 100, page: 2 }))
    expect(new Set([...all.ids, ...page2.ids]).size).toBe(200)
    const asc = await repo.listTaskIds(parseTaskListQuery({ size: 5, sort: 'createdAt:asc' }))
    expect(asc.ids[0]).toMatch(/^task-000001-/)
    expect(all.ids[0]).toMatch(/^task-000300-/)
    const running = await repo.getTaskListPage(parseTaskListQuery({ status: 'running', size: 100 }))
    expect(running.total).toBe(30)
    expect(running.items.every((t) => t.status === 'running')).toBe(true)
    const hostId = summary.hostIds[0] as string
    const onHost = await repo.getTaskListPage(parseTaskListQuery({ hostId, size: 100 }))
    const hostPage = await repo.getHostTasksPage(hostId, parseHostTasksQuery({ size: 100 }))
    expect(onHost.total).toBe(hostPage.total)
    expect(onHost.items.map((t) => t.taskId)).toEqual(hostPage.items.map((t) => t.taskId))
    for (const taskId of onHost.items.map((t) => t.taskId)) expect(await repo.getTaskHostIds(taskId)).toContain(hostId)
    const byName = await repo.getTaskListPage(parseTaskListQuery({ sort: 'name:asc', size: 50 }))
    const names = byName.items.map((t) => t.name)
    expect(names).toEqual([...names].sort())
  })

  it('runs the task lifecycle: create, start, results, auto-finish', async () => {
    let clock = Date.UTC(2025, 0, 1)
    const { repo, summary } = seededRepository({}, () => clock)
    const hostIds = summary.hostIds.slice(0, 3) as string[]
    const task = await repo.createTask({ name: 'rollout', command: 'deploy.sh', hostIds })
    expect(task).toMatchObject({ status: 'pending', hostIds, startedAt: null, createdAt: new Date(clock).toISOString() })
    expect(await repo.getTask(task.id)).toEqual(task)
    clock += 1000
    const started = await repo.startTask(task.id)
    expect(started).toMatchObject({ statusChanged: true, executionsChanged: true, task: { status: 'running' } })
    await expect(repo.startTask(task.id)).rejects.toBeInstanceOf(InvalidTaskTransitionError)
    const first = await repo.recordCommandResult(task.id, hostIds[0] as string, { status: 'success', exitCode: 0, output: 'ok' })
    expect(first.statusChanged).toBe(false)
    expect((await repo.getTaskStatusView(task.id))?.progress).toBeCloseTo(1 / 3)
    await repo.recordCommandResult(task.id, hostIds[1] as string, { status: 'success', exitCode: 0 })
    clock += 5000
    const last = await repo.recordCommandResult(task.id, hostIds[2] as string, { status: 'failed', exitCode: 3, output: 'x'.repeat(10_000) })
    expect(last).toMatchObject({ statusChanged: true, task: { status: 'failed' } })
    expect(last.execution.output).toHaveLength(4096)
    const exec = await repo.getTaskExecutionSummary(task.id)
    expect(exec).toMatchObject({ status: 'failed', durationMs: 5000, exitCodes: { '0': 2, '3': 1 }, hosts: { total: 3, success: 2, failed: 1 } })
    await expect(repo.cancelTask(task.id)).rejects.toBeInstanceOf(InvalidTaskTransitionError)
    const reopened = await repo.updateTaskStatus(task.id, 'running')
    expect(reopened).toMatchObject({ statusChanged: true, task: { status: 'running', finishedAt: null } })
    const cancelled = await repo.cancelTask(task.id)
    expect(cancelled.task.status).toBe('cancelled')
    expect((await repo.updateTaskStatus(task.id, 'cancelled')).statusChanged).toBe(false)
  })

  it('rejects writes on unknown tasks and hosts', async () => {
    const { repo, summary } = seededRepository()
    await expect(repo.startTask('task-missing')).rejects.toBeInstanceOf(TaskNotFoundError)
    await expect(repo.createTask({ name: 'n', command: 'c', hostIds: ['h-9999'] })).rejects.toBeInstanceOf(HostNotFoundError)
    const id = summary.activeTaskIds[0] as string
    const notItsHost = summary.hostIds.find((h) => !(repo.db.prepare(
      'SELECT 1 FROM executions e JOIN tasks t ON t.seq = e.task_seq WHERE t.id = ? AND e.host_id = ?',
    ).get(id, h)))
    await expect(repo.recordCommandResult(id, notItsHost as string, { status: 'success' })).rejects.toBeInstanceOf(HostNotFoundError)
    await expect(repo.createTask({ name: '', command: 'c', hostIds: ['h-0001'] })).rejects.toMatchObject({ code: 'E_INVALID_QUERY', field: 'name' })
    await expect(repo.updateTaskStatus(id, 'nope' as never)).rejects.toMatchObject({ code: 'E_INVALID_QUERY', field: 'status' })
    expect(await repo.getTask('task-missing')).toBeNull()
    expect(await repo.getTaskHostIds('task-missing')).toEqual([])
  })

  it('registers hosts with upsertHosts: a fresh repository can create tasks on them', async () => {
    const repo = createSqliteTaskRepository({ filename: join(tempDir(), 'fresh.db') })
    onTestFinished(() => repo.close())
    await expect(repo.createTask({ name: 'n', command: 'c', hostIds: ['web-1'] })).rejects.toBeInstanceOf(HostNotFoundError)
    await repo.upsertHosts([
      { id: 'web-1', ip: '10.0.0.1' },
      { id: 'web-2', ip: 'fd00::2' },
    ])
    expect(repo.queryCount).toBe(3) // the failed create's lookup, then one statement per host
    const task = await repo.createTask({ name: 'deploy', command: 'deploy.sh', hostIds: ['web-1', 'web-2'] })
    const view = await repo.getTaskProgressView(task.id)
    expect(view?.hostDetails.map((h) => [h.hostId, h.ip])).toEqual([
      ['web-1', '10.0.0.1'],
      ['web-2', 'fd00::2'],
    ])
    expect((await repo.getTaskStatistics()).hosts).toBe(2)
  })

  it('upsertHosts sets the ip of a known host and adds the unknown ones, in one transaction', async () => {
    const { repo, summary } = seededRepository()
    const known = summary.hostIds[0] as string
    const before = (await repo.getTaskStatistics()).hosts
    await repo.upsertHosts([{ id: known, ip: '192.168.7.7' }, { id: 'new-host', ip: '192.168.7.8' }])
    expect((await repo.getTaskStatistics()).hosts).toBe(before + 1)
    const task = await repo.createTask({ name: 'n', command: 'c', hostIds: [known, 'new-host'] })
    const ips = (await repo.getTaskProgressView(task.id))?.hostDetails.map((h) => h.ip)
    expect(ips).toEqual(['192.168.7.7', '192.168.7.8'])
    await repo.upsertHosts([])
    expect((await repo.getTaskStatistics()).hosts).toBe(before + 1)
  })

  it('upsertHosts refuses bad input naming the field, and writes nothing', async () => {
    const { repo } = seededRepository()
    const before = (await repo.getTaskStatistics()).hosts
    const good = { id: 'ok-host', ip: '10.1.1.1' }
    await expect(repo.upsertHosts([good, { id: 'x', ip: 'not-an-ip' }])).rejects.toMatchObject({
      code: 'E_INVALID_QUERY',
      field: 'hosts.1.ip',
      message: expect.stringMatching(/hosts\.1\.ip must be an IPv4 or IPv6 address/),
    })
    await expect(repo.upsertHosts([good, { id: 'bad id', ip: '10.1.1.2' }])).rejects.toMatchObject({ field: 'hosts.1.id' })
    await expect(repo.upsertHosts([good, { ...good, ip: '10.1.1.3' }])).rejects.toMatchObject({
      field: 'hosts.1.id',
      message: expect.stringMatching(/ok-host is listed twice/),
    })
    await expect(repo.upsertHosts({ id: 'a', ip: '10.0.0.1' } as never)).rejects.toMatchObject({ field: 'hosts' })
    await expect(repo.upsertHosts([{ id: 'a' } as never])).rejects.toMatchObject({ field: 'hosts.0.ip' })
    expect((await repo.getTaskStatistics()).hosts).toBe(before)
    await expect(repo.createTask({ name: 'n', command: 'c', hostIds: ['ok-host'] })).rejects.toBeInstanceOf(HostNotFoundError)
  })

  it('counts the statements it runs', async () => {
    const { repo, summary } = seededRepository()
    expect(repo.queryCount).toBe(0)
    await repo.getTaskStatusView(summary.activeTaskIds[0] as string)
    expect(repo.queryCount).toBe(1)
    await repo.getTaskStatusViews(summary.activeTaskIds.slice(0, 10))
    expect(repo.queryCount).toBe(2)
    await repo.listTaskIds(parseTaskListQuery({}))
    expect(repo.queryCount).toBe(4)
    await repo.getTaskStatistics()
    expect(repo.queryCount).toBe(5)
    repo.resetQueryCount()
    expect(repo.queryCount).toBe(0)
  })

  it('lets two connections on one file see each other\'s writes', async () => {
    const { repo, filename, summary } = seededRepository()
    const other = createSqliteTaskRepository({ filename })
    const id = summary.activeTaskIds[1] as string
    await other.cancelTask(id)
    expect((await repo.getTaskStatusView(id))?.status).toBe('cancelled')
    await other.close()
  })
})
