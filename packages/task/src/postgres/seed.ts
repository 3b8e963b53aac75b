/**
 * Fills a PostgreSQL task database with the deterministic data set of `seed-data.ts` (same seed →
 * same rows as the SQLite seeder), in one transaction: rows travel as column arrays through
 * `unnest`, a few thousand tasks per statement, with the secondary indexes dropped during the
 * load and rebuilt once after it, then vacuumed and analysed.
 */
import type { Pool, PoolClient } from 'pg'
import { DatabaseNotEmptyError } from '../errors.js'
import { generateSeed, resolveSeedOptions, type SeedExecution, type SeedOptions, type SeedSummary, type SeedTask } from '../seed-data.js'
import type { PostgresTaskRepository } from './postgres-task-repository.js'

/** Tasks per insert: large enough to amortise the round trip, small enough to keep arrays cheap to bind. */
const BATCH = 5000

const INSERT_HOSTS = 'INSERT INTO hosts (id, ip) SELECT * FROM unnest($1::text[], $2::text[])'
const INSERT_TASKS = `INSERT INTO tasks (seq, id, name, command, status, created_at, started_at, finished_at)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])`
const INSERT_EXECUTIONS = `INSERT INTO executions (task_seq, host_id, status, exit_code, output, started_at, finished_at)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::bigint[], $7::bigint[])`

/** Column arrays of a batch of rows. */
const columns = (width: number): unknown[][] => Array.from({ length: width }, () => [])
const push = (into: unknown[][], row: readonly unknown[]): void => row.forEach((v, i) => into[i]?.push(v))

/**
 * Fills an empty (migrated) database. Throws `InvalidOptionsError` for a bad option before
 * anything is written, and `DatabaseNotEmptyError` (`E_DATABASE_NOT_EMPTY`) when it already holds tasks.
 */
export async function seedPostgresTasks(target: PostgresTaskRepository | Pool, options: SeedOptions = {}): Promise<SeedSummary> {
  const o = resolveSeedOptions(options)
  const pool: Pool = 'pool' in target ? target.pool : target
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    try {
      const summary = await fill(client, o)
      await client.query('COMMIT')
      // VACUUM, not only ANALYZE: it sets the visibility map, without which counts (statistics,
      // list totals) read every heap page instead of the index alone.
      await client.query('VACUUM (ANALYZE) hosts, tasks, executions')
      return summary
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  } finally {
    client.release()
  }
}

async function fill(client: PoolClient, o: ReturnType<typeof resolveSeedOptions>): Promise<SeedSummary> {
  // The lock makes a second seeder wait, then find the tasks of the first.
  await client.query('LOCK TABLE tasks IN EXCLUSIVE MODE')
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM tasks')
  const existing = Number(rows[0]?.n ?? 0)
  if (existing > 0) throw new DatabaseNotEmptyError(existing)

  const indexes = (
    await client.query<{ name: string; sql: string }>(
      `SELECT i.indexname AS name, i.indexdef AS sql FROM pg_indexes i
       WHERE i.schemaname = current_schema() AND i.tablename IN ('tasks', 'executions')
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
    )
  ).rows
  for (const { name } of indexes) await client.query(`DROP INDEX ${quoteIdent(name)}`)

  // The generator is synchronous: it fills column arrays, a batch per BATCH tasks, which are
  // then sent one statement after the other on the transaction's connection.
  const hosts = columns(2)
  const batches: { tasks: unknown[][]; executions: unknown[][] }[] = []
  let batch = { tasks: columns(8), executions: columns(7) }
  let batched = 0
  const summary = generateSeed(o, {
    host: (id, ip) => push(hosts, [id, ip]),
    task: (task: SeedTask, rows: readonly SeedExecution[]) => {
      push(batch.tasks, task)
      for (const row of rows) push(batch.executions, row)
      if (++batched < BATCH) return
      batches.push(batch)
      batch = { tasks: columns(8), executions: columns(7) }
      batched = 0
    },
  })
  if (batched > 0) batches.push(batch)
  await client.query(INSERT_HOSTS, hosts)
  for (const { tasks, executions } of batches) {
    await client.query(INSERT_TASKS, tasks)
    await client.query(INSERT_EXECUTIONS, executions)
  }
  for (const { sql } of indexes) await client.query(sql)
  await client.query("SELECT setval('task_seq', greatest((SELECT max(seq) FROM tasks), 1), (SELECT count(*) > 0 FROM tasks))")
  return summary
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`
