/**
 * The original design's TaskService with its cache: reads go through the task families, writes go
 * to the repository and then invalidate exactly the entries they affected, on every process.
 *
 * Freshness
 *   Per-task views (status, progress, execution summary), list pages and host pages are exact: a
 *   write resolves once its invalidations are applied locally and handed to the bus, and a process
 *   that has applied them reads the write or a later one. A fill that began before the write can
 *   not land afterwards (the core's leases and invalidation epochs).
 *   Global statistics may lag writes by at most `statsMaxStaleness`: every write marks them dirty,
 *   and one invalidation at the next tick of a half-window wall-clock grid covers all writes
 *   before it (the other half is left for bus delivery and the reload). The grid is the same in
 *   every process, so the invalidations of busy processes land together and the statistics are
 *   reloaded about once per tick for the whole service, not once per write or per process.
 *
 * Lists
 *   `task:list` caches the ids and the total of a page; items come from `task:status`. A command
 *   result changes one task's counts: it invalidates that task's status only, and the lists pick it
 *   up through their items. Only writes that move list membership, order or totals (create, a
 *   status change) bump the list generation.
 */
import {
  InvalidOptionsError,
  parseDuration,
  silentLogger,
  type Duration,
  type Family,
  type Loader,
  type LoaderContext,
  type Logger,
  type TieredCache,
} from '@tiercache/core'
import { z } from 'zod'
import { createTaskFamilies, TASK_FAMILY_NAMES, TASK_FAMILY_VERSION, type TaskFamilies, type TaskFamilyTtls } from './families.js'
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
import type { CommandResultOutcome, TaskRepository, TaskWriteResult } from './repository.js'
import { createTaskCacheService, type TaskCacheService } from './task-cache-service.js'
import type { TaskCacheAdmin } from './admin-handler.js'

export interface CachedTaskServiceOptions {
  cache: TieredCache
  repository: TaskRepository
  /** Per-family TTLs. @default task:status 5m, task:progress 2m, task:stats 10m, task:list 3m, host:tasks 5m, task:execution 1m */
  ttl?: TaskFamilyTtls
  /** Longest global statistics may lag a write. `0`: invalidated with every write. @default '1s' */
  statsMaxStaleness?: Duration
  /** Run `warmupCache()` in the background once created. @default false */
  warmupOnStart?: boolean
  /** Running tasks whose status `warmupCache()` loads. @default 100 */
  warmupTasks?: number
  /** Interval of the maintenance run (cleanup + a statistics log line); `false` disables it. @default '30m' */
  maintenanceInterval?: Duration | false
  /** pino-compatible; hits and misses at debug, invalidations at debug, failures at warn. @default silent */
  logger?: Logger
}

export interface ResolvedCachedTaskServiceOptions {
  readonly statsMaxStalenessMs: number
  readonly warmupOnStart: boolean
  readonly warmupTasks: number
  readonly maintenanceIntervalMs: number | false
  readonly logger: Logger
  readonly traceReads: boolean
}

const durationSchema = z.union([z.number(), z.string()], { error: 'expected a duration (ms or a string like "1s")' })
const OptionsSchema = z.object({
  cache: z.custom<TieredCache>((v) => typeof (v as TieredCache | null)?.family === 'function', 'expected a TieredCache (createTieredCache())'),
  repository: z.custom<TaskRepository>(
    (v) => typeof (v as TaskRepository | null)?.getTaskStatusView === 'function',
    'expected a TaskRepository',
  ),
  ttl: z.unknown().optional(),
  statsMaxStaleness: durationSchema.default('1s'),
  warmupOnStart: z.boolean().default(false),
  warmupTasks: z.number().int().nonnegative().default(100),
  maintenanceInterval: z.union([durationSchema, z.literal(false)]).default('30m'),
  logger: z
    .custom<Logger>((v) => ['debug', 'info', 'warn', 'error'].every((m) => typeof (v as Record<string, unknown> | null)?.[m] === 'function'), 'expected a pino-compatible logger')
    .optional(),
})

