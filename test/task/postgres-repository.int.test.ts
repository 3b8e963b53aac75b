// The PostgreSQL repository against a real server: the same answers as SQLite on the same data,
// its own rules (migrations, options, pools, counted queries, concurrent writers) and the seeder.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { InvalidOptionsError } from '@tiercache/core'
import { parseHostTasksQuery, parseTaskListQuery, TASK_LIST_SORTS, TASK_STATUSES, type TaskRepository } from '@tiercache/task'
import {
  createPostgresTaskRepository,
  DatabaseNotEmptyError,
  SCHEMA_VERSION,
  SchemaTooNewError,
  seedPostgresTasks,
  type PostgresTaskRepository,
} from '@tiercache/task/postgres'
import { createSqliteTaskRepository, seedTasks } from '@tiercache/task/sqlite'
import { startPostgres, type PostgresServer } from '@tiercache/testkit'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'

let server: PostgresServer

beforeAll(async () => {
  server = await startPostgres()
})

afterAll(async () => {
  await server?.stop()
})

const SEED = { tasks: 400, hosts: 30, activeTasks: 40, maxHostsPerTask: 5, seed: 7 }

async function postgres(options: { now?: () => number; maxConnections?: number } = {}): Promise<PostgresTaskRepository> {
  const { url } = await server.createDatabase()
  const repository = await createPostgresTaskRepository({ connectionString: url, maxConnections: 4, ...options })
  onTestFinished(() => repository.close())
  return repository
}

