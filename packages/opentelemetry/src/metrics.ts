/** `openTelemetryMetrics`: a cache's statistics and durations as OpenTelemetry instruments. */
import { durationTap } from './durations.js'
import { attach, checkAttachable } from './hub.js'
import { type Instrumentation, instrumentation } from './instrumentation.js'
import { createDurationInstruments } from './instruments.js'
import { observeStats } from './observables.js'
import { checkCache, type InstrumentedCache, type MetricsOptions, resolveMetricsOptions } from './options.js'
import { instrumentTracing } from './tracing.js'

/**
 * Reports the cache on a meter: the observable instruments read `cache.stats()` once per
 * collection, the duration histograms come from the `tiercache:*` tracing channels. With
 * `spans: true`, also traces it (see `openTelemetryTracing`). Throws `InvalidOptionsError` for
 * invalid options, or when another cache with the same name is instrumented.
 */
export function openTelemetryMetrics(cache: InstrumentedCache, options?: MetricsOptions): Instrumentation {
  checkCache(cache)
  const o = resolveMetricsOptions(options)
  // Before anything is registered: a refused cache leaves no instrument or callback behind.
  checkAttachable(cache)
  const base = Object.freeze({ cache: cache.name, ...o.attributes })
  const detachDurations = attach(cache, durationTap(createDurationInstruments(o.meter), base))
  let tracing: Instrumentation | undefined
  let unobserve: () => void
  try {
    tracing = o.tracing === undefined ? undefined : instrumentTracing(cache, o.tracing)
    unobserve = observeStats(o.meter, cache, base, o.databaseQueries)
  } catch (error) {
    // A meter or tracer that throws: leave nothing subscribed behind.
    tracing?.close()
    detachDurations()
    throw error
  }
  return instrumentation(() => {
    unobserve()
    detachDurations()
    tracing?.close()
  })
}
