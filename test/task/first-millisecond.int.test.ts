// A service creates its cache and its task service and serves at once, as the task package's
// README shows: list and host pages are cached from the first call, with no lease waits.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache } from '@tiercache/redis'
import { createCachedTaskService, type TaskRepository } from '@tiercache/task'
import { createSqliteTaskRepository, seedTasks } from '@tiercache/task/sqlite'

/** The repository with a count of calls per method: each call is a database query. */
function counted(repository: TaskRepository): { repository: TaskRepository; calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  const proxy = new Proxy(repository, {
    get(target, name, receiver) {
      const member: unknown = Reflect.get(target, name, receiver)
      if (typeof member !== 'function' || typeof name !== 'string') return member
      return (...args: unknown[]) => {
        calls[name] = (calls[name] ?? 0) + 1
        return (member as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { repository: proxy, calls }
}

describe('a task service used in the tick its cache was created', () => {
  it('caches list and host pages from the first call: one load each, no lease waits, still cached 1.5 s later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-first-ms-'))
    const sqlite = createSqliteTaskRepository({ filename: join(dir, 'tasks.db') })
    seedTasks(sqlite, { tasks: 0, hosts: 5, activeTasks: 0 })
    const { port } = sharedRedis()
    // `l2Timeout` bounds the wait for the first connection; a machine busy with the rest of the
    // suite may take longer than the default 50 ms to connect, and this test is not about that.
    const cache = createRedisCache({ redis: { host: '127.0.0.1', port }, namespace: uniqueNamespace('fh1'), l2Timeout: '5s' })
    onTestFinished(async () => {
      await cache.close()
      await sqlite.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const { repository, calls } = counted(sqlite)
    const svc = createCachedTaskService({ cache, repository }) // no wait

    for (let i = 0; i < 3; i++) await svc.createTask({ name: `t${i}`, command: 'true', hostIds: ['h-0003'] })
    for (let i = 0; i < 5; i++) expect((await svc.getTasks({ page: 1, size: 10 })).items).toHaveLength(3)
    for (let i = 0; i < 5; i++) expect((await svc.getHostTasks('h-0003')).items).toHaveLength(3)
    expect(calls.listTaskIds).toBe(1)
    expect(calls.getHostTasksPage).toBe(1)

    await new Promise((resolve) => setTimeout(resolve, 1500))
    await svc.getTasks({ page: 1, size: 10 })
    await svc.getHostTasks('h-0003')
    expect(calls.listTaskIds).toBe(1)
    expect(calls.getHostTasksPage).toBe(1)

    const stats = cache.stats()
    expect(stats.total.leaseWaits).toBe(0)
    expect(stats.total.l2Errors).toBe(0)
    expect(stats.breaker.state).toBe('closed')
  })
})
