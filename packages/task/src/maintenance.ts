/**
 * Warmup, cleanup and the maintenance run (every `maintenanceInterval`: a cleanup, then one info
 * line of statistics).
 */
import type { Logger } from '@tiercache/core'
import type { TaskCacheStatistics } from './cache-statistics.js'
import type { TaskFamilies } from './families.js'
import type { TaskListPage, TaskListQueryInput, TaskStatistics, TaskStatusView } from './model.js'
import type { TaskRepository } from './repository.js'

export interface WarmupReport {
  readonly tasks: number
  readonly listPages: number
  readonly statistics: boolean
  readonly durationMs: number
}

export interface CleanupReport {
  readonly deleted: number
  readonly durationMs: number
}

/** The reads warmup runs: the service's own, so that warmed entries are the ones reads look up. */
export interface WarmupReads {
  getTaskStatistics(): Promise<TaskStatistics>
  getTasks(query?: TaskListQueryInput): Promise<TaskListPage>
  getTaskStatus(taskId: string): Promise<TaskStatusView | null>
}

/** Statistics, the first list page (all and running tasks), the status of the newest running tasks. */
export async function warmup(reads: WarmupReads, repository: TaskRepository, tasks: number, log: Logger): Promise<WarmupReport> {
  const started = performance.now()
  const ids = tasks === 0 ? [] : await repository.listRunningTaskIds(tasks)
  await Promise.all([reads.getTaskStatistics(), reads.getTasks({}), reads.getTasks({ status: 'running' }), ...ids.map((id) => reads.getTaskStatus(id))])
  const report = { tasks: ids.length, listPages: 2, statistics: true, durationMs: Math.round(performance.now() - started) }
  log.info(report, 'task cache warmed up')
  return report
}

/**
 * Deletes in L2 what older generations of the generational families left: every status change
 * bumps the list generation, and the pages of the generations before can no longer be read; they
 * would otherwise wait for their TTL. The live pages stay, and so do per-task views and statistics
 * (replaced in place, they expire by TTL). The families' `purge()` does the work through the store
 * port, so the adapter needs to know nothing of how L2 lays out its keys. A store that cannot
 * purge deletes nothing (its orphans expire); L2 trouble rejects.
 */
export async function cleanup(families: TaskFamilies, log: Logger): Promise<CleanupReport> {
  const started = performance.now()
  let deleted = 0
  for (const family of [families.list, families.hostTasks]) deleted += await family.purge()
  const report = { deleted, durationMs: Math.round(performance.now() - started) }
  log.info(report, 'task cache cleaned up')
  return report
}

export interface MaintenanceTasks {
  cleanupCache(): Promise<CleanupReport>
  getCacheStatistics(): Promise<TaskCacheStatistics>
}

/** The interval run. The timer is unref'd (it never keeps a process alive); runs never overlap. */
export class MaintenanceRun {
  readonly #tasks: MaintenanceTasks
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #running = false

  constructor(tasks: MaintenanceTasks, intervalMs: number, log: Logger) {
    this.#tasks = tasks
    this.#log = log
    this.#timer = setInterval(() => void this.#run(), intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  async #run(): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      const report = await this.#tasks.cleanupCache()
      const stats = await this.#tasks.getCacheStatistics()
      this.#log.info(
        {
          deleted: report.deleted,
          hitRate: stats.total.hitRate,
          l1Entries: stats.l1.entries,
          redisMemoryBytes: stats.l2.usedMemoryBytes,
          breaker: stats.breaker.state,
          dbQueries: stats.database.queries,
          families: Object.fromEntries(Object.entries(stats.families).map(([n, f]) => [n, { entries: f.entries, hitRate: f.hitRate }])),
        },
        'task cache maintenance',
      )
    } catch (error) {
      this.#log.warn({ err: error }, 'task cache maintenance failed')
    } finally {
      this.#running = false
    }
  }
}
