/**
 * The rows of the task tables, and what the repositories build from them: the model's views on
 * the read side, the state machine's input on the write side. The SQLite and the PostgreSQL
 * repositories run different SQL and drivers but share the schema's shape, so that both answer
 * every read with the same view (the repository contract checks it) and validate writes alike.
 */
import { z } from 'zod'
import { InvalidTaskQueryError } from './errors.js'
import {
  HostListSchema,
  progressOf,
  type ExecutionStatus,
  type HostCounts,
  type HostDetail,
  type HostTasksPage,
  type HostTasksQuery,
  type Task,
  type TaskExecutionSummary,
  type TaskListQuery,
  type TaskProgressView,
  type TaskStatistics,
  type TaskStatus,
  type TaskStatusView,
} from './model.js'
import type { TaskState } from './state-machine.js'

export interface TaskRow {
  seq: number
  id: string
  name: string
  command: string
  status: TaskStatus
  created_at: number
  started_at: number | null
  finished_at: number | null
}

/** A task row with one group of its executions (one status, or one status and exit code). */
export interface CountRow extends TaskRow {
  est: ExecutionStatus | null
  c: number
}

export interface ExecutionRow {
  status: ExecutionStatus
  exit_code: number | null
  output: string
  started_at: number | null
  finished_at: number | null
}

export interface ProgressRow extends TaskRow {
  host_id: string | null
  ip: string | null
  est: ExecutionStatus | null
  exit_code: number | null
  e_started: number | null
  e_finished: number | null
  output: string | null
}

export interface HostTaskRow {
  id: string
  name: string
  task_status: TaskStatus
  created_at: number
  status: ExecutionStatus
  exit_code: number | null
  started_at: number | null
  finished_at: number | null
}

/** One row of the statistics query: tasks (`t`) or executions (`e`) by status, or hosts (`h`). */
export interface StatisticsRow {
  k: 't' | 'e' | 'h'
  status: string | null
  c: number
}

export const TASK_COLUMNS = 't.seq, t.id, t.name, t.command, t.status, t.created_at, t.started_at, t.finished_at'

/** The ORDER BY of each list sort; `seq` breaks ties, so that pages never overlap. */
export const LIST_ORDER: Readonly<Record<TaskListQuery['sort'], string>> = {
  'createdAt:desc': 't.created_at DESC, t.seq DESC',
  'createdAt:asc': 't.created_at ASC, t.seq ASC',
  'name:asc': 't.name ASC, t.seq ASC',
  'name:desc': 't.name DESC, t.seq DESC',
}

/** Counts the statements (or round trips) run through it: the repositories' `queryCount`. */
export class QueryCounter {
  count = 0

  run<T>(fn: () => T): T {
    this.count++
    return fn()
  }
}

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

export function emptyCounts(): HostCounts {
  return { total: 0, success: 0, failed: 0, running: 0, pending: 0, timeout: 0, cancelled: 0 }
}

/** Host counts from rows grouped by execution status (a LEFT JOIN's null group is no execution). */
export function countsOf(rows: readonly Pick<CountRow, 'est' | 'c'>[]): HostCounts {
  const hosts = emptyCounts()
  for (const r of rows) {
    if (r.est === null) continue
    hosts.total += r.c
    hosts[r.est] += r.c
  }
  return hosts
}

export function taskOf(row: TaskRow, hostIds: string[]): Task {
  return {
    id: row.id,
    name: row.name,
    command: row.command,
    status: row.status,
    hostIds,
    createdAt: new Date(row.created_at).toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  }
}

export function statusViewOf(row: TaskRow, hosts: HostCounts): TaskStatusView {
  return {
    taskId: row.id,
    name: row.name,
    status: row.status,
    progress: progressOf(hosts),
    createdAt: new Date(row.created_at).toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    hosts,
  }
}

/** The views of `ids`, in their order, from the rows of one batch query (`null` for an unknown id). */
export function statusViewsOf(ids: readonly string[], rows: readonly CountRow[]): (TaskStatusView | null)[] {
  const byId = new Map<string, CountRow[]>()
  for (const row of rows) {
    const list = byId.get(row.id)
    if (list) list.push(row)
    else byId.set(row.id, [row])
  }
  return ids.map((id) => {
    const group = byId.get(id)
    return group ? statusViewOf(group[0] as CountRow, countsOf(group)) : null
  })
}

