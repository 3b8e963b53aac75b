/** The reads of the SQLite repository: one prepared statement per view, rows to views in `../rows.ts`. */
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
  type QueryCounter,
  type StatisticsRow,
  type TaskRow,
} from '../rows.js'
import type { TaskReads } from '../repository-parts.js'
import type { ListStatementCache, Statements } from './statements.js'

export class SqliteTaskViews implements TaskReads {
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

  task(id: string): Task | null {
    const row = this.taskRow(id)
    return row ? this.taskOf(row) : null
  }

  taskOf(row: TaskRow): Task {
    return taskOf(row, this.#q.run(() => this.#s.hostIdsOfTask.all(row.seq)) as string[])
  }

  statusView(id: string): TaskStatusView | null {
    const rows = this.#q.run(() => this.#s.statusView.all(id)) as CountRow[]
    return rows.length === 0 ? null : statusViewOf(rows[0] as CountRow, countsOf(rows))
  }

  statusViews(ids: readonly string[]): (TaskStatusView | null)[] {
    if (ids.length === 0) return []
    return statusViewsOf(ids, this.#q.run(() => this.#s.statusViews.all(JSON.stringify(ids))) as CountRow[])
  }

  progressView(id: string): TaskProgressView | null {
    return progressViewOf(this.#q.run(() => this.#s.progressView.all(id)) as ProgressRow[])
  }

  executionSummary(id: string): TaskExecutionSummary | null {
    return executionSummaryOf(this.#q.run(() => this.#s.executionSummary.all(id)) as (CountRow & { exit_code: number | null })[])
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
    return hostTasksPageOf(hostId, query, rows, total)
  }

  statistics(): TaskStatistics {
    return statisticsOf(this.#q.run(() => this.#s.statistics.all()) as StatisticsRow[])
  }

  runningTaskIds(limit: number): string[] {
    return this.#q.run(() => this.#s.runningIds.all(limit)) as string[]
  }

  taskHostIds(id: string): string[] {
    return this.#q.run(() => this.#s.hostIdsOfTaskId.all(id)) as string[]
  }
}
