/**
 * The task-dispatch domain and the views the cache holds. Shapes follow the task fixtures of
 * `@tiercache/testkit` (task-status, task-progress, task-list-page): task-level times are ISO
 * strings, host-level times are epoch milliseconds, as a service holds them after reading its
 * database. Every view has a zod schema so that a value read back from L2 is checked before use.
 */
import { z } from 'zod'
import { InvalidTaskQueryError } from './errors.js'

export const TASK_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'] as const
export const EXECUTION_STATUSES = ['pending', 'running', 'success', 'failed', 'timeout', 'cancelled'] as const

export const TaskStatusSchema = z.enum(TASK_STATUSES)
export type TaskStatus = z.infer<typeof TaskStatusSchema>
export const ExecutionStatusSchema = z.enum(EXECUTION_STATUSES)
export type ExecutionStatus = z.infer<typeof ExecutionStatusSchema>

/** Terminal task states: nothing changes a task's status after them except an explicit update. */
export const TERMINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set(['success', 'failed', 'cancelled'])
export const TERMINAL_EXECUTION_STATUSES: ReadonlySet<ExecutionStatus> = new Set(['success', 'failed', 'timeout', 'cancelled'])

/**
 * Ids of tasks and hosts: they end up inside cache keys, log lines and URLs, so they are kept to a
 * small alphabet and a bounded length (no `{`, `}`, `*`, `:`-free glob surprises, no whitespace).
 */
export const IdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must contain only letters, digits, "_", "." and "-", starting with a letter or digit')
export const TaskIdSchema = IdSchema
export const HostIdSchema = IdSchema

/** Output kept per host execution; longer output is truncated at this many characters. */
export const MAX_OUTPUT_CHARS = 4096

const isoTime = z.string()
const epochMs = z.number().int()

export const TaskSchema = z.object({
  id: TaskIdSchema,
  name: z.string(),
  command: z.string(),
  status: TaskStatusSchema,
  hostIds: z.array(HostIdSchema),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
})
export type Task = z.infer<typeof TaskSchema>

export const HostExecutionSchema = z.object({
  taskId: TaskIdSchema,
  hostId: HostIdSchema,
  status: ExecutionStatusSchema,
  exitCode: z.number().int().nullable(),
  output: z.string(),
  startedAt: epochMs.nullable(),
  finishedAt: epochMs.nullable(),
})
export type HostExecution = z.infer<typeof HostExecutionSchema>

/**
 * Host counts by execution state. The fixtures carry `total`, `success`, `failed` and `running`;
 * the other states default to 0 when absent so that values in the fixtures' shape still parse.
 */
export const HostCountsSchema = z.object({
  total: z.number().int().nonnegative(),
  success: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  pending: z.number().int().nonnegative().default(0),
  timeout: z.number().int().nonnegative().default(0),
  cancelled: z.number().int().nonnegative().default(0),
})
export type HostCounts = z.infer<typeof HostCountsSchema>

/** `task:status` — the task with its progress (finished hosts / all hosts) and host counts. */
export const TaskStatusViewSchema = z.object({
  taskId: TaskIdSchema,
  name: z.string(),
  status: TaskStatusSchema,
  progress: z.number().min(0).max(1),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable().default(null),
  hosts: HostCountsSchema,
})
export type TaskStatusView = z.infer<typeof TaskStatusViewSchema>

export const HostDetailSchema = z.object({
  hostId: HostIdSchema,
  ip: z.string(),
  status: ExecutionStatusSchema,
  exitCode: z.number().int().nullable(),
  startedAt: epochMs.nullable(),
  finishedAt: epochMs.nullable(),
  output: z.string(),
})
export type HostDetail = z.infer<typeof HostDetailSchema>

/** `task:progress` — the status view plus one line per host (ordered by host id). */
export const TaskProgressViewSchema = TaskStatusViewSchema.extend({
  hostDetails: z.array(HostDetailSchema),
})
export type TaskProgressView = z.infer<typeof TaskProgressViewSchema>

