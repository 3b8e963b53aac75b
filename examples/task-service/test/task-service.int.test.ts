// The example service end to end: a real redis-server, a seeded SQLite file, the cache and the
// cached task service, and the fastify app, called route by route. Reads are checked against the
// seeded data, writes by the reads that follow them, errors by their status, code and field.
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis, uniqueNamespace, type RedisServer } from '@tiercache/testkit'
import type { HostTasksPage, Task, TaskExecutionSummary, TaskListPage, TaskProgressView, TaskStatistics, TaskStatusView } from '@tiercache/task'
import { buildApp } from '../src/app.js'
import { createTaskStack, type TaskStack } from '../src/stack.js'

const TOKEN = 'example-admin-token-0123456789'
const SEED = { tasks: 40, hosts: 6, activeTasks: 5, maxHostsPerTask: 3, seed: 7 }
const bearer = { authorization: `Bearer ${TOKEN}` }

let redis: RedisServer | undefined
let dir: string | undefined
let stack: TaskStack | undefined
let app: FastifyInstance | undefined

beforeAll(async () => {
  redis = await startRedis()
  dir = mkdtempSync(join(tmpdir(), 'tiercache-example-'))
  stack = await createTaskStack({
    redis: redis.url,
    namespace: uniqueNamespace('example'),
    filename: join(dir, 'tasks.db'),
    seed: SEED,
    // The service's default lets statistics lag writes by up to a second, refreshed in the
    // background; with 0 every write drops them, so a read right after a write shows it.
    statsMaxStaleness: 0,
  })
  await stack.cache.ready()
  app = await buildApp({ service: stack.service, cache: stack.cache, registry: stack.registry, adminToken: TOKEN })
})

