/** `openTelemetryTracing`: spans for a cache's loader calls and L2 calls. */
import { attach, checkAttachable } from './hub.js'
import { type Instrumentation, instrumentation } from './instrumentation.js'
import { checkCache, type InstrumentedCache, type ResolvedTracing, resolveTracingOptions, type TracingOptions } from './options.js'
import { spanTap } from './spans.js'

/**
 * Traces the cache's loader calls (`tiercache.loader`) and L2 calls (`tiercache.l2.<operation>`,
 * kind CLIENT) as children of the caller's active context; the span is the active context while
 * the call runs. Throws `InvalidOptionsError` for invalid options, or when another cache with the
 * same name is instrumented.
 */
export function openTelemetryTracing(cache: InstrumentedCache, options?: TracingOptions): Instrumentation {
  checkCache(cache)
  return instrumentTracing(cache, resolveTracingOptions(options))
}

/** For `openTelemetryMetrics({ spans: true })` too: options already resolved. */
export function instrumentTracing(cache: InstrumentedCache, tracing: ResolvedTracing): Instrumentation {
  checkAttachable(cache)
  const tap = spanTap(tracing, cache.name)
  const detach = attach(cache, tap)
  return instrumentation(() => {
    detach()
    tap.endOpen()
  })
}