function sqlite(now?: () => number): TaskRepository {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-pg-oracle-'))
  const repository = createSqliteTaskRepository({ filename: join(dir, 'tasks.db'), ...(now ? { now } : {}) })
  onTestFinished(async () => {
    await repository.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return repository
}

/** Every read of the port, on a sample of tasks and hosts, in one object to compare. */
async function everyRead(repo: TaskRepository, taskIds: readonly string[], hostIds: readonly string[]) {
  const lists = []
  for (const sort of TASK_LIST_SORTS) {
    for (const status of [undefined, ...TASK_STATUSES]) {
      for (const hostId of [undefined, hostIds[3]]) {
        const query = parseTaskListQuery({ sort, size: 7, page: 2, ...(status ? { status } : {}), ...(hostId ? { hostId } : {}) })
        lists.push(await repo.getTaskListPage(query), await repo.listTaskIds(query))
      }
    }
  }
  const perTask = []
  for (const id of [...taskIds, 'task-999999-nosuch']) {
    perTask.push(
      await repo.getTask(id),
      await repo.getTaskStatusView(id),
      await repo.getTaskProgressView(id),
      await repo.getTaskExecutionSummary(id),
      await repo.getTaskHostIds(id),
    )
  }
  const hosts = []
  for (const id of [...hostIds.slice(0, 5), 'no-such-host']) hosts.push(await repo.getHostTasksPage(id, parseHostTasksQuery({ size: 9, page: 2 })))
  return {
    lists,
    perTask,
    hosts,
    batch: await repo.getTaskStatusViews([...taskIds].reverse().concat(['task-999999-nosuch'])),
    statistics: await repo.getTaskStatistics(),
    running: await repo.listRunningTaskIds(25),
  }
}

describe('PostgreSQL repository: the same answers as SQLite', () => {
  it('reads the same seeded data into the same views, lists, host pages and statistics', async () => {
    const [pgRepo, liteRepo] = [await postgres(), sqlite()]
    const summary = await seedPostgresTasks(pgRepo, SEED)
    expect(seedTasks(liteRepo as never, SEED)).toEqual(summary)
    const sample = [summary.activeTaskIds[0], summary.activeTaskIds[17], 'task-000001', 'task-000123', 'task-000360']
    // Seeded ids carry a random suffix: find the full ids by their sequence prefix.
    const all = (await liteRepo.listTaskIds(parseTaskListQuery({ size: 100, sort: 'createdAt:asc' }))).ids
    const ids = sample.map((s) => all.find((id) => id.startsWith(s as string)) ?? (s as string))
    const expected = await everyRead(liteRepo, ids, summary.hostIds)
    expect(expected.statistics.totalTasks).toBe(400)
    expect(await everyRead(pgRepo, ids, summary.hostIds)).toEqual(expected)
  })

  it('stores the same writes the same way (start, results, cancel, status override)', async () => {
    let t = Date.UTC(2025, 5, 1)
    const now = () => (t += 1000)
    const [pgRepo, liteRepo] = [await postgres({ now }), sqlite(now)]
    const hosts = ['b-2', 'a-1', 'c-3'].map((id, i) => ({ id, ip: `10.1.0.${i + 1}` }))
    const steps = async (repo: TaskRepository) => {
      t = Date.UTC(2025, 5, 1)
      await repo.upsertHosts(hosts)
      await repo.upsertHosts([{ id: 'a-1', ip: '::1' }])
      const a = await repo.createTask({ name: 'rollout', command: 'deploy.sh', hostIds: ['c-3', 'a-1', 'b-2'] })
      const b = await repo.createTask({ name: 'audit', command: 'audit.sh', hostIds: ['a-1'] })
      const out: unknown[] = [await repo.startTask(a.id)]
      out.push(await repo.recordCommandResult(a.id, 'a-1', { status: 'success', exitCode: 0, output: 'ok' }))
      out.push(await repo.recordCommandResult(a.id, 'b-2', { status: 'failed', exitCode: 3 }))
      out.push(await repo.recordCommandResult(a.id, 'c-3', { status: 'timeout' }))
      out.push(await repo.cancelTask(b.id), await repo.updateTaskStatus(b.id, 'running'))
      const strip = (id: string) => id.slice(0, 'task-000001'.length)
      return JSON.parse(JSON.stringify({ out, reads: await everyRead(repo, [a.id, b.id], ['a-1', 'b-2', 'c-3']) }).replaceAll(a.id, strip(a.id)).replaceAll(b.id, strip(b.id)))
    }
    const expected = await steps(liteRepo)
    expect(expected.reads.statistics.tasksByStatus).toMatchObject({ failed: 1, running: 1 })
    expect(await steps(pgRepo)).toEqual(expected)
  })
})

describe('PostgreSQL repository', () => {
  it('migrates once: a second repository on the same database finds the schema in place', async () => {
    const { url } = await server.createDatabase()
    const [a, b] = await Promise.all([createPostgresTaskRepository({ connectionString: url }), createPostgresTaskRepository({ connectionString: url })])
    await a.upsertHosts([{ id: 'h-1', ip: '10.0.0.1' }])
    const task = await a.createTask({ name: 'n', command: 'c', hostIds: ['h-1'] })
    expect((await b.getTask(task.id))?.hostIds).toEqual(['h-1'])
    const version = await a.pool.query('SELECT version FROM task_schema')
    expect(version.rows).toEqual([{ version: SCHEMA_VERSION }])
    await Promise.all([a.close(), b.close()])
  })

  it('refuses a database migrated by a newer version', async () => {
    const { url } = await server.createDatabase()
    const first = await createPostgresTaskRepository({ connectionString: url })
    await first.pool.query('UPDATE task_schema SET version = 99')
    await first.close()
    const error = await createPostgresTaskRepository({ connectionString: url }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SchemaTooNewError)
    expect(error).toMatchObject({ code: 'E_SCHEMA_TOO_NEW', found: 99, supported: SCHEMA_VERSION })
  })

  it.each([
    [{}, 'connectionString'],
    [{ connectionString: 'mysql://x' }, 'connectionString'],
    [{ connectionString: 'postgres://127.0.0.1/x', pool: new pg.Pool() }, 'connectionString'],
    [{ pool: { query: 1 } }, 'pool'],
    [{ connectionString: 'postgres://127.0.0.1/x', maxConnections: 0 }, 'maxConnections'],
    [{ connectionString: 'postgres://127.0.0.1/x', now: 5 }, 'now'],
    [{ connectionString: 'postgres://127.0.0.1/x', extra: true }, ''],
  ])('rejects bad options %j naming %s', async (options, field) => {
    const error = await createPostgresTaskRepository(options as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidOptionsError)
    expect((error as Error).message).toContain(field)
  })

  it('rejects with the server error when nothing listens, and leaves no pool behind', async () => {
    const { port } = server
    await using dead = await startPostgres()
    const url = dead.url
    await dead.stop()
    expect(url).not.toContain(`:${port}/`)
    await expect(createPostgresTaskRepository({ connectionString: url })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it("runs on a pool it is given and leaves it open on close()", async () => {
    const { url } = await server.createDatabase()
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    onTestFinished(() => pool.end())
    const repository = await createPostgresTaskRepository({ pool })
    await repository.upsertHosts([{ id: 'h-1', ip: '10.0.0.1' }])
    await repository.close()
    await repository.close()
    expect((await pool.query('SELECT count(*)::int AS n FROM hosts')).rows).toEqual([{ n: 1 }])
  })

  it('ends the pool it opened on close()', async () => {
    const repository = await postgres()
    await repository.close()
    await expect(repository.getTaskStatistics()).rejects.toThrow(/pool/i)
  })

  it('reports pooled connections the server ended to onError, and answers on new ones', async () => {
    const errors: Error[] = []
    const { url, name } = await server.createDatabase()
    const repository = await createPostgresTaskRepository({ connectionString: url, onError: (e) => errors.push(e) })
    onTestFinished(() => repository.close())
    await repository.upsertHosts([{ id: 'h-1', ip: '10.0.0.1' }])
    const admin = new pg.Pool({ connectionString: server.url, max: 1 })
    onTestFinished(() => admin.end())
    const ended = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name])
    expect(ended.rowCount).toBeGreaterThan(0)
    await expect.poll(() => errors.length).toBeGreaterThan(0)
    expect((errors[0] as Error & { code?: string }).code).toBe('57P01')
    expect((await repository.getTaskStatistics()).hosts).toBe(1)
  })

  it('counts the statements it runs, not BEGIN and COMMIT', async () => {
    const repository = await postgres()
    await repository.upsertHosts([{ id: 'h-1', ip: '10.0.0.1' }, { id: 'h-2', ip: '10.0.0.2' }])
    expect(repository.queryCount).toBe(1)
    repository.resetQueryCount()
    const task = await repository.createTask({ name: 'n', command: 'c', hostIds: ['h-1', 'h-2'] })
    // known hosts, next sequence, the task, its executions (one statement for all)
    expect(repository.queryCount).toBe(4)
    repository.resetQueryCount()
    await repository.getTaskStatusView(task.id)
    await repository.getTaskStatusViews([task.id, 'task-000009-zzzzzz'])
    expect(repository.queryCount).toBe(2)
    repository.resetQueryCount()
    await repository.getTaskListPage(parseTaskListQuery({ status: 'pending' }))
    expect(repository.queryCount).toBe(3)
  })

  it('validates writes before touching the database, naming the field', async () => {
    const repository = await postgres()
    await expect(repository.upsertHosts([{ id: 'h-1', ip: 'not-an-ip' }])).rejects.toMatchObject({ code: 'E_INVALID_QUERY', field: 'hosts.0.ip' })
    await expect(repository.createTask({ name: 'n', command: 'c', hostIds: ['nope'] })).rejects.toMatchObject({ code: 'E_HOST_NOT_FOUND' })
    await expect(repository.startTask('task-000001-aaaaaa')).rejects.toMatchObject({ code: 'E_TASK_NOT_FOUND' })
    expect(repository.queryCount).toBe(2)
    expect((await repository.getTaskStatistics()).hosts).toBe(0)
  })

  it('finishes a task exactly once when its hosts report at the same time from two processes', async () => {
    const { url } = await server.createDatabase()
    const [a, b] = [await createPostgresTaskRepository({ connectionString: url }), await createPostgresTaskRepository({ connectionString: url })]
    onTestFinished(() => Promise.all([a.close(), b.close()]).then(() => undefined))
    const hostIds = Array.from({ length: 12 }, (_, i) => `h-${i}`)
    await a.upsertHosts(hostIds.map((id, i) => ({ id, ip: `10.0.0.${i + 1}` })))
    const task = await a.createTask({ name: 'n', command: 'c', hostIds })
    await a.startTask(task.id)
    const outcomes = await Promise.all(
      hostIds.map((hostId, i) => (i % 2 === 0 ? a : b).recordCommandResult(task.id, hostId, { status: 'success', exitCode: 0 })),
    )
    expect(outcomes.filter((o) => o.statusChanged).map((o) => o.task.status)).toEqual(['success'])
    expect((await b.getTaskStatusView(task.id))?.hosts).toMatchObject({ total: 12, success: 12 })
  })

  it('creates tasks side by side with distinct, increasing sequence numbers', async () => {
    const repository = await postgres({ maxConnections: 8 })
    await repository.upsertHosts([{ id: 'h-1', ip: '10.0.0.1' }])
    const created = await Promise.all(Array.from({ length: 20 }, () => repository.createTask({ name: 'n', command: 'c', hostIds: ['h-1'] })))
    const seqs = created.map((t) => Number(t.id.slice(5, 11))).sort((x, y) => x - y)
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
  })

  it('seeds an empty database only, and continues the sequence after the seeded tasks', async () => {
    const repository = await postgres()
    await expect(seedPostgresTasks(repository, { tasks: 5, activeTasks: 6 })).rejects.toMatchObject({ code: 'E_INVALID_OPTIONS' })
    const summary = await seedPostgresTasks(repository, { tasks: 50, hosts: 10, activeTasks: 5 })
    expect(summary).toMatchObject({ tasks: 50, hosts: 10, activeTasks: 5 })
    await expect(seedPostgresTasks(repository.pool, { tasks: 1, activeTasks: 0 })).rejects.toBeInstanceOf(DatabaseNotEmptyError)
    const next = await repository.createTask({ name: 'n', command: 'c', hostIds: [summary.hostIds[0] as string] })
    expect(next.id.startsWith('task-000051-')).toBe(true)
    const indexes = await repository.pool.query("SELECT indexname FROM pg_indexes WHERE tablename IN ('tasks', 'executions') ORDER BY 1")
    expect(indexes.rows.map((r: { indexname: string }) => r.indexname)).toEqual([
      'executions_host',
      'executions_pkey',
      'executions_status',
      'tasks_created',
      'tasks_id_key',
      'tasks_name',
      'tasks_pkey',
      'tasks_status_created',
      'tasks_status_started',
    ])
  })
})
