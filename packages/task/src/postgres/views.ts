/** The reads of the PostgreSQL repository: one statement per view on the pool, rows to views in `../rows.ts`. */
import type { Pool } from 'pg'
import type {
  HostTasksPage,
  HostTasksQuery,
  Task,
  TaskExecutionSummary,
  TaskIdPage,
  TaskListPage,
  TaskListQuery,
  TaskProgressView,
  TaskStatistics,
  TaskStatusView,
} from '../model.js'
import {
  countsOf,
  executionSummaryOf,
  hostTasksPageOf,
  progressViewOf,
  statisticsOf,
  statusViewOf,
  statusViewsOf,
  taskOf,
  type CountRow,
  type HostTaskRow,
  type ProgressRow,
  type StatisticsRow,
  type TaskRow,
} from '../rows.js'
import type { TaskReads } from '../repository-parts.js'
import type { Queryable, Runner } from './statements.js'

/** A task row as the repository reads it: with its host ids. */
export interface TaskWithHostsRow extends TaskRow {
  host_ids: string[]
}

export class PostgresTaskViews implements TaskReads {
  readonly #pool: Queryable
  readonly #r: Runner

  constructor(pool: Pool, runner: Runner) {
    this.#pool = pool as unknown as Queryable
    this.#r = runner
  }

  async task(id: string): Promise<Task | null> {
    const [row] = await this.#r.rows<TaskWithHostsRow>(this.#pool, 'taskById', [id])
    return row ? taskOf(row, row.host_ids) : null
  }

  async statusView(id: string): Promise<TaskStatusView | null> {
    const rows = await this.#r.rows<CountRow>(this.#pool, 'statusView', [id])
    return rows.length === 0 ? null : statusViewOf(rows[0] as CountRow, countsOf(rows))
  }

  async statusViews(ids: readonly string[]): Promise<(TaskStatusView | null)[]> {
    if (ids.length === 0) return []
    return statusViewsOf(ids, await this.#r.rows<CountRow>(this.#pool, 'statusViews', [ids]))
  }

  async progressView(id: string): Promise<TaskProgressView | null> {
    return progressViewOf(await this.#r.rows<ProgressRow>(this.#pool, 'progressView', [id]))
  }

  async executionSummary(id: string): Promise<TaskExecutionSummary | null> {
    return executionSummaryOf(await this.#r.rows<CountRow & { exit_code: number | null }>(this.#pool, 'executionSummary', [id]))
  }

  /** The page's ids and the total run side by side, on two connections. */
  async listTaskIds(query: TaskListQuery): Promise<TaskIdPage> {
    return this.#r.list(this.#pool, query)
  }

  async taskListPage(query: TaskListQuery): Promise<TaskListPage> {
    const { total, ids } = await this.listTaskIds(query)
    const views = await this.statusViews(ids)
    return { page: query.page, pageSize: query.size, total, items: views.filter((v): v is TaskStatusView => v !== null) }
  }

  async hostTasksPage(hostId: string, query: HostTasksQuery): Promise<HostTasksPage> {
    const [rows, count] = await Promise.all([
      this.#r.rows<HostTaskRow>(this.#pool, 'hostTasks', [hostId, query.size, (query.page - 1) * query.size]),
      this.#r.rows<{ c: number }>(this.#pool, 'hostTasksCount', [hostId]),
    ])
    return hostTasksPageOf(hostId, query, rows, count[0]?.c ?? 0)
  }

  async statistics(): Promise<TaskStatistics> {
    return statisticsOf(await this.#r.rows<StatisticsRow>(this.#pool, 'statistics', []))
  }

  async runningTaskIds(limit: number): Promise<string[]> {
    return (await this.#r.rows<{ id: string }>(this.#pool, 'runningIds', [limit])).map((r) => r.id)
  }

  async taskHostIds(id: string): Promise<string[]> {
    return (await this.#r.rows<{ host_id: string }>(this.#pool, 'hostIdsOfTaskId', [id])).map((r) => r.host_id)
  }
}
