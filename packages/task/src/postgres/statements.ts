/**
 * The SQL of the PostgreSQL repository. Each statement has a name, so that a pooled connection
 * parses and plans it once and then only binds values. Batches travel as one array parameter
 * (`= ANY($1::text[])`, `unnest(...)`): one round trip whatever their size. The rows they return
 * are `../rows.ts`'s, shared with SQLite.
 */
import type { CustomTypesConfig, QueryResultRow } from 'pg'
import type { TaskListQuery } from '../model.js'
import { LIST_ORDER, TASK_COLUMNS, type QueryCounter } from '../rows.js'

/** `bigint` (int8) columns and `count(*)` as numbers: epoch ms and counts are far below 2^53. */
const INT8 = 20
export function typesWithInt8AsNumber(base: CustomTypesConfig): CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8 && format !== 'binary' ? Number : base.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
  }
}

/** A task row with the ids of its hosts, sorted (what `Task.hostIds` is). */
const TASK_WITH_HOSTS = `${TASK_COLUMNS}, ARRAY(SELECT host_id FROM executions x WHERE x.task_seq = t.seq ORDER BY host_id) AS host_ids`

export const SQL = {
  nextSeq: "SELECT nextval('task_seq') AS n",
  knownHosts: 'SELECT id FROM hosts WHERE id = ANY($1::text[])',
  upsertHosts:
    'INSERT INTO hosts (id, ip) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (id) DO UPDATE SET ip = excluded.ip',
  insertTask: "INSERT INTO tasks (seq, id, name, command, status, created_at) VALUES ($1, $2, $3, $4, 'pending', $5)",
  insertExecutions: "INSERT INTO executions (task_seq, host_id, status) SELECT $1, h, 'pending' FROM unnest($2::text[]) AS h",
  taskById: `SELECT ${TASK_WITH_HOSTS} FROM tasks t WHERE t.id = $1`,
  // The write lock on the task row: writes to one task (and its executions) take turns.
  lockTask: `SELECT ${TASK_WITH_HOSTS} FROM tasks t WHERE t.id = $1 FOR UPDATE OF t`,
  hostIdsOfTaskId: 'SELECT e.host_id FROM executions e JOIN tasks t ON t.seq = e.task_seq WHERE t.id = $1 ORDER BY e.host_id',
  setTaskState: 'UPDATE tasks SET status = $1, started_at = $2, finished_at = $3 WHERE seq = $4',
  // One statement for every `ExecutionSweep` the state machine plans: the plan, not the SQL, says
  // which executions move and which time they take.
  sweepExecutions: `UPDATE executions SET status = $1,
       started_at = CASE WHEN $2::text = 'startedAt' THEN $3::bigint ELSE started_at END,
       finished_at = CASE WHEN $2::text = 'finishedAt' THEN $3::bigint ELSE finished_at END
     WHERE task_seq = $4 AND status = ANY($5::text[])`,
  executionOf: 'SELECT status, exit_code, output, started_at, finished_at FROM executions WHERE task_seq = $1 AND host_id = $2',
  setExecution:
    'UPDATE executions SET status = $1, exit_code = $2, output = $3, started_at = $4, finished_at = $5 WHERE task_seq = $6 AND host_id = $7',
  executionCounts: 'SELECT status AS est, count(*) AS c FROM executions WHERE task_seq = $1 GROUP BY status',
  statusView: `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id = $1 GROUP BY t.seq, e.status`,
  statusViews: `SELECT ${TASK_COLUMNS}, e.status AS est, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id = ANY($1::text[]) GROUP BY t.seq, e.status`,
  progressView: `SELECT ${TASK_COLUMNS}, e.host_id, h.ip, e.status AS est, e.exit_code, e.started_at AS e_started, e.finished_at AS e_finished, e.output
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq LEFT JOIN hosts h ON h.id = e.host_id
     WHERE t.id = $1 ORDER BY e.host_id`,
  executionSummary: `SELECT ${TASK_COLUMNS}, e.status AS est, e.exit_code, count(e.host_id) AS c
     FROM tasks t LEFT JOIN executions e ON e.task_seq = t.seq
     WHERE t.id = $1 GROUP BY t.seq, e.status, e.exit_code`,
  hostTasks: `SELECT t.id, t.name, t.status AS task_status, t.created_at, e.status, e.exit_code, e.started_at, e.finished_at
     FROM executions e JOIN tasks t ON t.seq = e.task_seq
     WHERE e.host_id = $1 ORDER BY e.task_seq DESC LIMIT $2 OFFSET $3`,
  hostTasksCount: 'SELECT count(*) AS c FROM executions WHERE host_id = $1',
  statistics: `SELECT 't' AS k, status, count(*) AS c FROM tasks GROUP BY status
     UNION ALL SELECT 'e', status, count(*) FROM executions GROUP BY status
     UNION ALL SELECT 'h', NULL, count(*) FROM hosts`,
  runningIds: "SELECT id FROM tasks WHERE status = 'running' ORDER BY started_at DESC, seq DESC LIMIT $1",
} as const

