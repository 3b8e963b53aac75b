/**
 * The original design's TaskService with its cache: reads go through the task families, writes go
 * to the repository and then invalidate exactly the entries they affected, on every process.
 *
 * Freshness
 *   Per-task views (status, progress, execution summary), list pages and host pages are exact: a
 *   write resolves once its invalidations are applied locally and handed to the bus (with
 *   `backgroundWrites`: applied locally and queued, the writer reading its own writes meanwhile),
 *   and a process that has applied them reads the write or a later one. A fill that began before the write can
 *   not land afterwards (the core's leases and invalidation epochs).
 *   Global statistics may lag writes by at most `statsMaxStaleness` (`stats-debounce.ts`).
 *
 * Lists
 *   `task:list` caches the ids and the total of a page; items come from `task:status`. Which
 *   entries a write drops is the invalidation map's business (`invalidation-map.ts`), shared with
 *   the operator's invalidations.
 */
import type { BatchLoader, Duration, Family, Loader, LoaderContext, Logger, TieredCache } from '@tiercache/core'
import type { TaskCacheAdmin } from './admin-handler.js'
import { readCacheStatistics, type TaskCacheStatistics } from './cache-statistics.js'
import { createTaskFamilies, resolveTaskTtls, TASK_FAMILY_NAMES, type TaskFamilies } from './families.js'
import { isFinalTaskStatus } from './state-machine.js'
import { applyInvalidation, invalidationOf, type InvalidationRecord, type TaskChange } from './invalidation-map.js'
import { cleanup, MaintenanceRun, warmup, type CleanupReport, type WarmupReport } from './maintenance.js'
import {
  CommandResultSchema,
  NewTaskSchema,
  TaskStatusSchema,
  parseHostTasksQuery,
  parseId,
  parseTaskListQuery,
  taskListKey,
  type CommandResult,
  type HostTasksPage,
  type HostTasksQueryInput,
  type NewTask,
  type Task,
  type TaskExecutionSummary,
  type TaskListPage,
  type TaskListQueryInput,
  type TaskProgressView,
  type TaskStatistics,
  type TaskStatus,
  type TaskStatusView,
} from './model.js'
import { InvalidTaskQueryError } from './errors.js'
import type { CommandResultOutcome, TaskRepository } from './repository.js'
import { resolveCachedTaskServiceOptions, type CachedTaskServiceOptions, type ResolvedCachedTaskServiceOptions } from './service-options.js'
import { KeyCounts } from './key-counts.js'
import { StatisticsDebounce, statisticsInvalidationFamily } from './stats-debounce.js'
import { createTaskCacheService, type TaskCacheService } from './task-cache-service.js'

export interface CachedTaskService extends TaskCacheAdmin {
  /** The underlying `TaskCacheService` (same families). */
  readonly taskCache: TaskCacheService
  readonly families: TaskFamilies
  readonly options: ResolvedCachedTaskServiceOptions
  /**
   * Queries this service sent to its repository so far (the repository's `queryCount`): what a
   * metrics exporter reads at scrape time (`databaseQueries: () => service.databaseQueries`).
   */
  readonly databaseQueries: number

  getTaskStatus(taskId: string): Promise<TaskStatusView | null>
  getTaskProgress(taskId: string): Promise<TaskProgressView | null>
  getTasks(query?: TaskListQueryInput): Promise<TaskListPage>
  getHostTasks(hostId: string, query?: HostTasksQueryInput): Promise<HostTasksPage>
  getTaskExecution(taskId: string): Promise<TaskExecutionSummary | null>
  getTaskStatistics(): Promise<TaskStatistics>

  createTask(input: NewTask): Promise<Task>
  startTask(taskId: string): Promise<Task>
  cancelTask(taskId: string): Promise<Task>
  updateTaskStatus(taskId: string, status: TaskStatus): Promise<Task>
  recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome>

