/**
 * The six cache families of the task domain, with the original design's TTLs as defaults.
 *
 * The list families are generational: a status change bumps the `task:list` generation (O(1),
 * whatever the number of cached pages), and `host:tasks` has one generation per host (its group),
 * so a write on one host's executions invalidates that host's pages only. The per-task views and
 * the statistics are plain keyed families: they are invalidated key by key, and they keep serving
 * from L1 while Redis is unreachable (a generational family cannot, as long as its generation is
 * unknown).
 */
import { type Duration, type Family, type TieredCache } from '@tiercache/core'
import { z } from 'zod'
import {
  TaskExecutionSummarySchema,
  TaskIdPageSchema,
  TaskProgressViewSchema,
  TaskStatisticsSchema,
  TaskStatusViewSchema,
  HostTasksPageSchema,
  hostTasksKey,
  taskListKey,
  type HostTasksPage,
  type HostTasksQuery,
  type TaskExecutionSummary,
  type TaskIdPage,
  type TaskListQuery,
  type TaskProgressView,
  type TaskStatistics,
  type TaskStatusView,
} from './model.js'
import { parseOptions } from './parse-options.js'

/** Time each family's entries stay fresh. */
export interface TaskFamilyTtls {
  /** `task:status` @default '5m' */
  status?: Duration
  /** `task:progress` @default '2m' */
  progress?: Duration
  /** `task:stats` @default '10m' */
  stats?: Duration
  /** `task:list` @default '3m' */
  list?: Duration
  /** `host:tasks` @default '5m' */
  hostTasks?: Duration
  /** `task:execution` @default '1m' */
  execution?: Duration
  /**
   * The status, progress and execution views of a finished task (success, failed, cancelled):
   * they rarely change again, and when they do their writes still invalidate them. @default '1h'
   */
  finished?: Duration
}

export const DEFAULT_TASK_TTLS = Object.freeze({
  status: '5m',
  progress: '2m',
  stats: '10m',
  list: '3m',
  hostTasks: '5m',
  execution: '1m',
  finished: '1h',
} satisfies Required<TaskFamilyTtls>)

export const TASK_FAMILY_NAMES = Object.freeze({
  status: 'task:status',
  progress: 'task:progress',
  stats: 'task:stats',
  list: 'task:list',
  hostTasks: 'host:tasks',
  execution: 'task:execution',
} as const)

/** Bumped when a family's value shape changes, so that a rolling deploy never reads the other shape. */
export const TASK_FAMILY_VERSION = 1

export interface HostTasksParams {
  readonly hostId: string
  readonly query: HostTasksQuery
}

export interface TaskFamilies {
  readonly status: Family<string, TaskStatusView>
  readonly progress: Family<string, TaskProgressView>
  /** One entry, key `global`. */
  readonly stats: Family<'global', TaskStatistics>
  /** Ids and total of a list page; items come from `status`. */
  readonly list: Family<TaskListQuery, TaskIdPage>
  readonly hostTasks: Family<HostTasksParams, HostTasksPage>
  readonly execution: Family<string, TaskExecutionSummary>
}

const durationSchema = z.union([z.number(), z.string()], { error: 'expected a duration (ms or a string like "5m")' })
const TtlsSchema = z.strictObject({
  status: durationSchema.optional(),
  progress: durationSchema.optional(),
  stats: durationSchema.optional(),
  list: durationSchema.optional(),
  hostTasks: durationSchema.optional(),
  execution: durationSchema.optional(),
  finished: durationSchema.optional(),
})

/** Resolves the TTLs (defaults filled in); errors name `ttl.<family>`. */
export function resolveTaskTtls(ttl: TaskFamilyTtls | undefined): Readonly<Required<TaskFamilyTtls>> {
  const parsed = parseOptions(TtlsSchema, ttl ?? {}, ['ttl'])
  const out: Required<TaskFamilyTtls> = { ...DEFAULT_TASK_TTLS }
  for (const [name, value] of Object.entries(parsed)) if (value !== undefined) out[name as keyof TaskFamilyTtls] = value
  return Object.freeze(out)
}

/** Declares the six families on a cache. Call once per cache: a second call replaces the counters. */
export function createTaskFamilies(cache: TieredCache, ttl?: TaskFamilyTtls): TaskFamilies {
  const t = resolveTaskTtls(ttl)
  const version = TASK_FAMILY_VERSION
  const byId = (id: string) => id
  return Object.freeze({
    status: cache.family<string, TaskStatusView>({
      name: TASK_FAMILY_NAMES.status,
      version,
      ttl: t.status,
      key: byId,
      schema: TaskStatusViewSchema,
    }),
    progress: cache.family<string, TaskProgressView>({
      name: TASK_FAMILY_NAMES.progress,
      version,
      ttl: t.progress,
      key: byId,
      schema: TaskProgressViewSchema,
    }),
    stats: cache.family<'global', TaskStatistics>({
      name: TASK_FAMILY_NAMES.stats,
      version,
      ttl: t.stats,
      key: byId,
      schema: TaskStatisticsSchema,
    }),
    list: cache.family<TaskListQuery, TaskIdPage>({
      name: TASK_FAMILY_NAMES.list,
      version,
      ttl: t.list,
      key: taskListKey,
      schema: TaskIdPageSchema,
      generational: true,
    }),
    hostTasks: cache.family<HostTasksParams, HostTasksPage>({
      name: TASK_FAMILY_NAMES.hostTasks,
      version,
      ttl: t.hostTasks,
      key: (p) => hostTasksKey(p.hostId, p.query),
      schema: HostTasksPageSchema,
      generational: { group: (p) => p.hostId },
    }),
    execution: cache.family<string, TaskExecutionSummary>({
      name: TASK_FAMILY_NAMES.execution,
      version,
      ttl: t.execution,
      key: byId,
      schema: TaskExecutionSummarySchema,
    }),
  })
}
