/**
 * `getCacheStatistics()`: the core's counters and L2 info, per task family. Memory and connection
 * state are read on every call; the key counts come from `KeyCounts` (a scan at most once a minute).
 */
import type { LatencySnapshot, Logger, TieredCache } from '@tiercache/core'
import { TASK_FAMILY_NAMES, type TaskFamilies } from './families.js'
import type { KeyCounts } from './key-counts.js'

export interface FamilyStatistics {
  /** Entries in L2 (all generations) as of `entriesCountedAt`, or null when L2 cannot tell. */
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
  /** When the `entries` of the families were counted (epoch ms; they are reused for a minute), or null. */
  readonly entriesCountedAt: number | null
  readonly l1: { readonly entries: number; readonly bytes: number }
  /** Milliseconds over the most recent samples: loader calls, and L2 round trips. */
  readonly latency: { readonly load: LatencySnapshot; readonly l2: LatencySnapshot }
  readonly l2: {
    readonly available: boolean
    readonly connection: string
    readonly usedMemoryBytes: number | null
  }
  readonly breaker: { readonly state: string; readonly transitions: number }
  readonly busHealthy: boolean
  readonly recoveryQueueDepth: number
  /** Background writes queued or running. */
  readonly writeQueueDepth: number
  /** True while reads bypass L2 (breaker open or L2 unreachable) and are served from the database. */
  readonly degraded: boolean
  readonly database: { readonly queries: number }
}

export async function readCacheStatistics(
  cache: TieredCache,
  families: TaskFamilies,
  keyCounts: KeyCounts,
  databaseQueries: number,
  log: Logger,
): Promise<TaskCacheStatistics> {
  const stats = cache.stats()
  let info: Awaited<ReturnType<TieredCache['l2Info']>>
  let l2Available = true
  try {
    info = await cache.l2Info({ keys: false })
  } catch (error) {
    l2Available = false
    log.warn({ err: error }, 'task cache statistics: L2 info unavailable')
  }
  // Counts only while L2 answers: old counts of an L2 that cannot tell now would look current.
  const counts = info?.connection === 'ready' ? await keyCounts.read() : undefined
  const out: Record<string, FamilyStatistics> = {}
  for (const [member, name] of Object.entries(TASK_FAMILY_NAMES) as [keyof TaskFamilies, string][]) {
    const id = families[member].id
    const c = stats.families[id]
    const l1Hits = c?.l1Hits ?? 0
    const l2Hits = c?.l2Hits ?? 0
    const misses = c?.misses ?? 0
    const lookups = l1Hits + l2Hits + misses
    out[name] = {
      entries: counts === undefined ? null : (counts.byFamily[id] ?? 0),
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
    entriesCountedAt: counts?.countedAt ?? null,
    l1: stats.l1,
    latency: stats.latency,
    l2: { available: l2Available && info !== undefined, connection, usedMemoryBytes: info?.usedMemoryBytes ?? null },
    breaker: stats.breaker,
    busHealthy: stats.busHealthy,
    recoveryQueueDepth: stats.recoveryQueueDepth,
    writeQueueDepth: stats.writeQueueDepth,
    degraded: stats.breaker.state === 'open' || !l2Available || (info !== undefined && info.connection !== 'ready'),
    database: { queries: databaseQueries },
  }
}
