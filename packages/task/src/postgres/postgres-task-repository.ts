/**
 * `TaskRepository` on PostgreSQL (node-postgres 8): a connection pool, schema migrations recorded
 * in `task_schema` and serialised by an advisory lock, named statements (parsed once per
 * connection), and a counter of the statements run (`queryCount`) so that benchmarks and tests can
 * say how many database queries a cache saved. `BEGIN`/`COMMIT` are not counted: they carry no data.
 *
 * Reads run on any pooled connection, independent ones side by side (a list page's ids and its
 * total); each write is one transaction on one connection that locks its task's row first.
 *
 * The SQL lives in `statements.ts`, the reads in `views.ts`, the writes in `writes.ts` (which store
 * what the task state machine decides); this module opens the pool and wires them.
 */
import { createRequire } from 'node:module'
import type * as PgDriver from 'pg'
import type { Pool } from 'pg'
import { PostgresDriverMissingError } from '../errors.js'
import type { TaskRepository } from '../repository.js'
import { RepositoryOnParts } from '../repository-parts.js'
import { QueryCounter } from '../rows.js'
import {
  resolvePostgresTaskRepositoryOptions,
  type PostgresTaskRepositoryOptions,
  type ResolvedPostgresTaskRepositoryOptions,
} from './options.js'
import { migrate } from './schema.js'
import { Runner, typesWithInt8AsNumber } from './statements.js'
import { PostgresTaskViews } from './views.js'
import { PostgresTaskWrites } from './writes.js'

/** A PostgreSQL `TaskRepository` with access to its pool (for seeding and tests). */
export interface PostgresTaskRepository extends TaskRepository {
  readonly pool: Pool
  readonly options: ResolvedPostgresTaskRepositoryOptions
}

type Driver = typeof PgDriver
let driver: Driver | undefined

function loadDriver(): Driver {
  if (!driver) {
    // pg is an optional peer: only this subpath needs it, so it loads on first use.
    const require = createRequire(import.meta.url)
    try {
      driver = require('pg') as Driver
    } catch (error) {
      throw new PostgresDriverMissingError({ cause: error })
    }
  }
  return driver
}

/**
 * Connects to (and migrates) a PostgreSQL task database. Rejects with the server's error when it
 * cannot connect, and with `SchemaTooNewError` when a newer library migrated the database.
 */
export async function createPostgresTaskRepository(options: PostgresTaskRepositoryOptions): Promise<PostgresTaskRepository> {
  const resolved = resolvePostgresTaskRepositoryOptions(options)
  const pg = loadDriver()
  const owned = resolved.pool === null
  const pool = resolved.pool ?? new pg.Pool({ connectionString: resolved.connectionString ?? undefined, max: resolved.maxConnections })
  if (owned) pool.on('error', resolved.onError)
  try {
    const client = await pool.connect()
    try {
      await migrate(client)
    } finally {
      client.release()
    }
  } catch (error) {
    // The caller gets no handle to close: a pool that cannot be used is ended here.
    if (owned) await pool.end().catch(() => undefined)
    throw error
  }
  return new PostgresRepository(pool, owned, resolved, pg.types)
}

class PostgresRepository extends RepositoryOnParts implements PostgresTaskRepository {
  readonly pool: Pool
  readonly options: ResolvedPostgresTaskRepositoryOptions
  readonly #owned: boolean
  #closed: Promise<void> | undefined

  constructor(pool: Pool, owned: boolean, options: ResolvedPostgresTaskRepositoryOptions, types: Driver['types']) {
    const counter = new QueryCounter()
    const runner = new Runner(typesWithInt8AsNumber(types), counter)
    super(new PostgresTaskViews(pool, runner), new PostgresTaskWrites(pool, runner, options.now), counter)
    this.pool = pool
    this.#owned = owned
    this.options = options
  }

  /** Ends the pool the repository opened (a pool given in `options.pool` stays open). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#owned ? this.pool.end() : Promise.resolve()
    return this.#closed
  }
}
