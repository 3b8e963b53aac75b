// The writer phase of the outage scenario: 10 concurrent writers of task writes (command results,
// status changes, starts) through createCachedTaskService on SQLite, while Redis is killed and
// restarted, paused, or killed for good — the same faults and phases as the readers.
//
// Figures: errors the cache surfaced to a writer (the workload's own `E_INVALID_TRANSITION` and
// database-busy errors are counted apart, in the note), p99/max latency of the writes that
// overlapped the fault, and stale reads after recovery: every task the writers touched, read
// through the service and compared with the database.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { isDeepStrictEqual } from 'node:util'
import { percentile } from '../measure.js'
import type { ChildContext, Row } from '../scenario.js'
import { seededRandom } from '../zipf.js'
import { timingOf, type FaultKind } from './outage.js'

const WRITERS = 10
/** The cache's L2 timeout here: what a writer may wait for Redis at most (plus its database time). */
const L2_TIMEOUT_MS = 50

/** Child entry: the writers against one fault, on a redis-server and a SQLite file of their own. */
export async function outageWriterRow(args: { fault: FaultKind; group: string }, ctx: ChildContext): Promise<Row[]> {
  const { startRedis } = await import('@tiercache/testkit')
  const { createRedisCache } = await import('@tiercache/redis')
  const { createCachedTaskService } = await import('@tiercache/task')
  const { createSqliteTaskRepository, seedTasks } = await import('@tiercache/task/sqlite')
  const timing = timingOf(ctx.quick)
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-outage-writers-'))
  const server = await startRedis()
  const row: Row = { name: 'tiercache', variant: `createCachedTaskService, ${WRITERS} writers (task writes)`, group: args.group }
  const notes: string[] = []
  const repo = createSqliteTaskRepository({ filename: join(dir, 'tasks.db') })
  const summary = seedTasks(repo, { tasks: 2_000, hosts: 100, activeTasks: 300, maxHostsPerTask: 4, seed: 3 })
  const cache = createRedisCache({ redis: { host: server.host, port: server.port }, namespace: `${ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-')}ow`, l2Timeout: L2_TIMEOUT_MS })
  const service = createCachedTaskService({ cache, repository: repo, maintenanceInterval: false })
  try {
    await cache.ready()
    const active = [...summary.activeTaskIds]
    const touched = new Set<string>()
    const random = seededRandom(11)
    let faultAt = Infinity
    let returnAt = Infinity
    let stopped = false
    let cacheErrors = 0
    let workloadErrors = 0
    let writes = 0
    const during: number[] = []
    const firstError: string[] = []
    const writer = async () => {
      while (!stopped) {
        const id = active[Math.floor(random() * active.length)] as string
        const roll = random()
        const start = performance.now()
        try {
          if (roll < 0.7) {
            const hosts = await repo.getTaskHostIds(id)
            const host = hosts[Math.floor(random() * hosts.length)] as string
            await service.recordCommandResult(id, host, { status: random() < 0.8 ? 'success' : 'failed', exitCode: 0 })
          } else if (roll < 0.9) await service.updateTaskStatus(id, 'running')
          else await service.startTask(id)
          writes++
          touched.add(id)
        } catch (error) {
          const code = (error as { code?: string }).code
          if (code === 'E_INVALID_TRANSITION' || code === 'SQLITE_BUSY') workloadErrors++
          else {
            cacheErrors++
            if (firstError.length === 0) firstError.push(`${code ?? ''} ${(error as Error).message}`.trim().slice(0, 120))
          }
        }
        const end = performance.now()
        if (end >= faultAt && start < returnAt) during.push((end - start) * 1000)
        // Writes that fail fast must not starve the event loop.
        if (end - start < 0.05) await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
    // Warm: every task's status once in the cache, so that writes have entries to invalidate.
    for (const id of active) await service.getTaskStatus(id)
    const writers = Array.from({ length: WRITERS }, () => writer())
    await sleep(timing.beforeMs)
    faultAt = performance.now()
    if (args.fault === 'pause') server.pause()
    else await server.kill()
    await sleep(timing.faultMs)
    if (args.fault !== 'never') {
      if (args.fault === 'pause') server.resume()
      else await server.restart()
    }
    returnAt = performance.now()
    await sleep(timing.afterMs)
    stopped = true
    await Promise.all(writers)

    // After recovery every process would read the database; this one must, for every task it wrote.
    let stale = 0
    if (args.fault !== 'never') {
      await cache.ready({ timeout: 2_000 })
      await sleep(500)
    }
    for (const id of touched) {
      const [cached, truth] = await Promise.all([service.getTaskStatus(id), repo.getTaskStatusView(id)])
      if (!isDeepStrictEqual(JSON.parse(JSON.stringify(cached)), JSON.parse(JSON.stringify(truth)))) stale++
    }
    Object.assign(row, {
      errors: cacheErrors,
      p99Us: percentile(during, 99),
      maxUs: during.length ? during.reduce((a, b) => (b > a ? b : a), 0) : undefined,
      staleReads: stale,
    })
    notes.push(`${writes} writes, ${during.length} during the fault; ${workloadErrors} workload errors (invalid transitions, database busy); ${touched.size} tasks checked after`)
    if (firstError.length > 0) notes.push(`first cache error: ${firstError[0]}`)
  } catch (error) {
    notes.push(`failed: ${(error as Error).message.split('\n')[0]}`)
  } finally {
    await service.close().catch(() => {})
    await cache.close().catch(() => notes.push('close() failed'))
    await repo.close()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  row.note = notes.join('; ')
  return [row]
}
