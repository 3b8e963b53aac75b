/**
 * Fills a SQLite task database with the deterministic data set of `seed-data.ts` (same seed →
 * same rows as the PostgreSQL seeder), through prepared statements inside one transaction
 * (100,000 tasks in a few seconds).
 */
import type { Database } from 'better-sqlite3'
import { DatabaseNotEmptyError } from '../errors.js'
import { generateSeed, resolveSeedOptions, type SeedOptions, type SeedSummary } from '../seed-data.js'
import type { SqliteTaskRepository } from './sqlite-task-repository.js'

export { prng } from '../seed-data.js'
export type { SeedOptions, SeedSummary } from '../seed-data.js'

/** Fills an empty (migrated) database. Throws `DatabaseNotEmptyError` (`E_DATABASE_NOT_EMPTY`) when it already holds tasks. */
export function seedTasks(target: SqliteTaskRepository | Database, options: SeedOptions = {}): SeedSummary {
  const o = resolveSeedOptions(options)
  const maxHosts = Math.min(o.maxHostsPerTask, o.hosts)
  const db: Database = 'db' in target ? target.db : target
  const existing = db.prepare('SELECT count(*) FROM tasks').pluck().get() as number
  if (existing > 0) throw new DatabaseNotEmptyError(existing)

  const insertHost = db.prepare('INSERT INTO hosts (id, ip) VALUES (?, ?)')
  const insertTask = db.prepare(
    'INSERT INTO tasks (seq, id, name, command, status, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  )
  // One multi-row insert per task (a statement per row count): fewer calls across the native boundary.
  const insertExecutions = Array.from({ length: maxHosts + 1 }, (_, n) =>
    n === 0
      ? undefined
      : db.prepare(
          `INSERT INTO executions (task_seq, host_id, status, exit_code, output, started_at, finished_at) VALUES ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        ),
  )
  let summary: SeedSummary | undefined
  const fill = db.transaction(() => {
    summary = generateSeed(o, {
      host: (id, ip) => insertHost.run(id, ip),
      task: (task, executions) => {
        insertTask.run(...task)
        insertExecutions[executions.length]?.run(...executions.flat())
      },
    })
  })
  // Secondary indexes are rebuilt once after the bulk insert: maintaining them row by row costs
  // random page writes (10× slower on 100,000 tasks); a bigger page cache helps the rebuild.
  const indexes = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('tasks', 'executions')")
    .all() as { name: string; sql: string }[]
  const cacheSize = db.pragma('cache_size', { simple: true }) as number
  db.pragma('cache_size = -262144')
  try {
    for (const { name } of indexes) db.exec(`DROP INDEX ${name}`)
    try {
      fill.immediate()
    } finally {
      for (const { sql } of indexes) db.exec(sql)
    }
    db.exec('ANALYZE')
  } finally {
    db.pragma(`cache_size = ${cacheSize}`)
  }
  return summary as SeedSummary
}
