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
 *
 * The SQL lives in `statements.ts`, the reads in `views.ts`, the writes in `writes.ts` (which store
 * what the task state machine decides); this module opens the database and wires them.
 */
import { createRequire } from 'node:module'
import type { Database } from 'better-sqlite3'
import { SqliteDriverMissingError } from '../errors.js'
import type { TaskRepository } from '../repository.js'
import { RepositoryOnParts } from '../repository-parts.js'
import { resolveSqliteTaskRepositoryOptions, type ResolvedSqliteTaskRepositoryOptions, type SqliteTaskRepositoryOptions } from './options.js'
import { migrate } from './schema.js'
import { QueryCounter } from '../rows.js'
import { ListStatementCache, prepareStatements } from './statements.js'
import { SqliteTaskViews } from './views.js'
import { SqliteTaskWrites } from './writes.js'

/** A SQLite `TaskRepository` with access to its connection (for seeding and tests). */
export interface SqliteTaskRepository extends TaskRepository {
  readonly db: Database
  readonly options: ResolvedSqliteTaskRepositoryOptions
}

type Driver = new (filename: string) => Database
let betterSqlite: Driver | undefined

function loadDriver(): Driver {
  if (!betterSqlite) {
    // better-sqlite3 is an optional peer: only this subpath needs it, so it loads on first use.
    const require = createRequire(import.meta.url)
    try {
      betterSqlite = require('better-sqlite3') as Driver
    } catch (error) {
      throw new SqliteDriverMissingError({ cause: error })
    }
  }
  return betterSqlite
}

/** Opens (and migrates) a SQLite task database. */
export function createSqliteTaskRepository(options: SqliteTaskRepositoryOptions): SqliteTaskRepository {
  const resolved = resolveSqliteTaskRepositoryOptions(options)
  const Sqlite = loadDriver()
  const db = new Sqlite(resolved.filename)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma(`busy_timeout = ${resolved.busyTimeoutMs}`)
    db.pragma('foreign_keys = ON')
    migrate(db)
  } catch (error) {
    // The caller gets no handle to close: a connection that cannot be used is closed here.
    db.close()
    throw error
  }
  return new SqliteRepository(db, resolved)
}

class SqliteRepository extends RepositoryOnParts implements SqliteTaskRepository {
  readonly db: Database
  readonly options: ResolvedSqliteTaskRepositoryOptions

  constructor(db: Database, options: ResolvedSqliteTaskRepositoryOptions) {
    const counter = new QueryCounter()
    const statements = prepareStatements(db)
    const views = new SqliteTaskViews(statements, new ListStatementCache(db), counter)
    super(views, new SqliteTaskWrites(db, statements, counter, views, options.now), counter)
    this.db = db
    this.options = options
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