export function resolveCachedTaskServiceOptions(options: CachedTaskServiceOptions): ResolvedCachedTaskServiceOptions {
  const parsed = OptionsSchema.safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidOptionsError(issue?.path.join('.') ?? '', issue?.message ?? 'invalid', { cause: parsed.error })
  }
  const o = parsed.data
  const interval = o.maintenanceInterval === false ? false : parseDuration(o.maintenanceInterval, 'maintenanceInterval')
  if (interval !== false && interval < 1000) throw new InvalidOptionsError('maintenanceInterval', `must be at least 1s or false (got ${interval}ms)`)
  return Object.freeze({
    statsMaxStalenessMs: parseDuration(o.statsMaxStaleness, 'statsMaxStaleness'),
    warmupOnStart: o.warmupOnStart,
    warmupTasks: o.warmupTasks,
    maintenanceIntervalMs: interval,
    logger: o.logger ?? silentLogger,
    traceReads: o.logger !== undefined,
  })
}

/** Which write happened, for the `invalidated` listeners. */
export type TaskWriteKind = 'createTask' | 'startTask' | 'cancelTask' | 'updateTaskStatus' | 'recordCommandResult' | 'statistics'

/** What one write invalidated (also the row of the invalidation map it followed). */
export interface InvalidationRecord {
  readonly write: TaskWriteKind
  readonly taskId?: string
  /** Per-task views dropped for `taskId`. */
  readonly taskViews: boolean
  /** The list generation was bumped. */
  readonly lists: boolean
  /** Hosts whose `host:tasks` generation was bumped. */
  readonly hosts: readonly string[]
  /** Statistics were marked dirty (invalidated within the staleness window). */
  readonly statistics: boolean
}

export interface FamilyStatistics {
  /** Entries in L2 (all generations), or null when L2 cannot tell. */
  readonly entries: number | null
  readonly l1Hits: number
  readonly l2Hits: number
  readonly misses: number
  /** (l1Hits + l2Hits) / lookups, 0 before the first lookup. */
  readonly hitRate: number
  readonly loaderCalls: number
  readonly loaderErrors: number
  readonly staleServed: number
  readonly l2Errors: number
}

export interface TaskCacheStatistics {
  readonly families: Readonly<Record<string, FamilyStatistics>>
  readonly total: { readonly hitRate: number; readonly l1Hits: number; readonly l2Hits: number; readonly misses: number }
  readonly l1: { readonly entries: number; readonly bytes: number }
  readonly l2: {
    readonly available: boolean
    readonly connection: string
    readonly usedMemoryBytes: number | null
  }
  readonly breaker: { readonly state: string; readonly transitions: number }
  readonly busHealthy: boolean
  readonly recoveryQueueDepth: number
  /** True while reads bypass L2 (breaker open or L2 unreachable) and are served from the database. */
  readonly degraded: boolean
  readonly database: { readonly queries: number }
}

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

export interface CachedTaskService extends TaskCacheAdmin {
  /** The underlying `TaskCacheService` (same families). */
  readonly taskCache: TaskCacheService
  readonly families: TaskFamilies
  readonly options: ResolvedCachedTaskServiceOptions

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
  /** Drops one task's views, the lists and the task's host pages. */
  invalidateTaskCache(taskId: string): Promise<void>
  invalidateHostCache(hostId: string): Promise<void>
  /** Drops every entry of the six task families on every process (the namespace: `cache.clear()`). */
  invalidateAllTaskCache(): Promise<void>
  warmupCache(): Promise<WarmupReport>
  cleanupCache(): Promise<CleanupReport>
  /** Applies a pending statistics invalidation now. */
  flushStatistics(): Promise<void>
  /** Listens to invalidations made by this process's writes; returns an unsubscribe function. */
  onInvalidated(listener: (record: InvalidationRecord) => void): () => void
  /** Stops the maintenance timer and applies a pending statistics invalidation. Leaves cache and repository open. */
  close(): Promise<void>
}

export function createCachedTaskService(options: CachedTaskServiceOptions): CachedTaskService {
  const resolved = resolveCachedTaskServiceOptions(options)
  return new CachedTaskServiceImpl(options.cache, options.repository, createTaskFamilies(options.cache, options.ttl), resolved)
}

/** Collects `task:status` loads of one turn of the event loop into one repository query. */
class StatusBatch {
  #pending = new Map<string, { resolve: (v: TaskStatusView | null) => void; reject: (e: unknown) => void }[]>()
  #scheduled = false
  readonly #repository: TaskRepository

