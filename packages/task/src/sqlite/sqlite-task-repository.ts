/**
 * `TaskRepository` on SQLite (better-sqlite3 12): WAL, schema migrations keyed by
 * `PRAGMA user_version`, every statement prepared once, and a counter of the statements run
 * (`queryCount`) so that benchmarks and tests can say how many database queries a cache saved.
 *
 * Several processes may open the same file: WAL lets readers run beside one writer, writes take
 * the write lock up front (`BEGIN IMMEDIATE`), and `busy_timeout` makes a blocked writer wait
 * instead of failing.
 *
 * better-sqlite3 is synchronous; the port is asynchronous so that a service can swap in a
 * networked database. A read here costs one statement and no I/O wait beyond the page cache.
 */
import { createRequire } from 'node:module'
import type { Database, Statement } from 'better-sqlite3'
import { z } from 'zod'
import { InvalidOptionsError } from '@tiercache/core'
import { HostNotFoundError, InvalidTaskQueryError, InvalidTaskTransitionError, TaskNotFoundError } from '../errors.js'
import {
  CommandResultSchema,
  HostListSchema,
  MAX_OUTPUT_CHARS,
  NewTaskSchema,
  TERMINAL_EXECUTION_STATUSES,
  TERMINAL_TASK_STATUSES,
  TaskStatusSchema,
  progressOf,
  type CommandResult,
  type ExecutionStatus,
  type Host,
  type HostCounts,
  type HostDetail,
  type HostExecution,
  type HostTaskItem,
  type HostTasksPage,
  type HostTasksQuery,
  type NewTask,
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
import type { CommandResultOutcome, TaskRepository, TaskWriteResult } from '../repository.js'
import { migrate } from './schema.js'

export interface SqliteTaskRepositoryOptions {
  /** Path of the database file (created when missing), or `:memory:`. */
  filename: string
  /**
   * How long a write waits for another connection's write lock before failing, in ms.
   * @default 5000
   */
  busyTimeoutMs?: number
  /** Time source for createdAt/startedAt/finishedAt (epoch ms). @default Date.now */
  now?: () => number
}

export interface ResolvedSqliteTaskRepositoryOptions {
  readonly filename: string
  readonly busyTimeoutMs: number
  readonly now: () => number
}

const OptionsSchema = z.strictObject({
  filename: z.string().min(1, 'must be a file path or ":memory:"'),
  busyTimeoutMs: z.number().int().nonnegative().default(5000),
  now: z.custom<() => number>((v) => typeof v === 'function', 'must be a function returning epoch ms').default(() => Date.now),
})

export function resolveSqliteTaskRepositoryOptions(options: SqliteTaskRepositoryOptions): ResolvedSqliteTaskRepositoryOptions {
  const result = OptionsSchema.safeParse(options)
  if (!result.success) {
    const issue = result.error.issues[0]
    const path = issue?.path.join('.') ?? ''
    throw new InvalidOptionsError(path, `${issue?.message ?? 'invalid'}`, { cause: result.error })
  }
  return Object.freeze(result.data)
}

/** A SQLite `TaskRepository` with access to its connection (for seeding and tests). */
export interface SqliteTaskRepository extends TaskRepository {
  readonly db: Database
  readonly options: ResolvedSqliteTaskRepositoryOptions
}

interface TaskRow {
  seq: number
  id: string
  name: string
  command: string
  status: TaskStatus
  created_at: number
  started_at: number | null
  finished_at: number | null
}

interface CountRow extends TaskRow {
  est: ExecutionStatus | null
  c: number
}

const TASK_COLUMNS = 't.seq, t.id, t.name, t.command, t.status, t.created_at, t.started_at, t.finished_at'
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

function emptyCounts(): HostCounts {
  return { total: 0, success: 0, failed: 0, running: 0, pending: 0, timeout: 0, cancelled: 0 }
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

const ORDER_BY: Record<TaskListQuery['sort'], string> = {
  'createdAt:desc': 't.created_at DESC, t.seq DESC',
  'createdAt:asc': 't.created_at ASC, t.seq ASC',
  'name:asc': 't.name ASC, t.seq ASC',
  'name:desc': 't.name DESC, t.seq DESC',
}

let betterSqlite: (new (filename: string) => Database) | undefined

function loadDriver(): new (filename: string) => Database {
  if (!betterSqlite) {
    // better-sqlite3 is an optional peer: only this subpath needs it, so it loads on first use.
    const require = createRequire(import.meta.url)
    try {
      betterSqlite = require('better-sqlite3') as new (filename: string) => Database
    } catch (error) {
      throw new Error('@tiercache/task/sqlite needs the better-sqlite3 package (npm i better-sqlite3@12)', { cause: error })
    }
  }
  return betterSqlite
}

/** Opens (and migrates) a SQLite task database. */
export function createSqliteTaskRepository(options: SqliteTaskRepositoryOptions): SqliteTaskRepository {
  const resolved = resolveSqliteTaskRepositoryOptions(options)
  const Driver = loadDriver()
  const db = new Driver(resolved.filename)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma(`busy_timeout = ${resolved.busyTimeoutMs}`)
  db.pragma('foreign_keys = ON')
  migrate(db)
  return new SqliteRepository(db, resolved)
}

class SqliteRepository implements SqliteTaskRepository {
  readonly db: Database
  readonly options: ResolvedSqliteTaskRepositoryOptions
  #queries = 0
  readonly #now: () => number
  readonly #s
  readonly #listStatements = new Map<string, { ids: Statement; count: Statement }>()
  readonly #upsertHostsTx
  readonly #createTx
  readonly #startTx
  readonly #cancelTx
  readonly #updateTx
  readonly #resultTx

  constructor(db: Database, options: ResolvedSqliteTaskRepositoryOptions) {
    this.db = db
    this.options = options
    this.#now = options.now
    const p = (sql: string) => db.prepare(sql)
    this.#s = {
      nextSeq: p('SELECT coalesce(max(seq), 0) + 1 AS n FROM tasks').pluck(),
      knownHosts: p('SELECT id FROM hosts WHERE id IN (SELECT value FROM json_each(?))').pluck(),
      upsertHost: p('INSERT INTO hosts (id, ip) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET ip = excluded.ip'),
      insertTask: p(
        'INSERT INTO tasks (seq, id, name, command, status, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertExecution: p(
        'INSERT INTO executions (task_seq, host_id, status, exit_code, output, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      taskById: p(`SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.id = ?`),
      hostIdsOfTask: p('SELECT host_id FROM executions WHERE task_seq = ? ORDER BY host_id').pluck(),
      hostIdsOfTaskId: p('SELECT e.host_id FROM executions e JOIN tasks t ON t.seq = e.task_seq WHERE t.id = ? ORDER BY e.host_id').pluck(),
      setTaskState: p('UPDATE tasks SET status = ?, started_at = ?, finished_at = ? WHERE seq = ?'),
      startExecutions: p("UPDATE executions SET status = 'running', started_at = ? WHERE task_seq = ? AND status = 'pending'"),
      cancelExecutions: p(
        "UPDATE executions SET status = 'cancelled', finished_at = ? WHERE task_seq = ? AND status IN ('pending', 'running')",
      ),
      executionOf: p('SELECT status, exit_code, output, started_at, finished_at FROM executions WHERE task_seq = ? AND host_id = ?'),
      setExecution: p(
        'UPDATE executions SET status = ?, exit_code = ?, output = ?, started_at = ?, finished_at = ? WHERE task_seq = ? AND host_id = ?',
      ),
      unfinishedCount: p(
        "SELECT count(*) FROM executions WHERE task_seq = ? AND status IN ('pending', 'running')",
      ).pluck(),
      failedCount: p("SELECT count(*) FROM executions WHERE task_seq = ? AND status <> 'success'").pluck(),
      statusView: p(
        `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
         FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
         WHERE t.id = ? GROUP BY e.status`,
      ),
      statusViews: p(
        `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
         FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
         WHERE t.id IN (SELECT value FROM json_each(?)) GROUP BY t.seq, e.status`,
      ),
      progressView: p(
        `SELECT ${TASK_COLUMNS}, e.host_id, h.ip, e.status AS est, e.exit_code, e.started_at AS e_started, e.finished_at AS e_finished, e.output
         FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq LEFT JOIN hosts h ON h.id = e.host_id
         WHERE t.id = ? ORDER BY e.host_id`,
      ),
      executionSummary: p(
        `SELECT ${TASK_COLUMNS}, e.status AS est, e.exit_code, count(e.host_id) AS c
         FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
         WHERE t.id = ? GROUP BY e.status, e.exit_code`,
      ),
      hostTasks: p(
        `SELECT t.id, t.name, t.status AS task_status, t.created_at, e.status, e.exit_code, e.started_at, e.finished_at
         FROM executions e JOIN tasks t ON t.seq = e.task_seq
         WHERE e.host_id = ? ORDER BY e.task_seq DESC LIMIT ? OFFSET ?`,
      ),
      hostTasksCount: p('SELECT count(*) FROM executions WHERE host_id = ?').pluck(),
      statistics: p(
        `SELECT 't' AS k, status, count(*) AS c FROM tasks GROUP BY status
         UNION ALL SELECT 'e', status, count(*) FROM executions GROUP BY status
         UNION ALL SELECT 'h', NULL, count(*) FROM hosts`,
      ),
      runningIds: p("SELECT id FROM tasks WHERE status = 'running' ORDER BY started_at DESC, seq DESC LIMIT ?").pluck(),
    }

    this.#upsertHostsTx = db.transaction((hosts: readonly Host[]): void => {
      for (const host of hosts) this.#run(() => this.#s.upsertHost.run(host.id, host.ip))
    })

    this.#createTx = db.transaction((input: NewTask): Task => {
      const known = new Set(this.#run(() => this.#s.knownHosts.all(JSON.stringify(input.hostIds))) as string[])
      for (const hostId of input.hostIds) if (!known.has(hostId)) throw new HostNotFoundError(hostId)
      const seq = this.#run(() => this.#s.nextSeq.get()) as number
      const id = `task-${String(seq).padStart(6, '0')}-${Math.random().toString(36).slice(2, 8).padEnd(6, '0')}`
      const now = this.#now()
      this.#run(() => this.#s.insertTask.run(seq, id, input.name, input.command, 'pending', now, null, null))
      for (const hostId of input.hostIds) {
        this.#run(() => this.#s.insertExecution.run(seq, hostId, 'pending', null, '', null, null))
      }
      return {
        id,
        name: input.name,
        command: input.command,
        status: 'pending',
        hostIds: [...input.hostIds].sort(),
        createdAt: new Date(now).toISOString(),
        startedAt: null,
        finishedAt: null,
      }
    })

    this.#startTx = db.transaction((id: string): TaskWriteResult => {
      const row = this.#requireTask(id)
      if (row.status !== 'pending') throw new InvalidTaskTransitionError(id, row.status, 'start')
      const now = this.#now()
      this.#run(() => this.#s.setTaskState.run('running', now, null, row.seq))
      const changed = this.#run(() => this.#s.startExecutions.run(now, row.seq)).changes > 0
      return { task: this.#taskOf({ ...row, status: 'running', started_at: now }), statusChanged: true, executionsChanged: changed }
    })

    this.#cancelTx = db.transaction((id: string): TaskWriteResult => {
      const row = this.#requireTask(id)
      if (TERMINAL_TASK_STATUSES.has(row.status)) throw new InvalidTaskTransitionError(id, row.status, 'cancel')
      const now = this.#now()
      this.#run(() => this.#s.setTaskState.run('cancelled', row.started_at, now, row.seq))
      const changed = this.#run(() => this.#s.cancelExecutions.run(now, row.seq)).changes > 0
      return { task: this.#taskOf({ ...row, status: 'cancelled', finished_at: now }), statusChanged: true, executionsChanged: changed }
    })

    this.#updateTx = db.transaction((id: string, status: TaskStatus): TaskWriteResult => {
      const row = this.#requireTask(id)
      const now = this.#now()
      const startedAt = status === 'pending' ? row.started_at : (row.started_at ?? now)
      const finishedAt = TERMINAL_TASK_STATUSES.has(status) ? (row.finished_at ?? now) : null
      const next = { ...row, status, started_at: startedAt, finished_at: finishedAt }
      const changed = row.status !== status || row.started_at !== startedAt || row.finished_at !== finishedAt
      if (changed) this.#run(() => this.#s.setTaskState.run(status, startedAt, finishedAt, row.seq))
      return { task: this.#taskOf(next), statusChanged: row.status !== status, executionsChanged: false }
    })

    this.#resultTx = db.transaction((taskId: string, hostId: string, result: CommandResult): CommandResultOutcome => {
      const row = this.#requireTask(taskId)
      const current = this.#run(() => this.#s.executionOf.get(row.seq, hostId)) as
        | { status: ExecutionStatus; exit_code: number | null; output: string; started_at: number | null; finished_at: number | null }
        | undefined
      if (!current) throw new HostNotFoundError(hostId, taskId)
      const now = this.#now()
      const terminal = TERMINAL_EXECUTION_STATUSES.has(result.status)
      const execution: HostExecution = {
        taskId,
        hostId,
        status: result.status,
        exitCode: result.exitCode === undefined ? current.exit_code : result.exitCode,
        output: result.output === undefined ? current.output : result.output.slice(0, MAX_OUTPUT_CHARS),
        startedAt: result.status === 'pending' ? current.started_at : (current.started_at ?? now),
        finishedAt: terminal ? now : null,
      }
      this.#run(() =>
        this.#s.setExecution.run(
          execution.status,
          execution.exitCode,
          execution.output,
          execution.startedAt,
          execution.finishedAt,
          row.seq,
          hostId,
        ),
      )
      let next = row
      if (row.status === 'running' && terminal && (this.#run(() => this.#s.unfinishedCount.get(row.seq)) as number) === 0) {
        const failed = this.#run(() => this.#s.failedCount.get(row.seq)) as number
        next = { ...row, status: failed === 0 ? 'success' : 'failed', finished_at: now }
        this.#run(() => this.#s.setTaskState.run(next.status, next.started_at, now, row.seq))
      }
      return { task: this.#taskOf(next), execution, statusChanged: next !== row, executionsChanged: true }
    })
  }

  get queryCount(): number {
    return this.#queries
  }

  resetQueryCount(): void {
    this.#queries = 0
  }

  #run<T>(fn: () => T): T {
    this.#queries++
    return fn()
  }

  #requireTask(id: string): TaskRow {
    const row = this.#run(() => this.#s.taskById.get(id)) as TaskRow | undefined
    if (!row) throw new TaskNotFoundError(id)
    return row
  }

  #taskOf(row: TaskRow): Task {
    return {
      id: row.id,
      name: row.name,
      command: row.command,
      status: row.status,
      hostIds: this.#run(() => this.#s.hostIdsOfTask.all(row.seq)) as string[],
      createdAt: new Date(row.created_at).toISOString(),
      startedAt: iso(row.started_at),
      finishedAt: iso(row.finished_at),
    }
  }

  async upsertHosts(hosts: readonly Host[]): Promise<void> {
    const valid = validInput(HostsInputSchema, { hosts }, 'hosts').hosts
    if (valid.length > 0) this.#upsertHostsTx.immediate(valid)
  }

  async createTask(input: NewTask): Promise<Task> {
    return this.#createTx.immediate(validInput(NewTaskSchema, input, 'task'))
  }

  async getTask(id: string): Promise<Task | null> {
    const row = this.#run(() => this.#s.taskById.get(id)) as TaskRow | undefined
    return row ? this.#taskOf(row) : null
  }

  async startTask(id: string): Promise<TaskWriteResult> {
    return this.#startTx.immediate(id)
  }

  async cancelTask(id: string): Promise<TaskWriteResult> {
    return this.#cancelTx.immediate(id)
  }

  async updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult> {
    return this.#updateTx.immediate(id, validInput(TaskStatusSchema, status, 'status'))
  }

  async recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome> {
    return this.#resultTx.immediate(taskId, hostId, validInput(CommandResultSchema, result, 'command result'))
  }

  async getTaskStatusView(id: string): Promise<TaskStatusView | null> {
    const rows = this.#run(() => this.#s.statusView.all(id)) as CountRow[]
    return rows.length === 0 ? null : statusViewOf(rows[0] as CountRow, countsOf(rows))
  }

  async getTaskStatusViews(ids: readonly string[]): Promise<(TaskStatusView | null)[]> {
    if (ids.length === 0) return []
    const rows = this.#run(() => this.#s.statusViews.all(JSON.stringify(ids))) as CountRow[]
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

  async getTaskProgressView(id: string): Promise<TaskProgressView | null> {
    const rows = this.#run(() => this.#s.progressView.all(id)) as (TaskRow & {
      host_id: string | null
      ip: string | null
      est: ExecutionStatus | null
      exit_code: number | null
      e_started: number | null
      e_finished: number | null
      output: string | null
    })[]
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

  async getTaskExecutionSummary(id: string): Promise<TaskExecutionSummary | null> {
    const rows = this.#run(() => this.#s.executionSummary.all(id)) as (CountRow & { exit_code: number | null })[]
    const first = rows[0]
    if (!first) return null
    const hosts = emptyCounts()
    const exitCodes: Record<string, number> = {}
    for (const r of rows) {
      if (r.est === null) continue
      hosts.total += r.c
      hosts[r.est] += r.c
      if (r.exit_code !== null) exitCodes[String(r.exit_code)] = (exitCodes[String(r.exit_code)] ?? 0) + r.c
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

  #listStatementsFor(query: TaskListQuery): { ids: Statement; count: Statement; args: unknown[] } {
    const shape = `${query.status !== undefined ? 's' : ''}${query.hostId !== undefined ? 'h' : ''}|${query.sort}`
    let pair = this.#listStatements.get(shape)
    if (!pair) {
      const join = query.hostId !== undefined ? 'JOIN executions e ON e.task_seq = t.seq AND e.host_id = @hostId' : ''
      const where = query.status !== undefined ? 'WHERE t.status = @status' : ''
      pair = {
        ids: this.db.prepare(`SELECT t.id FROM tasks t ${join} ${where} ORDER BY ${ORDER_BY[query.sort]} LIMIT @limit OFFSET @offset`).pluck(),
        count: this.db.prepare(`SELECT count(*) FROM tasks t ${join} ${where}`).pluck(),
      }
      this.#listStatements.set(shape, pair)
    }
    const args: Record<string, unknown> = {}
    if (query.status !== undefined) args.status = query.status
    if (query.hostId !== undefined) args.hostId = query.hostId
    return { ...pair, args: [args] }
  }

  async listTaskIds(query: TaskListQuery): Promise<TaskIdPage> {
    const { ids, count, args } = this.#listStatementsFor(query)
    const filter = args[0] as Record<string, unknown>
    const page = this.#run(() => ids.all({ ...filter, limit: query.size, offset: (query.page - 1) * query.size })) as string[]
    const total = this.#run(() => count.get(filter)) as number
    return { total, ids: page }
  }

  async getTaskListPage(query: TaskListQuery): Promise<TaskListPage> {
    const { total, ids } = await this.listTaskIds(query)
    const views = await this.getTaskStatusViews(ids)
    return { page: query.page, pageSize: query.size, total, items: views.filter((v): v is TaskStatusView => v !== null) }
  }

  async getHostTasksPage(hostId: string, query: HostTasksQuery): Promise<HostTasksPage> {
    const rows = this.#run(() => this.#s.hostTasks.all(hostId, query.size, (query.page - 1) * query.size)) as {
      id: string
      name: string
      task_status: TaskStatus
      created_at: number
      status: ExecutionStatus
      exit_code: number | null
      started_at: number | null
      finished_at: number | null
    }[]
    const total = this.#run(() => this.#s.hostTasksCount.get(hostId)) as number
    const items: HostTaskItem[] = rows.map((r) => ({
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

  async getTaskStatistics(): Promise<TaskStatistics> {
    const rows = this.#run(() => this.#s.statistics.all()) as { k: 't' | 'e' | 'h'; status: string | null; c: number }[]
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

  async listRunningTaskIds(limit: number): Promise<string[]> {
    return this.#run(() => this.#s.runningIds.all(limit)) as string[]
  }

  async getTaskHostIds(id: string): Promise<string[]> {
    return this.#run(() => this.#s.hostIdsOfTaskId.all(id)) as string[]
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}

function countsOf(rows: readonly CountRow[]): HostCounts {
  const hosts = emptyCounts()
  for (const r of rows) {
    if (r.est === null) continue
    hosts.total += r.c
    hosts[r.est] += r.c
  }
  return hosts
}

/** `upsertHosts()`'s argument under a name, so that errors name `hosts.<index>.<field>`. */
const HostsInputSchema = z.object({ hosts: HostListSchema })

/** Parses a write's input; a failure is an `InvalidTaskQueryError` naming the field. */
function validInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const field = issue?.path.join('.') || what
  throw new InvalidTaskQueryError(`invalid ${what}: ${field} ${issue?.message ?? 'invalid'}`, field, { cause: parsed.error })
}
