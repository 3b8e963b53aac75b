/**
 * The SQL of the SQLite repository: every statement prepared once per connection (the rows they
 * return are `../rows.ts`'s).
 */
import type { Database, Statement } from 'better-sqlite3'
import type { TaskListQuery } from '../model.js'
import { LIST_ORDER, TASK_COLUMNS } from '../rows.js'

const SQL = {
  nextSeq: 'SELECT coalesce(max(seq), 0) + 1 AS n FROM tasks',
  knownHosts: 'SELECT id FROM hosts WHERE id IN (SELECT value FROM json_each(?))',
  upsertHost: 'INSERT INTO hosts (id, ip) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET ip = excluded.ip',
  insertTask: 'INSERT INTO tasks (seq, id, name, command, status, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  insertExecution:
    'INSERT INTO executions (task_seq, host_id, status, exit_code, output, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  taskById: `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.id = ?`,
  hostIdsOfTask: 'SELECT host_id FROM executions WHERE task_seq = ? ORDER BY host_id',
  hostIdsOfTaskId: 'SELECT e.host_id FROM executions e JOIN tasks t ON t.seq = e.task_seq WHERE t.id = ? ORDER BY e.host_id',
  setTaskState: 'UPDATE tasks SET status = ?, started_at = ?, finished_at = ? WHERE seq = ?',
  // One statement for every `ExecutionSweep` the state machine plans: the plan, not the SQL, says
  // which executions move and which time they take.
  sweepExecutions:
    `UPDATE executions SET status = @to,
       started_at = CASE WHEN @stamp = 'startedAt' THEN @at ELSE started_at END,
       finished_at = CASE WHEN @stamp = 'finishedAt' THEN @at ELSE finished_at END
     WHERE task_seq = @seq AND status IN (SELECT value FROM json_each(@from))`,
  executionOf: 'SELECT status, exit_code, output, started_at, finished_at FROM executions WHERE task_seq = ? AND host_id = ?',
  setExecution:
    'UPDATE executions SET status = ?, exit_code = ?, output = ?, started_at = ?, finished_at = ? WHERE task_seq = ? AND host_id = ?',
  executionCounts: 'SELECT status AS est, count(*) AS c FROM executions WHERE task_seq = ? GROUP BY status',
  statusView:
    `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id = ? GROUP BY e.status`,
  statusViews:
    `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id IN (SELECT value FROM json_each(?)) GROUP BY t.seq, e.status`,
  progressView:
    `SELECT ${TASK_COLUMNS}, e.host_id, h.ip, e.status AS est, e.exit_code, e.started_at AS e_started, e.finished_at AS e_finished, e.output
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq LEFT JOIN hosts h ON h.id = e.host_id
     WHERE t.id = ? ORDER BY e.host_id`,
  executionSummary:
    `SELECT ${TASK_COLUMNS}, e.status AS est, e.exit_code, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id = ? GROUP BY e.status, e.exit_code`,
  hostTasks:
    `SELECT t.id, t.name, t.status AS task_status, t.created_at, e.status, e.exit_code, e.started_at, e.finished_at
     FROM executions e JOIN tasks t ON t.seq = e.task_seq
     WHERE e.host_id = ? ORDER BY e.task_seq DESC LIMIT ? OFFSET ?`,
  hostTasksCount: 'SELECT count(*) FROM executions WHERE host_id = ?',
  statistics:
    `SELECT 't' AS k, status, count(*) AS c FROM tasks GROUP BY status
     UNION ALL SELECT 'e', status, count(*) FROM executions GROUP BY status
     UNION ALL SELECT 'h', NULL, count(*) FROM hosts`,
  runningIds: "SELECT id FROM tasks WHERE status = 'running' ORDER BY started_at DESC, seq DESC LIMIT ?",
} as const

/** Statements whose rows are one value each (`.pluck()`). */
const PLUCKED: ReadonlySet<string> = new Set<keyof typeof SQL>(['nextSeq', 'knownHosts', 'hostIdsOfTask', 'hostIdsOfTaskId', 'hostTasksCount', 'runningIds'])

export type Statements = { readonly [K in keyof typeof SQL]: Statement }

export function prepareStatements(db: Database): Statements {
  const out: Partial<Record<keyof typeof SQL, Statement>> = {}
  for (const [name, sql] of Object.entries(SQL) as [keyof typeof SQL, string][]) {
    const statement = db.prepare(sql)
    out[name] = PLUCKED.has(name) ? statement.pluck() : statement
  }
  return out as Statements
}

export interface ListStatements {
  readonly ids: Statement
  readonly count: Statement
}

/**
 * The two statements of a list query, by shape (which filters are set, which order): prepared on
 * first use, since the shapes are few and known only from the queries callers make.
 */
export class ListStatementCache {
  readonly #db: Database
  readonly #byShape = new Map<string, ListStatements>()

  constructor(db: Database) {
    this.#db = db
  }

  of(query: TaskListQuery): ListStatements {
    const shape = `${query.status !== undefined ? 's' : ''}${query.hostId !== undefined ? 'h' : ''}|${query.sort}`
    let pair = this.#byShape.get(shape)
    if (!pair) {
      const join = query.hostId !== undefined ? 'JOIN executions e ON e.task_seq = t.seq AND e.host_id = @hostId' : ''
      const where = query.status !== undefined ? 'WHERE t.status = @status' : ''
      pair = {
        ids: this.#db.prepare(`SELECT t.id FROM tasks t ${join} ${where} ORDER BY ${LIST_ORDER[query.sort]} LIMIT @limit OFFSET @offset`).pluck(),
        count: this.#db.prepare(`SELECT count(*) FROM tasks t ${join} ${where}`).pluck(),
      }
      this.#byShape.set(shape, pair)
    }
    return pair
  }
}
