/**
 * The entry point: validates the options, then exports the cache through the hub of its
 * registry and prefix. Nothing here touches the cache's hot path: counters and gauges are read
 * from `stats()` when the registry is scraped, durations come from the core's tracing channels.
 */
import type { TieredCache } from '@tiercache/core'
import { type PrometheusMetricsOptions, resolveOptions } from './options.js'
import { join } from './registry-hub.js'

export interface PrometheusMetrics {
  /**
   * Stops exporting this cache: its series go, and with the last cache of a registry the
   * metrics are unregistered and the tracing channels left. Idempotent. The cache stays open.
   */
  close(): void
}

/**
 * Exports a cache's metrics to a prom-client registry. Throws `InvalidOptionsError`
 * (`E_INVALID_OPTIONS`) for invalid options, and for a cache whose name the registry already
 * exports under this prefix.
 */
export function prometheusMetrics(cache: TieredCache, options?: PrometheusMetricsOptions): PrometheusMetrics {
  const leave = join(cache, resolveOptions(cache, options))
  let closed = false
  return {
    close() {
      if (closed) return
      closed = true
      leave()
    },
  }
}