afterAll(async () => {
  try {
    await app?.close()
    await stack?.close()
  } finally {
    await redis?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
})

const s = (): TaskStack => stack as TaskStack
const call = (options: InjectOptions): Promise<LightMyRequestResponse> => (app as FastifyInstance).inject(options)
const get = (url: string): Promise<LightMyRequestResponse> => call({ method: 'GET', url })
const json = <T>(response: LightMyRequestResponse): T => response.json<T>()

function expectError(response: LightMyRequestResponse, status: number, code: string, field?: string): void {
  expect(response.statusCode, response.body).toBe(status)
  const { error } = response.json<{ error: { code: string; message: string; field?: string } }>()
  expect(error.code).toBe(code)
  expect(error.message).not.toBe('')
  if (field !== undefined) expect(error.field).toBe(field)
}

/** The n-th seeded host (`h-0001`…). */
const host = (n: number): string => s().seeded?.hostIds[n - 1] ?? `missing-host-${n}`

/** The newest of the seeded running tasks. */
function runningTaskId(): string {
  const id = s().seeded?.activeTaskIds.at(-1)
  if (id === undefined) throw new Error('the database was not seeded')
  return id
}

describe('reads', () => {
  it('GET /tasks pages the seeded tasks and filters them', async () => {
    const all = await get('/tasks')
    expect(all.statusCode).toBe(200)
    const page = json<TaskListPage>(all)
    expect(page).toMatchObject({ page: 1, pageSize: 20, total: SEED.tasks })
    expect(page.items).toHaveLength(20)

    const running = json<TaskListPage>(await get('/tasks?status=running&size=3&page=1&sort=name:asc'))
    expect(running.total).toBe(SEED.activeTasks)
    expect(running.items).toHaveLength(3)
    expect(running.items.every((item) => item.status === 'running')).toBe(true)
    const names = running.items.map((item) => item.name)
    expect(names).toEqual([...names].sort())
  })

  it('GET /tasks/:taskId, /progress and /execution answer the task views', async () => {
    const id = runningTaskId()
    const status = await get(`/tasks/${id}`)
    expect(status.statusCode).toBe(200)
    expect(json<TaskStatusView>(status)).toMatchObject({ taskId: id, status: 'running' })

    const progress = json<TaskProgressView>(await get(`/tasks/${id}/progress`))
    expect(progress.taskId).toBe(id)
    expect(progress.hostDetails.length).toBe(progress.hosts.total)
    expect(progress.hostDetails.length).toBeGreaterThan(0)

    const execution = json<TaskExecutionSummary>(await get(`/tasks/${id}/execution`))
    expect(execution).toMatchObject({ taskId: id, status: 'running', hosts: { total: progress.hosts.total } })
  })

  it('a second read of a task comes from the cache, not the database', async () => {
    const id = runningTaskId()
    const first = await get(`/tasks/${id}`)
    const queries = s().repository.queryCount
    const second = await get(`/tasks/${id}`)
    expect(second.json()).toEqual(first.json())
    expect(s().repository.queryCount).toBe(queries)
  })

  it('GET /hosts/:hostId/tasks lists the tasks sent to the host', async () => {
    const response = await get(`/hosts/${host(1)}/tasks?size=5`)
    expect(response.statusCode, response.body).toBe(200)
    const page = json<HostTasksPage>(response)
    expect(page).toMatchObject({ hostId: host(1), page: 1, pageSize: 5 })
    expect(page.total).toBeGreaterThan(0)
    expect(page.items.length).toBe(Math.min(5, page.total))
  })

  it('GET /stats counts the seeded tasks', async () => {
    const stats = json<TaskStatistics>(await get('/stats'))
    expect(stats).toMatchObject({ totalTasks: SEED.tasks, hosts: SEED.hosts })
    expect(stats.tasksByStatus.running).toBe(SEED.activeTasks)
  })

  it('an unknown task is a 404 on every per-task read', async () => {
    for (const url of ['/tasks/no-such-task', '/tasks/no-such-task/progress', '/tasks/no-such-task/execution']) {
      expectError(await get(url), 404, 'E_TASK_NOT_FOUND', 'taskId')
    }
  })

  it('a bad parameter is a 400 naming it', async () => {
    expectError(await get('/tasks?size=500'), 400, 'E_INVALID_QUERY', 'size')
    expectError(await get('/tasks?page=0'), 400, 'E_INVALID_QUERY', 'page')
    expectError(await get('/tasks?status=sleeping'), 400, 'E_INVALID_QUERY', 'status')
    expectError(await get('/tasks?sort=colour'), 400, 'E_INVALID_QUERY', 'sort')
    expectError(await get('/tasks?status=running&status=failed'), 400, 'E_INVALID_QUERY', 'status')
    expectError(await get('/tasks/-not-an-id'), 400, 'E_INVALID_QUERY', 'taskId')
    expectError(await get(`/hosts/${host(1)}/tasks?size=abc`), 400, 'E_INVALID_QUERY', 'size')
    expectError(await get('/hosts/-not-an-id/tasks'), 400, 'E_INVALID_QUERY', 'hostId')
  })

  it('an unknown route is a 404 in the same error shape', async () => {
    expectError(await get('/nothing-here'), 404, 'E_NOT_FOUND')
  })
})

describe('writes, then reads', () => {
  it('a task goes from created to started to finished by its hosts, and every view follows', async () => {
    // Read first, so that the list, the host page and the statistics are cached when the writes land.
    const before = json<TaskListPage>(await get('/tasks?size=1'))
    const hostBefore = json<HostTasksPage>(await get(`/hosts/${host(2)}/tasks`))
    expect(json<TaskStatistics>(await get('/stats')).totalTasks).toBe(SEED.tasks)

    const created = await call({ method: 'POST', url: '/tasks', payload: { name: 'deploy-web', command: 'deploy.sh --release 42', hostIds: [host(2), host(3)] } })
    expect(created.statusCode, created.body).toBe(201)
    const task = json<Task>(created)
    expect(task).toMatchObject({ name: 'deploy-web', status: 'pending', hostIds: [host(2), host(3)] })
    expect(created.headers.location).toBe(`/tasks/${task.id}`)

    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`))).toMatchObject({ taskId: task.id, status: 'pending', hosts: { total: 2, pending: 2 } })
    const after = json<TaskListPage>(await get('/tasks?size=1'))
    expect(after.total).toBe(before.total + 1)
    expect(after.items[0]?.taskId).toBe(task.id)
    const hostAfter = json<HostTasksPage>(await get(`/hosts/${host(2)}/tasks`))
    expect(hostAfter.total).toBe(hostBefore.total + 1)
    expect(hostAfter.items[0]).toMatchObject({ taskId: task.id, taskStatus: 'pending', status: 'pending' })
    expect(json<TaskStatistics>(await get('/stats')).totalTasks).toBe(SEED.tasks + 1)

    const started = await call({ method: 'POST', url: `/tasks/${task.id}/start` })
    expect(started.statusCode, started.body).toBe(200)
    expect(json<Task>(started).status).toBe('running')
    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`))).toMatchObject({ status: 'running', hosts: { running: 2 } })
    expect(json<HostTasksPage>(await get(`/hosts/${host(2)}/tasks`)).items[0]).toMatchObject({ taskId: task.id, taskStatus: 'running', status: 'running' })

    const first = await call({ method: 'POST', url: `/tasks/${task.id}/hosts/${host(2)}/result`, payload: { status: 'success', exitCode: 0, output: 'deployed' } })
    expect(first.statusCode, first.body).toBe(200)
    expect(first.json()).toMatchObject({ statusChanged: false, execution: { hostId: host(2), status: 'success', exitCode: 0 } })
    const progress = json<TaskProgressView>(await get(`/tasks/${task.id}/progress`))
    expect(progress.progress).toBe(0.5)
    expect(progress.hostDetails.find((h) => h.hostId === host(2))).toMatchObject({ status: 'success', exitCode: 0, output: 'deployed' })

    const last = await call({ method: 'POST', url: `/tasks/${task.id}/hosts/${host(3)}/result`, payload: { status: 'failed', exitCode: 2 } })
    expect(last.statusCode, last.body).toBe(200)
    expect(last.json()).toMatchObject({ statusChanged: true, task: { status: 'failed' } })
    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`))).toMatchObject({ status: 'failed', progress: 1 })
    expect(json<TaskExecutionSummary>(await get(`/tasks/${task.id}/execution`))).toMatchObject({
      status: 'failed',
      hosts: { success: 1, failed: 1 },
      exitCodes: { '0': 1, '2': 1 },
    })

    // The operator's correction: the host that failed was fixed by hand.
    const corrected = await call({ method: 'PUT', url: `/tasks/${task.id}/status`, payload: { status: 'success' } })
    expect(corrected.statusCode, corrected.body).toBe(200)
    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`)).status).toBe('success')
    expect(json<TaskListPage>(await get('/tasks?status=success&size=1&sort=createdAt:desc')).items[0]?.taskId).toBe(task.id)

    // A finished task cannot be cancelled or started again.
    expectError(await call({ method: 'POST', url: `/tasks/${task.id}/cancel` }), 409, 'E_INVALID_TRANSITION')
    expectError(await call({ method: 'POST', url: `/tasks/${task.id}/start` }), 409, 'E_INVALID_TRANSITION')
  })

  it('a cancelled task reads as cancelled, its hosts too', async () => {
    const task = json<Task>(await call({ method: 'POST', url: '/tasks', payload: { name: 'rotate-logs', command: 'logrotate -f', hostIds: [host(4)] } }))
    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`)).status).toBe('pending')
    const cancelled = await call({ method: 'POST', url: `/tasks/${task.id}/cancel` })
    expect(cancelled.statusCode, cancelled.body).toBe(200)
    expect(json<TaskStatusView>(await get(`/tasks/${task.id}`))).toMatchObject({ status: 'cancelled', hosts: { cancelled: 1 } })
    expect(json<HostTasksPage>(await get(`/hosts/${host(4)}/tasks`)).items[0]).toMatchObject({ taskId: task.id, taskStatus: 'cancelled', status: 'cancelled' })
  })

  it('bad writes are refused with the field at fault, and change nothing', async () => {
    const id = runningTaskId()
    const total = json<TaskListPage>(await get('/tasks?size=1')).total
    expectError(await call({ method: 'POST', url: '/tasks', payload: { name: '', command: 'x', hostIds: [host(1)] } }), 400, 'E_INVALID_QUERY', 'name')
    expectError(await call({ method: 'POST', url: '/tasks', payload: { name: 'n', command: 'x', hostIds: [] } }), 400, 'E_INVALID_QUERY', 'hostIds')
    expectError(await call({ method: 'POST', url: '/tasks', payload: { name: 'n', command: 'x', hostIds: ['no-such-host'] } }), 422, 'E_HOST_NOT_FOUND', 'hostIds')
    expectError(await call({ method: 'POST', url: '/tasks' }), 400, 'E_INVALID_BODY', '(body)')
    expectError(await call({ method: 'POST', url: '/tasks', headers: { 'content-type': 'application/json' }, payload: '{"name":' }), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
    expect(json<TaskListPage>(await get('/tasks?size=1')).total).toBe(total)

    expectError(await call({ method: 'PUT', url: `/tasks/${id}/status`, payload: { status: 'sleeping' } }), 400, 'E_INVALID_QUERY', 'status')
    expectError(await call({ method: 'PUT', url: `/tasks/${id}/status`, payload: {} }), 400, 'E_INVALID_QUERY', 'status')
    expectError(await call({ method: 'POST', url: `/tasks/${id}/hosts/${host(1)}/result`, payload: { status: 'done' } }), 400, 'E_INVALID_QUERY', 'status')
    expectError(await call({ method: 'POST', url: `/tasks/${id}/hosts/${host(1)}/result`, payload: { status: 'success', exitCode: 1.5 } }), 400, 'E_INVALID_QUERY', 'exitCode')
    expectError(await call({ method: 'POST', url: `/tasks/${id}/hosts/-bad/result`, payload: { status: 'success' } }), 400, 'E_INVALID_QUERY', 'hostId')
    expectError(await call({ method: 'POST', url: `/tasks/${id}/hosts/no-such-host/result`, payload: { status: 'success' } }), 404, 'E_HOST_NOT_FOUND')
    expect(json<TaskStatusView>(await get(`/tasks/${id}`)).status).toBe('running')

    for (const [method, url] of [
      ['POST', '/tasks/no-such-task/start'],
      ['POST', '/tasks/no-such-task/cancel'],
    ] as const) {
      expectError(await call({ method, url }), 404, 'E_TASK_NOT_FOUND')
    }
    expectError(await call({ method: 'PUT', url: '/tasks/no-such-task/status', payload: { status: 'failed' } }), 404, 'E_TASK_NOT_FOUND')
    expectError(await call({ method: 'POST', url: `/tasks/no-such-task/hosts/${host(1)}/result`, payload: { status: 'success' } }), 404, 'E_TASK_NOT_FOUND')
  })
})

describe('operations', () => {
  it('GET /metrics is Prometheus text with the cache and database series', async () => {
    await get(`/tasks/${runningTaskId()}`)
    const response = await get('/metrics')
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^text\/plain/)
    expect(response.body).toMatch(/^tiercache_reads_total\{cache="tasks",family="task:status@\d+",result="l1_hit"\} [1-9]/m)
    expect(response.body).toMatch(/^tiercache_database_queries_total\{cache="tasks"\} [1-9]/m)
    expect(response.body).toMatch(/^tiercache_breaker_state\{cache="tasks"\} 0$/m)
  })

  it('GET /health reports the cache healthy', async () => {
    const response = await get('/health')
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ok', breaker: 'closed', busHealthy: true })
  })
})

describe('admin routes', () => {
  it('need the token: 401 without it or with a wrong one, 200 with it', async () => {
    expectError(await get('/cache/stats'), 401, 'E_UNAUTHORIZED')
    expectError(await call({ method: 'GET', url: '/cache/stats', headers: { authorization: 'Bearer wrong-token-0123456789' } }), 401, 'E_UNAUTHORIZED')
    expectError(await call({ method: 'DELETE', url: '/cache' }), 401, 'E_UNAUTHORIZED')

    const stats = await call({ method: 'GET', url: '/cache/stats', headers: bearer })
    expect(stats.statusCode, stats.body).toBe(200)
    expect(stats.headers['cache-control']).toBe('no-store')
    const body = stats.json<{ families: Record<string, { l1Hits: number }>; degraded: boolean; database: { queries: number } }>()
    expect(body.degraded).toBe(false)
    expect(body.families['task:status']?.l1Hits).toBeGreaterThan(0)
    expect(body.database.queries).toBe(s().repository.queryCount)
  })

  it('run every operation with the token', async () => {
    const id = runningTaskId()
    const cases = [
      ['POST', '/cache/warmup', 'warmup'],
      ['POST', '/cache/cleanup', 'cleanup'],
      ['DELETE', `/cache/tasks/${id}`, 'invalidated'],
      ['DELETE', `/cache/hosts/${host(1)}`, 'invalidated'],
      ['DELETE', '/cache', 'invalidated'],
    ] as const
    for (const [method, url, key] of cases) {
      const response = await call({ method, url, headers: bearer })
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(200)
      expect(response.json()).toMatchObject({ ok: true })
      expect(response.json()).toHaveProperty(key)
    }
    // After clearing everything the next read loads from the database again.
    const queries = s().repository.queryCount
    expect(json<TaskStatusView>(await get(`/tasks/${id}`)).taskId).toBe(id)
    expect(s().repository.queryCount).toBeGreaterThan(queries)
  })

  it('answer their own 400, 404 and 405 under /cache', async () => {
    expectError(await call({ method: 'DELETE', url: '/cache/tasks/..%2Fstats', headers: bearer }), 400, 'E_INVALID_ID')
    expectError(await call({ method: 'GET', url: '/cache/nothing', headers: bearer }), 404, 'E_NOT_FOUND')
    const wrongMethod = await call({ method: 'PUT', url: '/cache/stats', headers: bearer })
    expectError(wrongMethod, 405, 'E_METHOD_NOT_ALLOWED')
    expect(wrongMethod.headers.allow).toBe('GET')
  })

  it('serve the operator page: the sign-in form without a session, the dashboard with one', async () => {
    const form = await get('/cache/dashboard')
    expect(form.statusCode).toBe(401)
    expect(form.headers['content-type']).toMatch(/^text\/html/)
    expect(form.body).toMatch(/<form method="post" action="sign-in">/)
    expect(form.body).not.toContain(TOKEN)

    const origin = 'http://localhost:80'
    const wrong = await call({
      method: 'POST',
      url: '/cache/sign-in',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'token=not-the-token-at-all',
    })
    expect(wrong.statusCode).toBe(401)

    const signedIn = await call({
      method: 'POST',
      url: '/cache/sign-in',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: TOKEN }).toString(),
    })
    expect(signedIn.statusCode, signedIn.body).toBe(303)
    expect(signedIn.headers.location).toBe('dashboard')
    const setCookie = String(signedIn.headers['set-cookie'])
    expect(setCookie).toMatch(/HttpOnly/)
    expect(setCookie).toMatch(/Path=\/cache/)
    const cookie = setCookie.split(';')[0] as string

    const page = await call({ method: 'GET', url: '/cache/dashboard', headers: { cookie } })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toBeDefined()
    expect(page.body).toContain('Cache dashboard')
    expect(page.body).toContain('Sign out')
    // The session reads statistics, and a change it makes must come from the page's origin.
    expect((await call({ method: 'GET', url: '/cache/stats', headers: { cookie } })).statusCode).toBe(200)
    expectError(await call({ method: 'POST', url: '/cache/warmup', headers: { cookie } }), 403, 'E_CROSS_ORIGIN')
    expect((await call({ method: 'POST', url: '/cache/warmup', headers: { cookie, origin } })).statusCode).toBe(200)
  })

  it('work over a real HTTP connection too', async () => {
    const server = await buildApp({ service: s().service, cache: s().cache, registry: s().registry, adminToken: TOKEN, adminBasePath: '/ops' })
    try {
      await server.listen({ port: 0, host: '127.0.0.1' })
      const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
      expect((await fetch(`${base}/ops/cache/stats`)).status).toBe(401)
      const stats = await fetch(`${base}/ops/cache/stats`, { headers: bearer })
      expect(stats.status).toBe(200)
      expect(((await stats.json()) as { busHealthy: boolean }).busHealthy).toBe(true)
      // Under a base path, /cache is no admin route but an unknown one of the app.
      expect((await fetch(`${base}/cache/stats`, { headers: bearer })).status).toBe(404)
      const task = await fetch(`${base}/tasks/${runningTaskId()}`)
      expect(task.status).toBe(200)
      expect(((await task.json()) as TaskStatusView).taskId).toBe(runningTaskId())
    } finally {
      await server.close()
    }
  })
})