  getCacheStatistics(): Promise<TaskCacheStatistics>
  /** Clears the cache's whole namespace on every process. */
  invalidateAllCache(): Promise<void>
  /** The invalidation map's row for a task that may have changed in any way: its views, the lists, its hosts' pages, statistics. */
  invalidateTaskCache(taskId: string): Promise<void>
  /** The invalidation map's row for a host whose executions may have changed: its pages, statistics. */
  invalidateHostCache(hostId: string): Promise<void>
  /** Drops every entry of the six task families on every process (the namespace: `cache.clear()`). */
  invalidateAllTaskCache(): Promise<void>
  warmupCache(): Promise<WarmupReport>
  /** Deletes what older generations of the list and host families left in L2; resolves how many. */
  cleanupCache(): Promise<CleanupReport>
  /** Applies a pending statistics invalidation now. */
  flushStatistics(): Promise<void>
  /** Listens to the invalidations this process makes (writes and the operator's); returns an unsubscribe function. */
  onInvalidated(listener: (record: InvalidationRecord) => void): () => void
  /** Stops the maintenance timer and applies a pending statistics invalidation. Leaves cache and repository open. */
  close(): Promise<void>
}

export function createCachedTaskService(options: CachedTaskServiceOptions): CachedTaskService {
  const resolved = resolveCachedTaskServiceOptions(options)
  const families = createTaskFamilies(options.cache, options.ttl)
  return new CachedTaskServiceImpl(options.cache, options.repository, families, resolved, resolveTaskTtls(options.ttl).finished)
}

class CachedTaskServiceImpl implements CachedTaskService {
  readonly taskCache: TaskCacheService
  readonly families: TaskFamilies
  readonly options: ResolvedCachedTaskServiceOptions
  readonly #cache: TieredCache
  readonly #repo: TaskRepository
  readonly #log: Logger
  readonly #statistics: StatisticsDebounce
  readonly #keyCounts: KeyCounts
  readonly #listeners = new Set<(record: InvalidationRecord) => void>()
  #maintenance: MaintenanceRun | undefined
  readonly #finishedTtl: Duration

  constructor(cache: TieredCache, repository: TaskRepository, families: TaskFamilies, options: ResolvedCachedTaskServiceOptions, finishedTtl: Duration) {
    this.#cache = cache
    this.#finishedTtl = finishedTtl
    this.#repo = repository
    this.families = families
    this.options = options
    this.#log = options.logger
    this.#statistics = new StatisticsDebounce(
      families.stats,
      statisticsInvalidationFamily(cache, options.statsMaxStalenessMs),
      options.statsMaxStalenessMs,
      options.logger,
      () => this.#emit({ write: 'statistics', taskViews: false, lists: false, hosts: [], statistics: true }),
    )
    this.#keyCounts = new KeyCounts(cache, options.logger)
    this.taskCache = createTaskCacheService({ cache, families })
    if (options.traceReads) this.#read = this.#tracedRead
    if (options.maintenanceIntervalMs !== false) this.#maintenance = new MaintenanceRun(this, options.maintenanceIntervalMs, options.logger)
    if (options.warmupOnStart) {
      this.warmupCache().catch((error: unknown) => this.#log.warn({ err: error }, 'task cache warmup failed'))
    }
  }

  // ------------------------------------------------------------------ reads

  // Loaders take their key from the loader context, so a read allocates no closure. A finished
  // task's views rarely change again (their writes still invalidate them): they get `ttl.finished`.
  readonly #loadStatus = async (c: LoaderContext<TaskStatusView>) => this.#fit(c, await this.#repo.getTaskStatusView(c.key)) as TaskStatusView
  /** A page's items missing from the cache, in one repository query; finished tasks' views live `ttl.finished`. */
  readonly #loadStatuses: BatchLoader<string, TaskStatusView> = async (ids, c) => {
    const views = await this.#repo.getTaskStatusViews(ids)
    views.forEach((view, i) => {
      if (view !== null && isFinalTaskStatus(view.status)) c.setTtl(ids[i] as string, this.#finishedTtl)
    })
    // `null` (an unknown id) is cached as an answer, like the single-key loaders' (ABSENT_IS_AN_ANSWER).
    return views as TaskStatusView[]
  }
  readonly #loadProgress = async (c: LoaderContext<TaskProgressView>) => this.#fit(c, await this.#repo.getTaskProgressView(c.key)) as TaskProgressView
  readonly #loadExecution = async (c: LoaderContext<TaskExecutionSummary>) =>
    this.#fit(c, await this.#repo.getTaskExecutionSummary(c.key)) as TaskExecutionSummary

