/** The reads of the SQLite repository: rows in, the model's views out. */
import {
  progressOf,
  type ExecutionStatus,
  type HostCounts,
  type HostDetail,
  type HostTasksPage,
  type HostTasksQuery,
  type Task,
  type TaskExecutionSummary,
  type TaskIdPage,
  type TaskListPage,
  type TaskListQuery,
  type TaskProgressView,
  type TaskStatistics,
  type TaskStatus,
  type TaskStatusView,
} from '../model.js'
import type { CountRow, HostTaskRow, ListStatementCache, ProgressRow, QueryCounter, Statements, TaskRow } from './statements.js'

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

function statusViewOf(row: TaskRow, hosts: HostCounts): TaskStatusView {
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

export class SqliteTaskViews {
  readonly #s: Statements
  readonly #lists: ListStatementCache
  readonly #q: QueryCounter

  constructor(statements: Statements, lists: ListStatementCache, counter: QueryCounter) {
    this.#s = statements
    this.#lists = lists
    this.#q = counter
  }

  taskRow(id: string): TaskRow | undefined {
    return this.#q.run(() => this.#s.taskById.get(id)) as TaskRow | undefined
  }

  taskOf(row: TaskRow): Task {
    return {
      id: row.id,
      name: row.name,
      command: row.command,
      status: row.status,
      hostIds: this.#q.run(() => this.#s.hostIdsOfTask.all(row.seq)) as string[],
      createdAt: new Date(row.created_at).toISOString(),
      startedAt: iso(row.started_at),
      finishedAt: iso(row.finished_at),
    }
  }

  statusView(id: string): TaskStatusView | null {
    const rows = this.#q.run(() => this.#s.statusView.all(id)) as CountRow[]
    return rows.length === 0 ? null : statusViewOf(rows[0] as CountRow, countsOf(rows))
  }

  statusViews(ids: readonly string[]): (TaskStatusView | null)[] {
    if (ids.length === 0) return []
    const rows = this.#q.run(() => this.#s.statusViews.all(JSON.stringify(ids))) as CountRow[]
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

  progressView(id: string): TaskProgressView | null {
    const rows = this.#q.run(() => this.#s.progressView.all(id)) as ProgressRow[]
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

  executionSummary(id: string): TaskExecutionSummary | null {
    const rows = this.#q.run(() => this.#s.executionSummary.all(id)) as (CountRow & { exit_code: number | null })[]
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

  listTaskIds(query: TaskListQuery): TaskIdPage {
    const { ids, count } = this.#lists.of(query)
    const filter: Record<string, unknown> = {}
    if (query.status !== undefined) filter.status = query.status
    if (query.hostId !== undefined) filter.hostId = query.hostId
    const page = this.#q.run(() => ids.all({ ...filter, limit: query.size, offset: (query.page - 1) * query.size })) as string[]
    const total = this.#q.run(() => count.get(filter)) as number
    return { total, ids: page }
  }

  taskListPage(query: TaskListQuery): TaskListPage {
    const { total, ids } = this.listTaskIds(query)
    const views = this.statusViews(ids)
    return { page: query.page, pageSize: query.size, total, items: views.filter((v): v is TaskStatusView => v !== null) }
  }

  hostTasksPage(hostId: string, query: HostTasksQuery): HostTasksPage {
    const rows = this.#q.run(() => this.#s.hostTasks.all(hostId, query.size, (query.page - 1) * query.size)) as HostTaskRow[]
    const total = this.#q.run(() => this.#s.hostTasksCount.get(hostId)) as number
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

  statistics(): TaskStatistics {
    const rows = this.#q.run(() => this.#s.statistics.all()) as { k: 't' | 'e' | 'h'; status: string | null; c: number }[]
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

  runningTaskIds(limit: number): string[] {
    return this.#q.run(() => this.#s.runningIds.all(limit)) as string[]
  }

  taskHostIds(id: string): string[] {
    return this.#q.run(() => this.#s.hostIdsOfTaskId.all(id)) as string[]
  }
}