/** `task:list` as returned to callers: a page of status views. */
export const TaskListPageSchema = z.object({
  page: z.number().int().min(1),
  pageSize: z.number().int().min(1),
  total: z.number().int().nonnegative(),
  items: z.array(TaskStatusViewSchema),
})
export type TaskListPage = z.infer<typeof TaskListPageSchema>

/**
 * What `task:list` keeps in the cache: the ids of the page and the total. Items are assembled from
 * `task:status` entries, so a command result (which changes one task's counts) invalidates that
 * task's status and nothing else, while a status change or a new task moves list membership and
 * bumps the list generation.
 */
export const TaskIdPageSchema = z.object({
  total: z.number().int().nonnegative(),
  ids: z.array(TaskIdSchema),
})
export type TaskIdPage = z.infer<typeof TaskIdPageSchema>

export const HostTaskItemSchema = z.object({
  taskId: TaskIdSchema,
  name: z.string(),
  taskStatus: TaskStatusSchema,
  createdAt: isoTime,
  status: ExecutionStatusSchema,
  exitCode: z.number().int().nullable(),
  startedAt: epochMs.nullable(),
  finishedAt: epochMs.nullable(),
})
export type HostTaskItem = z.infer<typeof HostTaskItemSchema>

/** `host:tasks` — the tasks sent to one host, newest first, with that host's execution state. */
export const HostTasksPageSchema = z.object({
  hostId: HostIdSchema,
  page: z.number().int().min(1),
  pageSize: z.number().int().min(1),
  total: z.number().int().nonnegative(),
  items: z.array(HostTaskItemSchema),
})
export type HostTasksPage = z.infer<typeof HostTasksPageSchema>

/** `task:execution` — duration, counts by host state and a histogram of exit codes. */
export const TaskExecutionSummarySchema = z.object({
  taskId: TaskIdSchema,
  status: TaskStatusSchema,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  /** finishedAt − startedAt when both are set, else null. */
  durationMs: z.number().int().nonnegative().nullable(),
  hosts: HostCountsSchema,
  /** Exit code (as a string key) → number of hosts that exited with it. */
  exitCodes: z.record(z.string(), z.number().int().nonnegative()),
})
export type TaskExecutionSummary = z.infer<typeof TaskExecutionSummarySchema>

const countsByTaskStatus = z.object({
  pending: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  success: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  cancelled: z.number().int().nonnegative(),
})

/** `task:stats` — global statistics. */
export const TaskStatisticsSchema = z.object({
  totalTasks: z.number().int().nonnegative(),
  tasksByStatus: countsByTaskStatus,
  totalExecutions: z.number().int().nonnegative(),
  executionsByStatus: HostCountsSchema.omit({ total: true }),
  hosts: z.number().int().nonnegative(),
})
export type TaskStatistics = z.infer<typeof TaskStatisticsSchema>

export const NewTaskSchema = z.object({
  name: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters'),
  command: z.string().min(1, 'must not be empty').max(4096, 'must be at most 4096 characters'),
  hostIds: z
    .array(HostIdSchema)
    .min(1, 'must name at least one host')
    .max(10_000, 'must name at most 10000 hosts')
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a host'),
})
export type NewTask = z.infer<typeof NewTaskSchema>

/** A host a task may be sent to, as `TaskRepository.upsertHosts()` registers it. */
export const HostSchema = z.object(
  {
    id: HostIdSchema,
    ip: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' }),
  },
  { error: 'expected an object { id, ip }' },
)
export type Host = z.infer<typeof HostSchema>

/** The input of `upsertHosts()`: hosts with distinct ids (empty is allowed and does nothing). */
export const HostListSchema = z
  .array(HostSchema, { error: 'expected an array of { id, ip }' })
  .superRefine((hosts, ctx) => {
    const seen = new Set<string>()
    hosts.forEach((host, index) => {
      if (seen.has(host.id)) ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `must not repeat a host id (${host.id} is listed twice)` })
      seen.add(host.id)
    })
  })

export const CommandResultSchema = z.object({
  status: ExecutionStatusSchema,
  exitCode: z.number().int().nullable().optional(),
  output: z.string().optional(),
})
export type CommandResult = z.infer<typeof CommandResultSchema>

