/**
 * The original design's `TaskCacheService`: direct reads, writes and invalidations of the task
 * families, without a database behind them. `createCachedTaskService()` builds on it; use this
 * one alone when your code decides what to cache.
 */
import type { TieredCache } from '@tiercache/core'
import { createTaskFamilies, type TaskFamilies, type TaskFamilyTtls } from './families.js'
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
   * Drops every cached view of one task (status, progress, execution summary), the list pages
   * (they show the task) and, given its hosts, their host pages.
   */
  invalidateTaskCache(taskId: string, options?: InvalidateTaskOptions): Promise<void>
  /** Drops the `host:tasks` pages of one host and the list pages (they may filter by host). */
  invalidateHostCache(hostId: string): Promise<void>
  /**
   * Drops every entry of the six families on every process: `cache.clear()`, so the whole
   * namespace (give the task families a namespace of their own).
   */
  invalidateAllTaskCache(): Promise<void>
}

export function createTaskCacheService(options: TaskCacheServiceOptions): TaskCacheService {
  const families = options.families ?? createTaskFamilies(options.cache, options.ttl)
  const { status, progress, stats, list, hostTasks, execution } = families
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
      await Promise.all([
        status.delete(id),
        progress.delete(id),
        execution.delete(id),
        list.invalidate(),
        ...hostIds.map((h) => hostTasks.invalidateGroup(h)),
      ])
    },
    async invalidateHostCache(hostId: string) {
      const id = parseId(hostId, 'hostId')
      await Promise.all([hostTasks.invalidateGroup(id), list.invalidate()])
    },
    async invalidateAllTaskCache() {
      await options.cache.clear()
    },
  })
}
