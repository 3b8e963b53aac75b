/**
 * The parts the HTTP service stands on: a SQLite task repository, a cache with Redis as L2, the
 * cached task service over both, and a Prometheus registry exporting the cache. `main.ts` and the
 * integration test build them the same way, so the test exercises the wiring the service runs.
 */
import type { Duration, Logger } from '@tiercache/core'
import { prometheusMetrics } from '@tiercache/prometheus'
import { createRedisCache, type RedisCache } from '@tiercache/redis'
import { createCachedTaskService, type CachedTaskService } from '@tiercache/task'
import { createSqliteTaskRepository, seedTasks, type SeedOptions, type SeedSummary, type SqliteTaskRepository } from '@tiercache/task/sqlite'
import { Registry } from 'prom-client'

export interface TaskStackOptions {
  /** `redis://host:port`. */
  redis: string
  /** Key prefix in Redis. `invalidateAllCache()` clears all of it, so the service needs one of its own. */
  namespace: string
  /** The SQLite database file (created when missing). */
  filename: string
  /** Fills an empty database with generated tasks and hosts; `false` leaves it as it is. */
  seed?: SeedOptions | false
  /** The cache's `name`: the `cache` label of its metrics. @default 'tasks' */
  cacheName?: string
  /** How long global statistics may lag a write. @default '1s' (the service's default) */
  statsMaxStaleness?: Duration
  /** pino-compatible logger for the cache and the service (fastify's `app.log` fits). @default silent */
  logger?: Logger
}

export interface TaskStack {
  readonly cache: RedisCache
  readonly repository: SqliteTaskRepository
  readonly service: CachedTaskService
  readonly registry: Registry
  /** What the seeder wrote, when it ran. */
  readonly seeded: SeedSummary | undefined
  /** Closes the service, the metrics, the cache and the repository, in that order. Idempotent. */
  close(): Promise<void>
}

/** A small data set: enough tasks for a few list pages, a handful of them running. */
export const DEFAULT_SEED: SeedOptions = { tasks: 60, hosts: 12, activeTasks: 8, maxHostsPerTask: 4, seed: 1 }

export async function createTaskStack(options: TaskStackOptions): Promise<TaskStack> {
  const repository = createSqliteTaskRepository({ filename: options.filename })
  const closers: (() => Promise<void> | void)[] = [() => repository.close()]
  const closeAll = async (): Promise<void> => {
    // Each part is closed even when one before it fails; the first failure is reported.
    let failure: unknown
    for (const close of closers.splice(0).reverse()) {
      try {
        await close()
      } catch (error) {
        failure ??= error
      }
    }
    if (failure !== undefined) throw failure
  }
  try {
    const seeded = options.seed === false ? undefined : await seedIfEmpty(repository, options.seed ?? DEFAULT_SEED)
    const cache = createRedisCache({
      redis: options.redis,
      namespace: options.namespace,
      name: options.cacheName ?? 'tasks',
      ...(options.logger ? { logger: options.logger } : {}),
    })
    closers.push(() => cache.close())
    const service = createCachedTaskService({
      cache,
      repository,
      ...(options.statsMaxStaleness === undefined ? {} : { statsMaxStaleness: options.statsMaxStaleness }),
      ...(options.logger ? { logger: options.logger } : {}),
    })
    const registry = new Registry()
    const metrics = prometheusMetrics(cache, { registry, databaseQueries: () => service.databaseQueries })
    // Closed in reverse: the metrics stop reading the cache before it closes, and the service
    // applies its pending statistics invalidation while the cache is still open.
    closers.push(() => metrics.close())
    closers.push(() => service.close())
    return { cache, repository, service, registry, seeded, close: closeAll }
  } catch (error) {
    await closeAll().catch(() => {})
    throw error
  }
}

/** Seeds a new database only: a file kept from an earlier run keeps its tasks. */
async function seedIfEmpty(repository: SqliteTaskRepository, seed: SeedOptions): Promise<SeedSummary | undefined> {
  const { totalTasks } = await repository.getTaskStatistics()
  return totalTasks === 0 ? seedTasks(repository, seed) : undefined
}
