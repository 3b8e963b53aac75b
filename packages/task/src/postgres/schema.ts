import type { PoolClient } from 'pg'
import { SchemaTooNewError } from '../errors.js'

/**
 * Migrations, applied in order; the table `task_schema` records how many ran. Append, never
 * edit: a database created by an older version is brought forward by the steps it has not seen.
 *
 * The shape is SQLite's, so that both repositories share the row mapping: times are epoch
 * milliseconds (`bigint`), `tasks.seq` orders tasks by creation and is what executions reference
 * (an integer join is cheaper than a text one). Ids, names and host ids compare bytewise
 * (`COLLATE "C"`): list order and page boundaries are then the same as on SQLite whatever the
 * database's locale, and the text indexes serve `ORDER BY name`.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE hosts (
    id text COLLATE "C" PRIMARY KEY,
    ip text NOT NULL
  );

  CREATE SEQUENCE task_seq;
  CREATE TABLE tasks (
    seq bigint PRIMARY KEY DEFAULT nextval('task_seq'),
    id text COLLATE "C" NOT NULL UNIQUE,
    name text COLLATE "C" NOT NULL,
    command text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled')),
    created_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint
  );
  ALTER SEQUENCE task_seq OWNED BY tasks.seq;
  CREATE INDEX tasks_created ON tasks (created_at);
  CREATE INDEX tasks_status_created ON tasks (status, created_at);
  CREATE INDEX tasks_name ON tasks (name);
  CREATE INDEX tasks_status_started ON tasks (status, started_at);

  CREATE TABLE executions (
    task_seq bigint NOT NULL REFERENCES tasks (seq),
    host_id text COLLATE "C" NOT NULL REFERENCES hosts (id),
    status text NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'timeout', 'cancelled')),
    exit_code integer,
    output text NOT NULL DEFAULT '',
    started_at bigint,
    finished_at bigint,
    PRIMARY KEY (task_seq, host_id)
  );
  CREATE INDEX executions_host ON executions (host_id, task_seq);
  CREATE INDEX executions_status ON executions (status);
  `,
]

export const SCHEMA_VERSION = MIGRATIONS.length

/** Any 64-bit number, the same in every process: the advisory lock that serialises migrations. */
const MIGRATION_LOCK = 7_354_112_093

/**
 * Brings the schema to `SCHEMA_VERSION` in one transaction. Safe with several processes starting
 * at once: an advisory lock makes the second wait for the first, then find nothing to do.
 */
export async function migrate(client: PoolClient): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query('CREATE TABLE IF NOT EXISTS task_schema (version integer NOT NULL)')
    const { rows } = await client.query<{ version: number }>('SELECT version FROM task_schema')
    const current = rows[0]?.version ?? 0
    if (current > SCHEMA_VERSION) throw new SchemaTooNewError(current, SCHEMA_VERSION)
    for (let v = current; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v] as string)
    if (rows.length === 0) await client.query('INSERT INTO task_schema (version) VALUES ($1)', [SCHEMA_VERSION])
    else if (current !== SCHEMA_VERSION) await client.query('UPDATE task_schema SET version = $1', [SCHEMA_VERSION])
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  }
}