  #fit<V extends { readonly status: TaskStatusView['status'] } | null>(c: LoaderContext<unknown>, view: V): V {
    if (view !== null && isFinalTaskStatus(view.status)) c.setTtl(this.#finishedTtl)
    return view
  }
  readonly #loadStatistics = () => this.#repo.getTaskStatistics()

  /**
   * A family read. An unknown id is answered with `null`, cached like a value. Replaced at
   * construction by the traced variant when a logger is given.
   */
  #read = <P, V>(_family: string, _key: string, family: Family<P, V>, params: P, loader: Loader<V>): Promise<V> =>
    family.getOrSet(params, loader, ABSENT_IS_AN_ANSWER)

  #tracedRead = async <P, V>(familyName: string, key: string, family: Family<P, V>, params: P, loader: Loader<V>): Promise<V> => {
    let loaded = false
    const value = await family.getOrSet(
      params,
      (c) => {
        loaded = true
        return loader(c)
      },
      ABSENT_IS_AN_ANSWER,
    )
    this.#log.debug({ family: familyName, key, hit: !loaded }, loaded ? 'task cache miss' : 'task cache hit')
    return value
  }

  getTaskStatus(taskId: string): Promise<TaskStatusView | null> {
    const id = parseId(taskId, 'taskId')
    return this.#read(TASK_FAMILY_NAMES.status, id, this.families.status, id, this.#loadStatus) as Promise<TaskStatusView | null>
  }

  getTaskProgress(taskId: string): Promise<TaskProgressView | null> {
    const id = parseId(taskId, 'taskId')
    return this.#read(TASK_FAMILY_NAMES.progress, id, this.families.progress, id, this.#loadProgress) as Promise<TaskProgressView | null>
  }

  getTaskExecution(taskId: string): Promise<TaskExecutionSummary | null> {
    const id = parseId(taskId, 'taskId')
    return this.#read(TASK_FAMILY_NAMES.execution, id, this.families.execution, id, this.#loadExecution) as Promise<TaskExecutionSummary | null>
  }

  getTaskStatistics(): Promise<TaskStatistics> {
    return this.#read(TASK_FAMILY_NAMES.stats, 'global', this.families.stats, 'global', this.#loadStatistics)
  }

  async getTasks(input?: TaskListQueryInput): Promise<TaskListPage> {
    const query = parseTaskListQuery(input)
    const page = await this.#read(TASK_FAMILY_NAMES.list, taskListKey(query), this.families.list, query, () => this.#repo.listTaskIds(query))
    // Items: L1, then one L2 batch, then one repository query for the rest (`getOrSetMany`).
    const views = await this.families.status.getOrSetMany(page.ids, this.#loadStatuses, ABSENT_IS_AN_ANSWER)
    const out: TaskStatusView[] = []
    for (const view of views) if (view !== null && view !== undefined) out.push(view)
    return { page: query.page, pageSize: query.size, total: page.total, items: out }
  }

  getHostTasks(hostId: string, input?: HostTasksQueryInput): Promise<HostTasksPage> {
    const id = parseId(hostId, 'hostId')
    const query = parseHostTasksQuery(input)
    return this.#read(TASK_FAMILY_NAMES.hostTasks, id, this.families.hostTasks, { hostId: id, query }, () => this.#repo.getHostTasksPage(id, query))
  }

  // ------------------------------------------------------------------ writes

  async createTask(input: NewTask): Promise<Task> {
    const parsed = NewTaskSchema.safeParse(input)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = issue?.path.join('.') || '(input)'
      throw new InvalidTaskQueryError(`invalid task: ${field} ${issue?.message ?? 'invalid'}`, field, { cause: parsed.error })
    }
    const task = await this.#repo.createTask(parsed.data)
    await this.#invalidate({ write: 'createTask', task })
    return task
  }

  async startTask(taskId: string): Promise<Task> {
    const result = await this.#repo.startTask(parseId(taskId, 'taskId'))
    await this.#invalidate({ write: 'startTask', result })
    return result.task
  }

  async cancelTask(taskId: string): Promise<Task> {
    const result = await this.#repo.cancelTask(parseId(taskId, 'taskId'))
    await this.#invalidate({ write: 'cancelTask', result })
    return result.task
  }

  async updateTaskStatus(taskId: string, status: TaskStatus): Promise<Task> {
    const id = parseId(taskId, 'taskId')
    const parsed = TaskStatusSchema.safeParse(status)
    if (!parsed.success) throw new InvalidTaskQueryError(`invalid status: ${String(status)}`, 'status', { cause: parsed.error })
    const result = await this.#repo.updateTaskStatus(id, parsed.data)
    await this.#invalidate({ write: 'updateTaskStatus', result })
    return result.task
  }

  async recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome> {
    const id = parseId(taskId, 'taskId')
    const host = parseId(hostId, 'hostId')
    const parsed = CommandResultSchema.safeParse(result)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = issue?.path.join('.') || '(result)'
      throw new InvalidTaskQueryError(`invalid command result: ${field} ${issue?.message ?? 'invalid'}`, field, { cause: parsed.error })
    }
    const outcome = await this.#repo.recordCommandResult(id, host, parsed.data)
    await this.#invalidate({ write: 'recordCommandResult', hostId: host, outcome })
    return outcome
  }

  async #invalidate(change: TaskChange): Promise<void> {
    const record = invalidationOf(change)
    // The writes' invalidations follow `backgroundWrites`; an operator's are always awaited.
    const operator = change.write === 'invalidateTaskCache' || change.write === 'invalidateHostCache'
    const background = this.options.backgroundWrites
    const write = operator || background === undefined ? undefined : { background }
    await applyInvalidation(this.families, record, () => this.#statistics.changed(), write)
    this.#log.debug({ ...record, hosts: record.hosts.length }, 'task cache invalidated')
    this.#emit(record)
  }

  #emit(record: InvalidationRecord): void {
    for (const listener of this.#listeners) {
      try {
        listener(record)
      } catch (error) {
        this.#log.warn({ err: error }, 'task cache invalidation listener threw')
      }
    }
  }

  flushStatistics(): Promise<void> {
    return this.#statistics.flush()
  }

  onInvalidated(listener: (record: InvalidationRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  // ------------------------------------------------------------------ management

  get databaseQueries(): number {
    return this.#repo.queryCount
  }

  getCacheStatistics(): Promise<TaskCacheStatistics> {
    return readCacheStatistics(this.#cache, this.families, this.#keyCounts, this.#repo.queryCount, this.#log)
  }

  async invalidateAllCache(): Promise<void> {
    await this.#cache.clear()
    this.#keyCounts.forget()
    this.#log.debug({}, 'task cache cleared')
  }

  async invalidateTaskCache(taskId: string): Promise<void> {
    const id = parseId(taskId, 'taskId')
    const hostIds = await this.#repo.getTaskHostIds(id)
    await this.#invalidate({ write: 'invalidateTaskCache', taskId: id, hostIds })
    this.#keyCounts.forget()
  }

  async invalidateHostCache(hostId: string): Promise<void> {
    await this.#invalidate({ write: 'invalidateHostCache', hostId: parseId(hostId, 'hostId') })
    this.#keyCounts.forget()
  }

  async invalidateAllTaskCache(): Promise<void> {
    await this.taskCache.invalidateAllTaskCache()
    this.#keyCounts.forget()
    this.#log.debug({}, 'task cache invalidated: all task families (namespace cleared)')
  }

  // The operator's actions change what L2 holds: the key counts are taken again after each.
  async warmupCache(): Promise<WarmupReport> {
    const report = await warmup(this, this.#repo, this.options.warmupTasks, this.#log)
    this.#keyCounts.forget()
    return report
  }

  async cleanupCache(): Promise<CleanupReport> {
    const report = await cleanup(this.families, this.#log)
    this.#keyCounts.forget()
    return report
  }

  async close(): Promise<void> {
    this.#maintenance?.stop()
    this.#maintenance = undefined
    await this.flushStatistics()
  }
}

/**
 * An unknown task id is cached as `null` like any answer: a probe for a missing id then costs one
 * query per TTL instead of one per read, and its lease is settled by the fill. `createTask`
 * drops the new id's views, so a task is never hidden by an earlier miss.
 */
const ABSENT_IS_AN_ANSWER = Object.freeze({ negativeCaching: true })