  constructor(repository: TaskRepository) {
    this.#repository = repository
  }

  load(id: string): Promise<TaskStatusView | null> {
    return new Promise((resolve, reject) => {
      const waiting = this.#pending.get(id)
      if (waiting) waiting.push({ resolve, reject })
      else this.#pending.set(id, [{ resolve, reject }])
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    const batch = this.#pending
    this.#pending = new Map()
    this.#scheduled = false
    const ids = [...batch.keys()]
    this.#repository.getTaskStatusViews(ids).then(
      (views) => ids.forEach((id, i) => batch.get(id)?.forEach((w) => w.resolve(views[i] ?? null))),
      (error: unknown) => batch.forEach((waiting) => waiting.forEach((w) => w.reject(error))),
    )
  }
}

class CachedTaskServiceImpl implements CachedTaskService {
  readonly taskCache: TaskCacheService
  readonly families: TaskFamilies
  readonly options: ResolvedCachedTaskServiceOptions
  readonly #cache: TieredCache
  readonly #repo: TaskRepository
  readonly #log: Logger
  readonly #batch: StatusBatch
  readonly #listeners = new Set<(record: InvalidationRecord) => void>()
  #statsTimer: NodeJS.Timeout | undefined
  #statsFlush: Promise<void> | undefined
  #maintenance: NodeJS.Timeout | undefined
  #maintaining = false

  constructor(cache: TieredCache, repository: TaskRepository, families: TaskFamilies, options: ResolvedCachedTaskServiceOptions) {
    this.#cache = cache
    this.#repo = repository
    this.families = families
    this.options = options
    this.#log = options.logger
    this.#batch = new StatusBatch(repository)
    this.taskCache = createTaskCacheService({ cache, families })
    if (options.traceReads) this.#read = this.#tracedRead
    if (options.maintenanceIntervalMs !== false) {
      this.#maintenance = setInterval(() => void this.#runMaintenance(), options.maintenanceIntervalMs)
      this.#maintenance.unref()
    }
    if (options.warmupOnStart) {
      this.warmupCache().catch((error: unknown) => this.#log.warn({ err: error }, 'task cache warmup failed'))
    }
  }

  // ------------------------------------------------------------------ reads

  // Loaders take their key from the loader context, so a read allocates no closure.
  readonly #loadStatus = (c: LoaderContext<TaskStatusView>) => this.#repo.getTaskStatusView(c.key) as Promise<TaskStatusView>
  readonly #loadStatusInBatch = (c: LoaderContext<TaskStatusView>) => this.#batch.load(c.key) as Promise<TaskStatusView>
  readonly #loadProgress = (c: LoaderContext<TaskProgressView>) => this.#repo.getTaskProgressView(c.key) as Promise<TaskProgressView>
  readonly #loadExecution = (c: LoaderContext<TaskExecutionSummary>) =>
    this.#repo.getTaskExecutionSummary(c.key) as Promise<TaskExecutionSummary>
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
    // Items resident in L1 are taken synchronously; only the others go through getOrSet, and
    // their loads of one turn share one repository query.
    const status = this.families.status
    const items: (TaskStatusView | null | Promise<TaskStatusView | null>)[] = new Array(page.ids.length)
    let pending = false
    for (let i = 0; i < page.ids.length; i++) {
      const id = page.ids[i] as string
      const resident = status.peek(id)
      if (resident !== undefined) items[i] = resident
      else {
        items[i] = status.getOrSet(id, this.#loadStatusInBatch, ABSENT_IS_AN_ANSWER)
        pending = true
      }
    }
    const views = pending ? await Promise.all(items) : (items as (TaskStatusView | null)[])
    const out: TaskStatusView[] = []
    for (const view of views) if (view !== null) out.push(view)
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
    // Its id may have been read (and cached as absent) before it existed.
    await this.#invalidate({ write: 'createTask', taskId: task.id, taskViews: true, lists: true, hosts: task.hostIds, statistics: true })
    return task
  }

  async startTask(taskId: string): Promise<Task> {
    return (await this.#afterTaskWrite('startTask', await this.#repo.startTask(parseId(taskId, 'taskId')))).task
  }

  async cancelTask(taskId: string): Promise<Task> {
    return (await this.#afterTaskWrite('cancelTask', await this.#repo.cancelTask(parseId(taskId, 'taskId')))).task
  }

  async updateTaskStatus(taskId: string, status: TaskStatus): Promise<Task> {
    const id = parseId(taskId, 'taskId')
    const parsed = TaskStatusSchema.safeParse(status)
    if (!parsed.success) throw new InvalidTaskQueryError(`invalid status: ${String(status)}`, 'status', { cause: parsed.error })
    return (await this.#afterTaskWrite('updateTaskStatus', await this.#repo.updateTaskStatus(id, parsed.data))).task
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
    await this.#invalidate({
      write: 'recordCommandResult',
      taskId: id,
      taskViews: true,
      lists: outcome.statusChanged,
      hosts: outcome.statusChanged ? outcome.task.hostIds : [host],
      statistics: true,
    })
    return outcome
  }

  async #afterTaskWrite(write: TaskWriteKind, result: TaskWriteResult): Promise<TaskWriteResult> {
    const moved = result.statusChanged || result.executionsChanged
    await this.#invalidate({
      write,
      taskId: result.task.id,
      taskViews: true,
      lists: result.statusChanged,
      hosts: moved ? result.task.hostIds : [],
      statistics: moved,
    })
    return result
  }

