import type { Pool } from 'pg'
import { z } from 'zod'
import { parseOptions } from '../parse-options.js'

export interface PostgresTaskRepositoryOptions {
  /**
   * Where the database is, e.g. `postgres://user:pass@db.internal:5432/tasks`: the repository
   * opens its own pool of `maxConnections` and ends it on `close()`. Give this or `pool`.
   */
  connectionString?: string
  /**
   * A `pg.Pool` the service already has: the repository runs its queries on it and leaves it open
   * on `close()` (its owner ends it). Attach the pool's `error` listener yourself: an idle client's
   * error on a pool without one crashes the process.
   */
  pool?: Pool
  /** Connections of the pool opened from `connectionString`. @default 10 */
  maxConnections?: number
  /** Time source for createdAt/startedAt/finishedAt (epoch ms). @default Date.now */
  now?: () => number
  /**
   * Errors of idle pooled connections (the server restarted, the network dropped one): the pool
   * drops the connection and opens another on the next query. @default a process warning
   */
  onError?: (error: Error) => void
}

export interface ResolvedPostgresTaskRepositoryOptions {
  readonly connectionString: string | null
  readonly pool: Pool | null
  readonly maxConnections: number
  readonly now: () => number
  readonly onError: (error: Error) => void
}

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `must be a function ${what}`)

const OptionsSchema = z
  .strictObject({
    connectionString: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    pool: z
      .custom<Pool>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Pool).query === 'function' && typeof (v as Pool).connect === 'function',
        'must be a pg.Pool (an object with query() and connect())',
      )
      .optional(),
    maxConnections: z.number().int().min(1).max(1000).default(10),
    now: fn<() => number>('returning epoch ms').default(() => Date.now),
    onError: fn<(error: Error) => void>('taking an Error').default(() => (error: Error) => process.emitWarning(error)),
  })
  .superRefine((o, ctx) => {
    if ((o.connectionString === undefined) === (o.pool === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['connectionString'], message: 'give exactly one of connectionString and pool' })
    }
  })

export function resolvePostgresTaskRepositoryOptions(options: PostgresTaskRepositoryOptions): ResolvedPostgresTaskRepositoryOptions {
  const o = parseOptions(OptionsSchema, options)
  return Object.freeze({ ...o, connectionString: o.connectionString ?? null, pool: o.pool ?? null })
}
