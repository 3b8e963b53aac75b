import { CacheClosedError } from '../errors.js'
import type { Loader } from '../family.js'
import type { GetOrSetOptions } from '../options.js'
import type { Clock } from '../ports.js'
import type { FamilyCounters } from '../stats.js'
import { BASE_UNIT, type L1Entry, type LocalTier, promiseOf } from './local-tier.js'

export interface HitParts {
  readonly local: LocalTier
  readonly clock: Clock
  readonly counters: FamilyCounters
  /** Counts a hit and hands out the value when hits tell a sink or copy (else `undefined`). */
  readonly observed: ((value: unknown) => unknown) | undefined
  readonly miss: (key: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined, entry: L1Entry | undefined) => Promise<unknown>
  readonly read: (key: string, entry: L1Entry | undefined) => Promise<unknown>
  readonly closed: () => boolean
}

/**
 * The default family's hit path: one LRU lookup, one freshness test, the entry's settled promise.
 * Closures over locals (a hit reads no field of the cache), chosen once: with a stats sink or
 * `clone` a hit also counts into the sink or copies. The L1 cap is `local.cap`, which coherence
 * sets: `Infinity` while the bus is healthy. A tagged entry also asks the tag table through
 * `local.stands` (one comparison while nothing was invalidated since its write); an entry without
 * tags or eager refresh has no `more` and skips both. A `getOrSet` hit past the entry's eager refresh
 * point takes the miss path, which answers at once and reloads behind. A closed cache's L1 is
 * empty, so only misses check it.
 */
export function hitPaths(p: HitParts) {
  const { local, clock, counters, observed, miss, read, closed } = p
  const lru = local.lru
  if (observed === undefined) {
    return {
      getOrSet: (key: string, loader: Loader<unknown>, options?: GetOrSetOptions): Promise<unknown> => {
        const entry = lru.get(key)
        if (entry !== undefined) {
          // The entry's times count in milliseconds from its base (see `LocalTier`).
          const t = clock.now() - entry.base * BASE_UNIT
          // Most entries have no `more` (tags, eager refresh): one test that holds.
          if (entry.fresh > t && t - entry.filled < local.cap && (entry.more === undefined || (entry.more.refresh > t && local.stands(entry.more)))) {
            counters.l1Hits++
            return promiseOf(entry)
          }
        }
        return miss(key, loader, options, entry)
      },
      get: (key: string): Promise<unknown> => {
        const entry = lru.get(key)
        if (entry !== undefined) {
          const t = clock.now() - entry.base * BASE_UNIT
          if (entry.fresh > t && t - entry.filled < local.cap && (entry.more === undefined || local.stands(entry.more))) {
            counters.l1Hits++
            return promiseOf(entry)
          }
        }
        return read(key, entry)
      },
      peek: (key: string): unknown => {
        const entry = lru.get(key)
        if (entry !== undefined) {
          const t = clock.now() - entry.base * BASE_UNIT
          if (entry.fresh > t && t - entry.filled < local.cap && (entry.more === undefined || local.stands(entry.more))) {
            counters.l1Hits++
            return entry.value
          }
        }
        if (closed()) throw new CacheClosedError()
        return undefined
      },
    }
  }
  // Observed hits pay a sink call or a copy anyway: they take the local tier's own test.
  const hit = (entry: L1Entry): boolean => local.fresh(entry)
  return {
    getOrSet: (key: string, loader: Loader<unknown>, options?: GetOrSetOptions): Promise<unknown> => {
      const entry = lru.get(key)
      if (entry !== undefined && local.settled(entry)) return Promise.resolve(observed(entry.value))
      return miss(key, loader, options, entry)
    },
    get: (key: string): Promise<unknown> => {
      const entry = lru.get(key)
      if (entry !== undefined && hit(entry)) return Promise.resolve(observed(entry.value))
      return read(key, entry)
    },
    peek: (key: string): unknown => {
      const entry = lru.get(key)
      if (entry !== undefined && hit(entry)) return observed(entry.value)
      if (closed()) throw new CacheClosedError()
      return undefined
    },
  }
}
