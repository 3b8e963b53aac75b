/** `getCacheStatistics()`: the core's counters and L2 info, per task family. */
import type { Logger, TieredCache } from '@tiercache/core'
import { TASK_FAMILY_NAMES, type TaskFamilies } from './families.js'

export interface FamilyStatistics {
  /** Entries in L2 (all generations), or null when L2 cannot tell. */
  readonly entries: number | null
  readonly l1Hits: number
  readonly l2Hits: number
  readonly misses: number
  /** (l1Hits + l2Hits) / lookups, 0 before the first lookup. */
  readonly hitRate: number
  readonly loaderCalls: number
  readonly loaderErrors: number
  readonly staleServed: number
  readonly l2Errors: number
}

export interface TaskCacheStatistics {
  readonly families: Readonly<Record<string, FamilyStatistics>>
  readonly total: { readonly hitRate: number; readonly l1Hits: number; readonly l2Hits: number; readonly misses: number }
  readonly l1: { readonly entries: number; readonly bytes: number }
  readonly l2: {
    readonly available: boolean
    readonly connection: string
    readonly usedMemoryBytes: number | null
  }
  readonly breaker: { readonly state: string; readonly transitions: number }
  readonly busHealthy: boolean
  readonly recoveryQueueDepth: number
  /** True while reads bypass L2 (breaker open or L2 unreachable) and are served from the database. */
  readonly degraded: boolean
  readonly database: { readonly queries: number }
}

export async function readCacheStatistics(cache: TieredCache, families: TaskFamilies, databaseQueries: number, log: Logger): Promise<TaskCacheStatistics> {
  const stats = cache.stats()
  let info: Awaited<ReturnType<TieredCache['l2Info']>>
  let l2Available = true
  try {
    info = await cache.l2Info()
  } catch (error) {
    l2Available = false
    log.warn({ err: error }, 'task cache statistics: L2 info unavailable')
  }
  const out: Record<string, FamilyStatistics> = {}
  for (const [member, name] of Object.entries(TASK_FAMILY_NAMES) as [keyof TaskFamilies, string][]) {
    const id = families[member].id
    const c = stats.families[id]
    const l1Hits = c?.l1Hits ?? 0
    const l2Hits = c?.l2Hits ?? 0
    const misses = c?.misses ?? 0
    const lookups = l1Hits + l2Hits + misses
    out[name] = {
      entries: info === undefined ? null : (info.keysByFamily[id] ?? 0),
      l1Hits,
      l2Hits,
      misses,
      hitRate: lookups === 0 ? 0 : (l1Hits + l2Hits) / lookups,
      loaderCalls: c?.loaderCalls ?? 0,
      loaderErrors: c?.loaderErrors ?? 0,
      staleServed: c?.staleServed ?? 0,
      l2Errors: c?.l2Errors ?? 0,
    }
  }
  const connection = info?.connection ?? (l2Available ? 'none' : 'unavailable')
  return {
    families: out,
    total: { hitRate: stats.total.hitRate, l1Hits: stats.total.l1Hits, l2Hits: stats.total.l2Hits, misses: stats.total.misses },
    l1: stats.l1,
    l2: { available: l2Available && info !== undefined, connection, usedMemoryBytes: info?.usedMemoryBytes ?? null },
    breaker: stats.breaker,
    busHealthy: stats.busHealthy,
    recoveryQueueDepth: stats.recoveryQueueDepth,
    degraded: stats.breaker.state === 'open' || !l2Available || (info !== undefined && info.connection !== 'ready'),
    database: { queries: databaseQueries },
  }
}