export type StatementName = keyof typeof SQL

/** Where a statement runs: the pool (a read) or the connection of a transaction (a write). */
export interface Queryable {
  query<R extends QueryResultRow>(config: { name: string; text: string; values: unknown[]; types: CustomTypesConfig }): Promise<{ rows: R[]; rowCount: number | null }>
}

/** Runs named statements, counting each one (the repository's `queryCount`). */
export class Runner {
  readonly #types: CustomTypesConfig
  readonly #counter: QueryCounter

  constructor(types: CustomTypesConfig, counter: QueryCounter) {
    this.#types = types
    this.#counter = counter
  }

  async rows<R extends QueryResultRow>(on: Queryable, name: StatementName, values: unknown[]): Promise<R[]> {
    return (await this.#run<R>(on, `tiercache_${name}`, SQL[name], values)).rows
  }

  async changes(on: Queryable, name: StatementName, values: unknown[]): Promise<number> {
    return (await this.#run(on, `tiercache_${name}`, SQL[name], values)).rowCount ?? 0
  }

  /** A list page's ids and its total, by the query's shape (which filters, which order). */
  async list(on: Queryable, query: TaskListQuery): Promise<{ ids: string[]; total: number }> {
    const shape = `${query.status !== undefined ? 's' : ''}${query.hostId !== undefined ? 'h' : ''}_${query.sort.replace(':', '_')}`
    const filter: unknown[] = []
    const where: string[] = []
    let join = ''
    if (query.status !== undefined) {
      filter.push(query.status)
      where.push(`t.status = $${filter.length}`)
    }
    if (query.hostId !== undefined) {
      filter.push(query.hostId)
      join = `JOIN executions e ON e.task_seq = t.seq AND e.host_id = $${filter.length}`
    }
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const n = filter.length
    const [page, count] = await Promise.all([
      this.#run<{ id: string }>(
        on,
        `tiercache_list_${shape}`,
        `SELECT t.id FROM tasks t ${join} ${whereSql} ORDER BY ${LIST_ORDER[query.sort]} LIMIT $${n + 1} OFFSET $${n + 2}`,
        [...filter, query.size, (query.page - 1) * query.size],
      ),
      this.#run<{ c: number }>(on, `tiercache_count_${shape.split('_')[0] ?? ''}`, `SELECT count(*) AS c FROM tasks t ${join} ${whereSql}`, filter),
    ])
    return { ids: page.rows.map((r) => r.id), total: count.rows[0]?.c ?? 0 }
  }

  #run<R extends QueryResultRow>(on: Queryable, name: string, text: string, values: unknown[]) {
    this.#counter.count++
    return on.query<R>({ name, text, values, types: this.#types })
  }
}
