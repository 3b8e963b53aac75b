export { prometheusMetrics } from './prometheus-metrics.js'
export type { PrometheusMetrics } from './prometheus-metrics.js'
export { DEFAULT_L2_BUCKETS, DEFAULT_LOADER_BUCKETS, DEFAULT_PREFIX } from './options.js'
export type { PrometheusMetricsOptions } from './options.js'
