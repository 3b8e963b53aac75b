import { z } from 'zod'
import { parseOptions } from '../parse-options.js'

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
  return Object.freeze(parseOptions(OptionsSchema, options))
}