// ---------------------------------------------------------------------------------------------
// List queries. A query string like `?size=20&page=1` and `{ page: 1 }` must land on one cache
// entry, so every query is parsed into a fully-defaulted object and rendered in a fixed order.

export const TASK_LIST_SORTS = ['createdAt:desc', 'createdAt:asc', 'name:asc', 'name:desc'] as const
export const TaskListSortSchema = z.enum(TASK_LIST_SORTS)
export type TaskListSort = z.infer<typeof TaskListSortSchema>

/** Accepts a number or a decimal string (query strings), nothing else. */
const intParam = z.union([z.number(), z.string().regex(/^\d+$/, 'must be a whole number').transform(Number)])

const pageParam = intParam.pipe(z.number().int('must be a whole number').min(1, 'must be at least 1'))
const sizeParam = intParam.pipe(z.number().int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100'))

export const TaskListQuerySchema = z.strictObject({
  page: pageParam.default(1),
  size: sizeParam.default(20),
  status: TaskStatusSchema.optional(),
  hostId: HostIdSchema.optional(),
  sort: TaskListSortSchema.default('createdAt:desc'),
})
/** What callers pass (every field optional, numbers or decimal strings). */
export type TaskListQueryInput = z.input<typeof TaskListQuerySchema>
/** A parsed query: defaults filled in, frozen. */
export type TaskListQuery = Readonly<z.output<typeof TaskListQuerySchema>>

export const HostTasksQuerySchema = z.strictObject({
  page: pageParam.default(1),
  size: sizeParam.default(20),
})
export type HostTasksQueryInput = z.input<typeof HostTasksQuerySchema>
export type HostTasksQuery = Readonly<z.output<typeof HostTasksQuerySchema>>

function describeIssues(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0]
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(query)'
  const text = error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(query)'} ${i.message}`).join('; ')
  return { field, message: text }
}

function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {})
  if (!result.success) {
    const { field, message } = describeIssues(result.error)
    throw new InvalidTaskQueryError(`invalid ${what}: ${message}`, field, { cause: result.error })
  }
  return Object.freeze(result.data) as z.output<S>
}

let defaultListQuery: TaskListQuery | undefined

/** Validates and fills in defaults. Throws `InvalidTaskQueryError` naming the bad field. */
export function parseTaskListQuery(input?: TaskListQueryInput | Record<string, unknown>): TaskListQuery {
  if (input === undefined) return (defaultListQuery ??= parseWith(TaskListQuerySchema, {}, 'task list query'))
  return parseWith(TaskListQuerySchema, input, 'task list query')
}

export function parseHostTasksQuery(input?: HostTasksQueryInput | Record<string, unknown>): HostTasksQuery {
  return parseWith(HostTasksQuerySchema, input, 'host tasks query')
}

/**
 * The canonical key of a list query: fixed field order, defaults spelled out, absent filters
 * empty. Two queries select the same rows exactly when their keys are equal.
 */
export function taskListKey(query: TaskListQuery): string {
  return `p=${query.page}&n=${query.size}&s=${query.status ?? ''}&h=${query.hostId ?? ''}&o=${query.sort}`
}

export function hostTasksKey(hostId: string, query: HostTasksQuery): string {
  return `${hostId}&p=${query.page}&n=${query.size}`
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/

/** Validates an id, throwing `InvalidTaskQueryError` naming `field`. */
export function parseId(input: unknown, field: string): string {
  // Every read validates its id: a regex test on the hot path, zod only to describe a failure.
  if (typeof input === 'string' && ID_PATTERN.test(input)) return input
  const result = IdSchema.safeParse(input)
  if (!result.success) {
    throw new InvalidTaskQueryError(`invalid ${field}: ${result.error.issues.map((i) => i.message).join('; ')}`, field, {
      cause: result.error,
    })
  }
  return result.data
}

/** Host counts from per-state counts; `progress` is the share of hosts in a terminal state. */
export function progressOf(hosts: HostCounts): number {
  if (hosts.total === 0) return 0
  const done = hosts.success + hosts.failed + hosts.timeout + hosts.cancelled
  return done / hosts.total
}
