/**
 * The options of `prometheusMetrics()`: their types, defaults and validation. Everything is
 * checked here, before anything is registered, so a call that throws leaves the registry as it
 * was. Errors are the core's `InvalidOptionsError` (code `E_INVALID_OPTIONS`) naming the option.
 */
import { InvalidOptionsError, type TieredCache } from '@tiercache/core'
import { type OpenMetricsContentType, type PrometheusContentType, type Registry, register } from 'prom-client'

/** A prom-client registry of either exposition format. */
export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>

export interface PrometheusMetricsOptions {
  /** The registry the metrics go to. @default prom-client's global `register` */
  readonly registry?: AnyRegistry
  /** Prepended to every metric name. @default 'tiercache_' */
  readonly prefix?: string
  /**
   * Constant labels on every series of this cache, beside `cache` (which is always `cache.name`).
   * Every cache exported to one registry under one prefix has the same label names.
   */
  readonly labels?: Readonly<Record<string, string>>
  /**
   * Database queries run so far (e.g. `() => service.databaseQueries`), read at scrape time and
   * exported as `<prefix>database_queries_total`.
   */
  readonly databaseQueries?: () => number
  /** Upper bounds in seconds of `<prefix>loader_duration_seconds`. @default DEFAULT_LOADER_BUCKETS */
  readonly loaderBuckets?: readonly number[]
  /** Upper bounds in seconds of `<prefix>l2_duration_seconds`. @default DEFAULT_L2_BUCKETS */
  readonly l2Buckets?: readonly number[]
}

/** Loaders are database queries or remote calls: half a millisecond to ten seconds. */
export const DEFAULT_LOADER_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
/** L2 calls are network round trips bounded by `l2Timeout`: a tenth of a millisecond to a second. */
export const DEFAULT_L2_BUCKETS: readonly number[] = Object.freeze([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])

export const DEFAULT_PREFIX = 'tiercache_'

/** Labels the metrics set themselves (and `le`, `quantile`, which Prometheus reserves for histograms and summaries). */
const OWN_LABELS = new Set(['family', 'result', 'operation', 'direction', 'le', 'quantile'])

export interface ResolvedOptions {
  readonly registry: AnyRegistry
  readonly prefix: string
  /** The extra labels, keys sorted, without `cache`. */
  readonly labels: Readonly<Record<string, string>>
  readonly databaseQueries: (() => number) | undefined
  readonly loaderBuckets: readonly number[]
  readonly l2Buckets: readonly number[]
}

const KNOWN = ['registry', 'prefix', 'labels', 'databaseQueries', 'loaderBuckets', 'l2Buckets']
// Prometheus' data model: metric names may hold colons, label names may not.
const METRIC_PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function resolveOptions(cache: TieredCache, options: PrometheusMetricsOptions | undefined): ResolvedOptions {
  if (!isObject(cache) || typeof cache.name !== 'string' || typeof cache.stats !== 'function') {
    throw new InvalidOptionsError('cache', 'expected a TieredCache (an object with a name and stats())')
  }
  if (options !== undefined && !isObject(options)) throw new InvalidOptionsError('', 'prometheusMetrics options: expected an object')
  const o = options ?? {}
  for (const key of Object.keys(o)) {
    if (!KNOWN.includes(key)) throw new InvalidOptionsError(key, `unknown option (expected one of ${KNOWN.join(', ')})`)
  }
  return {
    registry: checkRegistry(o.registry),
    prefix: checkPrefix(o.prefix),
    labels: checkLabels(o.labels, cache.name),
    databaseQueries: checkFunction(o.databaseQueries, 'databaseQueries'),
    loaderBuckets: checkBuckets(o.loaderBuckets, 'loaderBuckets') ?? DEFAULT_LOADER_BUCKETS,
    l2Buckets: checkBuckets(o.l2Buckets, 'l2Buckets') ?? DEFAULT_L2_BUCKETS,
  }
}

function checkRegistry(registry: unknown): AnyRegistry {
  if (registry === undefined) return register
  // Duck-typed rather than `instanceof`: an application may hold another copy of prom-client.
  const methods = ['registerMetric', 'getSingleMetric', 'removeSingleMetric'] as const
  if (!isObject(registry) || methods.some((method) => typeof registry[method] !== 'function')) {
    throw new InvalidOptionsError('registry', `expected a prom-client Registry (an object with ${methods.join(', ')})`)
  }
  return registry as unknown as AnyRegistry
}

function checkPrefix(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX
  if (typeof prefix !== 'string' || !METRIC_PREFIX.test(prefix)) {
    throw new InvalidOptionsError('prefix', `expected letters, digits, '_' or ':', not starting with a digit (e.g. 'tiercache_'), got ${show(prefix)}`)
  }
  return prefix
}

function checkLabels(labels: unknown, cacheName: string): Readonly<Record<string, string>> {
  if (labels === undefined) return Object.freeze({})
  if (!isObject(labels) || Array.isArray(labels)) throw new InvalidOptionsError('labels', 'expected an object of label names to string values')
  const checked: Record<string, string> = {}
  for (const name of Object.keys(labels).sort()) {
    const path = `labels.${name}`
    if (name === 'cache') throw new InvalidOptionsError(path, `the cache label is always the cache's name ("${cacheName}"): set the cache's name option instead`)
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new InvalidOptionsError(path, "expected a label name of letters, digits and '_', not starting with a digit nor with '__'")
    }
    if (OWN_LABELS.has(name)) throw new InvalidOptionsError(path, `'${name}' is a label the metrics set themselves: choose another name`)
    const value = labels[name]
    if (typeof value !== 'string') throw new InvalidOptionsError(path, `expected a string value, got ${show(value)}`)
    checked[name] = value
  }
  return Object.freeze(checked)
}

function checkFunction(fn: unknown, path: string): (() => number) | undefined {
  if (fn === undefined) return undefined
  if (typeof fn !== 'function') throw new InvalidOptionsError(path, `expected a function returning a number, got ${show(fn)}`)
  return fn as () => number
}

function checkBuckets(buckets: unknown, path: string): readonly number[] | undefined {
  if (buckets === undefined) return undefined
  const valid =
    Array.isArray(buckets) &&
    buckets.length > 0 &&
    buckets.every((bound, i) => typeof bound === 'number' && Number.isFinite(bound) && bound > 0 && (i === 0 || bound > (buckets[i - 1] as number)))
  if (!valid) throw new InvalidOptionsError(path, `expected a non-empty array of increasing upper bounds in seconds, above 0, got ${show(buckets)}`)
  return Object.freeze([...(buckets as number[])])
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