  async #invalidate(record: InvalidationRecord): Promise<void> {
    const { status, progress, execution, list, hostTasks } = this.families
    const work: Promise<void>[] = []
    if (record.taskViews && record.taskId !== undefined) {
      work.push(status.delete(record.taskId), progress.delete(record.taskId), execution.delete(record.taskId))
    }
    if (record.lists) work.push(list.invalidate())
    for (const host of record.hosts) work.push(hostTasks.invalidateGroup(host))
    if (record.statistics) work.push(this.#statisticsChanged())
    await Promise.all(work)
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

  #statisticsChanged(): Promise<void> {
    if (this.options.statsMaxStalenessMs === 0) return this.#flushStatisticsNow()
    if (this.#statsTimer === undefined) {
      this.#statsTimer = setTimeout(() => {
        this.#statsTimer = undefined
        // Errors are logged inside; the timer must never leave a rejection behind.
        void this.#flushStatisticsNow()
      }, untilNextTick(Date.now(), this.options.statsMaxStalenessMs / 2))
      this.#statsTimer.unref()
    }
    return Promise.resolve()
  }

  #flushStatisticsNow(): Promise<void> {
    const flush = this.families.stats
      .delete('global')
      .then(
        () => this.#emit({ write: 'statistics', taskViews: false, lists: false, hosts: [], statistics: true }),
        (error: unknown) => this.#log.warn({ err: error }, 'task statistics invalidation failed'),
      )
      .finally(() => {
        if (this.#statsFlush === flush) this.#statsFlush = undefined
      })
    this.#statsFlush = flush
    return flush
  }

  async flushStatistics(): Promise<void> {
    if (this.#statsTimer !== undefined) {
      clearTimeout(this.#statsTimer)
      this.#statsTimer = undefined
      await this.#flushStatisticsNow()
    } else if (this.#statsFlush !== undefined) {
      await this.#statsFlush
    }
  }

  onInvalidated(listener: (record: InvalidationRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  // ------------------------------------------------------------------ management

  async getCacheStatistics(): Promise<TaskCacheStatistics> {
    const stats = this.#cache.stats()
    let info: Awaited<ReturnType<TieredCache['l2Info']>>
    let l2Available = true
    try {
      info = await this.#cache.l2Info()
    } catch (error) {
      l2Available = false
      this.#log.warn({ err: error }, 'task cache statistics: L2 info unavailable')
    }
    const families: Record<string, FamilyStatistics> = {}
    for (const name of Object.values(TASK_FAMILY_NAMES)) {
      const id = `${name}@${TASK_FAMILY_VERSION}`
      const c = stats.families[id]
      const l1Hits = c?.l1Hits ?? 0
      const l2Hits = c?.l2Hits ?? 0
      const misses = c?.misses ?? 0
      const lookups = l1Hits + l2Hits + misses
      families[name] = {
        entries: info === undefined ? null : (info.keysByFamily[id] ?? 0),
        l1Hits,
        l2Hits,
        misses,
        hitRate: lookups === 0 ? 0 : (l1Hits + l2Hits) / lookups,
        loaderCalls: c?.loaderCalls ?? 0,
        loaderErrors: c?.loaderErrors ?? 0,
        staleServed: c?.staleServed ?? 0,
        l2Errors: c?.l2Errors ?? 0,
      }
    }
    const connection = info?.connection ?? (l2Available ? 'none' : 'unavailable')
    return {
      families,
      total: { hitRate: stats.total.hitRate, l1Hits: stats.total.l1Hits, l2Hits: stats.total.l2Hits, misses: stats.total.misses },
      l1: stats.l1,
      l2: { available: l2Available && info !== undefined, connection, usedMemoryBytes: info?.usedMemoryBytes ?? null },
      breaker: stats.breaker,
      busHealthy: stats.busHealthy,
      recoveryQueueDepth: stats.recoveryQueueDepth,
      degraded: stats.breaker.state === 'open' || !l2Available || (info !== undefined && info.connection !== 'ready'),
      database: { queries: this.#repo.queryCount },
    }
  }

  async invalidateAllCache(): Promise<void> {
    await this.#cache.clear()
    this.#log.debug({}, 'task cache cleared')
  }

  async invalidateTaskCache(taskId: string): Promise<void> {
    const id = parseId(taskId, 'taskId')
    const hostIds = await this.#repo.getTaskHostIds(id)
    await this.taskCache.invalidateTaskCache(id, { hostIds })
    this.#log.debug({ taskId: id, hosts: hostIds.length }, 'task cache invalidated for a task')
  }

  async invalidateHostCache(hostId: string): Promise<void> {
    await this.taskCache.invalidateHostCache(hostId)
    this.#log.debug({ hostId }, 'task cache invalidated for a host')
  }

  async invalidateAllTaskCache(): Promise<void> {
    await this.taskCache.invalidateAllTaskCache()
    this.#log.debug({}, 'task cache invalidated: all task families (namespace cleared)')
  }

  async warmupCache(): Promise<WarmupReport> {
    const started = performance.now()
    const ids = this.options.warmupTasks === 0 ? [] : await this.#repo.listRunningTaskIds(this.options.warmupTasks)
    await Promise.all([
      this.getTaskStatistics(),
      this.getTasks({}),
      this.getTasks({ status: 'running' }),
      ...ids.map((id) => this.getTaskStatus(id)),
    ])
    const report = { tasks: ids.length, listPages: 2, statistics: true, durationMs: Math.round(performance.now() - started) }
    this.#log.info(report, 'task cache warmed up')
    return report
  }

  /**
   * Deletes the stored list and host pages. Most are orphans of older generations (every status
   * change bumps the list generation; they would otherwise sit in Redis until their TTL); the live
   * ones reload on their next read, and L1 copies stay valid. Per-task views and statistics are
   * replaced in place and expire by TTL, so they are left alone. Redis removes expired keys itself.
   */
  async cleanupCache(): Promise<CleanupReport> {
    const started = performance.now()
    let deleted = 0
    for (const name of [TASK_FAMILY_NAMES.list, TASK_FAMILY_NAMES.hostTasks]) {
      deleted += await this.#cache.deleteByPattern(`${name}@${TASK_FAMILY_VERSION}:*`)
    }
    const report = { deleted, durationMs: Math.round(performance.now() - started) }
    this.#log.info(report, 'task cache cleaned up')
    return report
  }

  async #runMaintenance(): Promise<void> {
    if (this.#maintaining) return
    this.#maintaining = true
    try {
      const cleanup = await this.cleanupCache()
      const stats = await this.getCacheStatistics()
      this.#log.info(
        {
          deleted: cleanup.deleted,
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
      this.#maintaining = false
    }
  }

  async close(): Promise<void> {
    if (this.#maintenance !== undefined) clearInterval(this.#maintenance)
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

/** Milliseconds from `now` to the next multiple of `tick` (at least 1). */
function untilNextTick(now: number, tick: number): number {
  if (tick < 1) return 1
  return Math.max(1, Math.ceil(tick - (now % tick)))
}
