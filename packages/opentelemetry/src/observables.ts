/**
 * The observable instruments: one batch callback per instrumented cache reads `cache.stats()`
 * once per collection and reports every counter and gauge from that one snapshot, so the values
 * of one export agree with each other. The cache does nothing for them between collections.
 */
import { type Attributes, type BatchObservableCallback, diag, type Meter, type Observable } from '@opentelemetry/api'
import { attributesBy } from './attributes.js'
import { BREAKER_VALUES, createStatsInstruments } from './instruments.js'
import type { InstrumentedCache } from './options.js'

/** The `result` attribute of `tiercache.reads`, by the family counter it reads. */
const READ_RESULTS = [
  ['l1Hits', 'l1_hit'],
  ['l2Hits', 'l2_hit'],
  ['misses', 'miss'],
  ['staleServed', 'stale'],
] as const

/** Registers the callback on `meter`; the returned function removes it. */
export function observeStats(meter: Meter, cache: InstrumentedCache, base: Attributes, databaseQueries: (() => number) | undefined): () => void {
  const instruments = createStatsInstruments(meter, databaseQueries !== undefined)
  const byFamily = attributesBy(base, 'family')
  const readAttributes = new Map<string, readonly (readonly [(typeof READ_RESULTS)[number][0], Attributes])[]>()
  const readsOf = (family: string) => {
    let made = readAttributes.get(family)
    if (made === undefined) {
      const familyBase = byFamily(family)
      made = READ_RESULTS.map(([counter, result]) => [counter, Object.freeze({ ...familyBase, result })] as const)
      readAttributes.set(family, made)
    }
    return made
  }
  const byOperation = attributesBy(base, 'operation')
  const byDirection = attributesBy(base, 'direction')
  const inbound = byDirection('in')
  const outbound = byDirection('out')

  const callback: BatchObservableCallback = (result) => {
    const stats = cache.stats()
    for (const [family, counters] of Object.entries(stats.families)) {
      for (const [counter, attributes] of readsOf(family)) result.observe(instruments.reads, counters[counter], attributes)
    }
    for (const [operation, count] of Object.entries(stats.l2ErrorsByOperation)) result.observe(instruments.l2Errors, count, byOperation(operation))
    result.observe(instruments.breakerState, BREAKER_VALUES[stats.breaker.state], base)
    result.observe(instruments.busHealthy, stats.busHealthy ? 1 : 0, base)
    result.observe(instruments.busMessages, stats.busMessagesApplied, inbound)
    result.observe(instruments.busMessages, stats.busMessagesSent, outbound)
    result.observe(instruments.l1Entries, stats.l1.entries, base)
    result.observe(instruments.recoveryQueueDepth, stats.recoveryQueueDepth, base)
    if (instruments.databaseQueries !== undefined && databaseQueries !== undefined) {
      // The service's function: a failure of it skips its own data point, not the cache's.
      let count: unknown
      try {
        count = databaseQueries()
      } catch (error) {
        diag.warn('@tiercache/opentelemetry: databaseQueries() threw; tiercache.database.queries skipped this collection', error)
        return
      }
      if (typeof count === 'number' && Number.isFinite(count) && count >= 0) result.observe(instruments.databaseQueries, count, base)
      else diag.warn(`@tiercache/opentelemetry: databaseQueries() returned ${String(count)}, not a count; tiercache.database.queries skipped this collection`)
    }
  }

  const observables: Observable[] = [
    instruments.reads,
    instruments.l2Errors,
    instruments.breakerState,
    instruments.busHealthy,
    instruments.busMessages,
    instruments.l1Entries,
    instruments.recoveryQueueDepth,
  ]
  if (instruments.databaseQueries !== undefined) observables.push(instruments.databaseQueries)
  meter.addBatchObservableCallback(callback, observables)
  return () => meter.removeBatchObservableCallback(callback, observables)
}
