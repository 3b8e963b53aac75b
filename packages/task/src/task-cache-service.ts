/**
 * The original design's `TaskCacheService`: direct reads, writes and invalidations of the task
 * families, without a database behind them. `createCachedTaskService()` builds on it; use this
 * one alone when your code decides what to cache.
 */
import type { TieredCache } from '@tiercache/core'
import { createTaskFamilies, type TaskFamilies, type TaskFamilyTtls } from './families.js'
import { applyInvalidation, invalidationOf } from './invalidation-map.js'
import { parseId, type TaskProgressView, type TaskStatistics, type TaskStatusView } from './model.js'

export interface TaskCacheServiceOptions {
  cache: TieredCache
  /** Per-family TTLs; the design's defaults otherwise. */
  ttl?: TaskFamilyTtls
  /** Families already declared on `cache` (shared with another service on the same cache). */
  families?: TaskFamilies
}

export interface InvalidateTaskOptions {
  /** Hosts of the task: their `host:tasks` pages are invalidated too. */
  hostIds?: readonly string[]
}

export interface TaskCacheService {
  readonly families: TaskFamilies
  cacheTaskStatus(taskId: string, status: TaskStatusView): Promise<void>
  getCachedTaskStatus(taskId: string): Promise<TaskStatusView | undefined>
  cacheTaskProgress(taskId: string, progress: TaskProgressView): Promise<void>
  getCachedTaskProgress(taskId: string): Promise<TaskProgressView | undefined>
  cacheTaskStatistics(stats: TaskStatistics): Promise<void>
  getCachedTaskStatistics(): Promise<TaskStatistics | undefined>
  /**
   * The entries of one task may be wrong: follows the invalidation map's row for a task whose
   * status and executions may all have moved — its views (status, progress, execution summary),
   * the list pages, given its hosts their host pages, and the statistics.
   */
  invalidateTaskCache(taskId: string, options?: InvalidateTaskOptions): Promise<void>
  /**
   * The entries of one host may be wrong: follows the map's row for a host whose executions may
   * have changed — its `host:tasks` pages and the statistics. List pages stay: executions do not
   * move list membership (a task's status and its creation do).
   */
  invalidateHostCache(hostId: string): Promise<void>
  /**
   * Drops every entry of the six families on every process: `cache.clear()`, so the whole
   * namespace (give the task families a namespace of their own).
   */
  invalidateAllTaskCache(): Promise<void>
}

export function createTaskCacheService(options: TaskCacheServiceOptions): TaskCacheService {
  const families = options.families ?? createTaskFamilies(options.cache, options.ttl)
  const { status, progress, stats } = families
  // Without a service behind it there are no writes to coalesce: statistics go at once.
  const dropStatistics = () => stats.delete('global')
  return Object.freeze({
    families,
    cacheTaskStatus: (taskId: string, view: TaskStatusView) => status.set(parseId(taskId, 'taskId'), view),
    getCachedTaskStatus: (taskId: string) => status.get(parseId(taskId, 'taskId')),
    cacheTaskProgress: (taskId: string, view: TaskProgressView) => progress.set(parseId(taskId, 'taskId'), view),
    getCachedTaskProgress: (taskId: string) => progress.get(parseId(taskId, 'taskId')),
    cacheTaskStatistics: (value: TaskStatistics) => stats.set('global', value),
    getCachedTaskStatistics: () => stats.get('global'),
    async invalidateTaskCache(taskId: string, opts?: InvalidateTaskOptions) {
      const id = parseId(taskId, 'taskId')
      const hostIds = (opts?.hostIds ?? []).map((h) => parseId(h, 'hostId'))
      await applyInvalidation(families, invalidationOf({ write: 'invalidateTaskCache', taskId: id, hostIds }), dropStatistics)
    },
    async invalidateHostCache(hostId: string) {
      const id = parseId(hostId, 'hostId')
      await applyInvalidation(families, invalidationOf({ write: 'invalidateHostCache', hostId: id }), dropStatistics)
    },
    async invalidateAllTaskCache() {
      await options.cache.clear()
    },
  })
}
