import { InvalidOptionsError, parseDuration, silentLogger, type Duration, type Logger, type TieredCache } from '@tiercache/core'
import { z } from 'zod'
import type { TaskFamilyTtls } from './families.js'
import type { TaskRepository } from './repository.js'
import { parseOptions } from './parse-options.js'

export interface CachedTaskServiceOptions {
  cache: TieredCache
  repository: TaskRepository
  /** Per-family TTLs. @default task:status 5m, task:progress 2m, task:stats 10m, task:list 3m, host:tasks 5m, task:execution 1m */
  ttl?: TaskFamilyTtls
  /** Longest global statistics may lag a write. `0`: invalidated with every write. @default '1s' */
  statsMaxStaleness?: Duration
  /** Run `warmupCache()` in the background once created. @default false */
  warmupOnStart?: boolean
  /** Running tasks whose status `warmupCache()` loads. @default 100 */
  warmupTasks?: number
  /** Interval of the maintenance run (cleanup + a statistics log line); `false` disables it. @default '30m' */
  maintenanceInterval?: Duration | false
  /**
   * The writes' invalidations run in the background: a write resolves once the database changed
   * and the local L1 dropped what it invalidated; the L2 changes and the bus message follow in
   * order (see the core's `backgroundWrites`: this process reads its own writes meanwhile).
   * @default the cache's `backgroundWrites`
   */
  backgroundWrites?: boolean
  /** pino-compatible; hits and misses at debug, invalidations at debug, failures at warn. @default silent */
  logger?: Logger
}

export interface ResolvedCachedTaskServiceOptions {
  readonly statsMaxStalenessMs: number
  readonly warmupOnStart: boolean
  readonly warmupTasks: number
  readonly maintenanceIntervalMs: number | false
  /** `undefined`: the cache's default. */
  readonly backgroundWrites: boolean | undefined
  readonly logger: Logger
  readonly traceReads: boolean
}

const durationSchema = z.union([z.number(), z.string()], { error: 'expected a duration (ms or a string like "1s")' })
const OptionsSchema = z.object({
  cache: z.custom<TieredCache>((v) => typeof (v as TieredCache | null)?.family === 'function', 'expected a TieredCache (createTieredCache())'),
  repository: z.custom<TaskRepository>(
    (v) => typeof (v as TaskRepository | null)?.getTaskStatusView === 'function',
    'expected a TaskRepository',
  ),
  ttl: z.unknown().optional(),
  statsMaxStaleness: durationSchema.default('1s'),
  warmupOnStart: z.boolean().default(false),
  warmupTasks: z.number().int().nonnegative().default(100),
  maintenanceInterval: z.union([durationSchema, z.literal(false)]).default('30m'),
  backgroundWrites: z.boolean({ error: 'expected a boolean' }).optional(),
  logger: z
    .custom<Logger>((v) => ['debug', 'info', 'warn', 'error'].every((m) => typeof (v as Record<string, unknown> | null)?.[m] === 'function'), 'expected a pino-compatible logger')
    .optional(),
})

export function resolveCachedTaskServiceOptions(options: CachedTaskServiceOptions): ResolvedCachedTaskServiceOptions {
  const o = parseOptions(OptionsSchema, options)
  const interval = o.maintenanceInterval === false ? false : parseDuration(o.maintenanceInterval, 'maintenanceInterval')
  if (interval !== false && interval < 1000) throw new InvalidOptionsError('maintenanceInterval', `must be at least 1s or false (got ${interval}ms)`)
  return Object.freeze({
    statsMaxStalenessMs: parseDuration(o.statsMaxStaleness, 'statsMaxStaleness'),
    warmupOnStart: o.warmupOnStart,
    warmupTasks: o.warmupTasks,
    maintenanceIntervalMs: interval,
    backgroundWrites: o.backgroundWrites,
    logger: o.logger ?? silentLogger,
    traceReads: o.logger !== undefined,
  })
}