/** A task's progress from its rows joined with executions and hosts, ordered by host id. */
export function progressViewOf(rows: readonly ProgressRow[]): TaskProgressView | null {
  const first = rows[0]
  if (!first) return null
  const hosts = emptyCounts()
  const hostDetails: HostDetail[] = []
  for (const r of rows) {
    if (r.host_id === null || r.est === null) continue
    hosts.total++
    hosts[r.est]++
    hostDetails.push({
      hostId: r.host_id,
      ip: r.ip ?? '',
      status: r.est,
      exitCode: r.exit_code,
      startedAt: r.e_started,
      finishedAt: r.e_finished,
      output: r.output ?? '',
    })
  }
  return { ...statusViewOf(first, hosts), hostDetails }
}

/** A task's execution summary from its rows grouped by execution status and exit code. */
export function executionSummaryOf(rows: readonly (CountRow & { exit_code: number | null })[]): TaskExecutionSummary | null {
  const first = rows[0]
  if (!first) return null
  const hosts = countsOf(rows)
  const exitCodes: Record<string, number> = {}
  for (const r of rows) {
    if (r.est !== null && r.exit_code !== null) exitCodes[String(r.exit_code)] = (exitCodes[String(r.exit_code)] ?? 0) + r.c
  }
  const durationMs = first.started_at !== null && first.finished_at !== null ? Math.max(0, first.finished_at - first.started_at) : null
  return {
    taskId: first.id,
    status: first.status,
    startedAt: iso(first.started_at),
    finishedAt: iso(first.finished_at),
    durationMs,
    hosts,
    exitCodes,
  }
}

export function hostTasksPageOf(hostId: string, query: HostTasksQuery, rows: readonly HostTaskRow[], total: number): HostTasksPage {
  const items = rows.map((r) => ({
    taskId: r.id,
    name: r.name,
    taskStatus: r.task_status,
    createdAt: new Date(r.created_at).toISOString(),
    status: r.status,
    exitCode: r.exit_code,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }))
  return { hostId, page: query.page, pageSize: query.size, total, items }
}

export function statisticsOf(rows: readonly StatisticsRow[]): TaskStatistics {
  const stats: TaskStatistics = {
    totalTasks: 0,
    tasksByStatus: { pending: 0, running: 0, success: 0, failed: 0, cancelled: 0 },
    totalExecutions: 0,
    executionsByStatus: { success: 0, failed: 0, running: 0, pending: 0, timeout: 0, cancelled: 0 },
    hosts: 0,
  }
  for (const r of rows) {
    if (r.k === 't') {
      stats.totalTasks += r.c
      stats.tasksByStatus[r.status as TaskStatus] += r.c
    } else if (r.k === 'e') {
      stats.totalExecutions += r.c
      stats.executionsByStatus[r.status as ExecutionStatus] += r.c
    } else {
      stats.hosts = r.c
    }
  }
  return stats
}

// ── writes ────────────────────────────────────────────────────────────────────────────────────

export const stateOf = (row: TaskRow): TaskState => ({ id: row.id, status: row.status, startedAt: row.started_at, finishedAt: row.finished_at })

export const rowOf = (row: TaskRow, state: TaskState): TaskRow => ({
  ...row,
  status: state.status,
  started_at: state.startedAt,
  finished_at: state.finishedAt,
})

/** A new task's id: its sequence number, then six random base-36 characters. */
export const newTaskId = (seq: number): string =>
  `task-${String(seq).padStart(6, '0')}-${Math.random().toString(36).slice(2, 8).padEnd(6, '0')}`

/** `upsertHosts()`'s argument under a name, so that errors name `hosts.<index>.<field>`. */
export const HostsInputSchema = z.object({ hosts: HostListSchema })

/** Parses a write's input; a failure is an `InvalidTaskQueryError` naming the field. */
export function validInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const field = issue?.path.join('.') || what
  throw new InvalidTaskQueryError(`invalid ${what}: ${field} ${issue?.message ?? 'invalid'}`, field, { cause: parsed.error })
}
