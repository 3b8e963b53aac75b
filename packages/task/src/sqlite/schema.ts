import type { Database } from 'better-sqlite3'
import { SchemaTooNewError } from '../errors.js'

/**
 * Migrations, applied in order; `PRAGMA user_version` records how many ran. Append, never edit:
 * a database created by an older version is brought forward by the steps it has not seen.
 * Times are epoch milliseconds. `tasks.seq` is the rowid: executions reference it (an integer join
 * is cheaper than a text one) and it orders tasks by creation.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    ip TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled')),
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX tasks_created ON tasks (created_at);
  CREATE INDEX tasks_status_created ON tasks (status, created_at);
  CREATE INDEX tasks_name ON tasks (name);
  CREATE INDEX tasks_status_started ON tasks (status, started_at);

  CREATE TABLE executions (
    task_seq INTEGER NOT NULL REFERENCES tasks (seq),
    host_id TEXT NOT NULL REFERENCES hosts (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'timeout', 'cancelled')),
    exit_code INTEGER,
    output TEXT NOT NULL DEFAULT '',
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (task_seq, host_id)
  ) WITHOUT ROWID;
  CREATE INDEX executions_host ON executions (host_id, task_seq);
  CREATE INDEX executions_status ON executions (status);
  `,
]

export const SCHEMA_VERSION = MIGRATIONS.length

/** Brings the schema to `SCHEMA_VERSION`. Safe with several processes opening one file at once. */
export function migrate(db: Database): void {
  const step = db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number
    if (current > SCHEMA_VERSION) throw new SchemaTooNewError(current, SCHEMA_VERSION)
    for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string)
    if (current !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
  })
  // IMMEDIATE takes the write lock before reading the version, so two processes never both migrate.
  step.immediate()
}
