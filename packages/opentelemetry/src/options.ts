/**
 * The options of both entry points, checked once when a cache is instrumented: a mistake throws
 * `InvalidOptionsError` (code `E_INVALID_OPTIONS`) naming the field, instead of metrics or spans
 * that silently never appear.
 */
import { type Attributes, type AttributeValue, type Meter, type MeterProvider, metrics, type Tracer, type TracerProvider, trace } from '@opentelemetry/api'
import { InvalidOptionsError, type TieredCache } from '@tiercache/core'
import { SCOPE_NAME, SCOPE_VERSION } from './version.js'

/** What the exporter reads from a cache: its name and its statistics. */
export type InstrumentedCache = Pick<TieredCache, 'name' | 'stats'>

export interface TracingOptions {
  /** Where the tracer comes from. @default the global tracer provider (`trace.getTracer`) */
  readonly tracerProvider?: TracerProvider
  /** A tracer to use as is (instead of `tracerProvider`). */
  readonly tracer?: Tracer
  /** Added to every span, after the `tiercache.*` attributes. */
  readonly attributes?: Attributes
  /**
   * Put the key a loader runs for on its span (`tiercache.key`; a batch: its first key). Off by
   * default: keys often hold personal data (a user id, an e-mail address). @default false
   */
  readonly spanKeys?: boolean
}

export interface MetricsOptions {
  /** Where the meter comes from. @default the global meter provider (`metrics.getMeter`) */
  readonly meterProvider?: MeterProvider
  /** A meter to use as is (instead of `meterProvider`). */
  readonly meter?: Meter
  /** Added to every data point (and span), after `cache`: e.g. `{ region: 'eu-west-1' }`. */
  readonly attributes?: Attributes
  /**
   * A monotonic count of the queries the service made to its database, read at each collection
   * as `tiercache.database.queries`: next to the reads, it shows what the cache saves.
   */
  readonly databaseQueries?: () => number
  /** Also trace loader calls and L2 calls (see `openTelemetryTracing`). @default false */
  readonly spans?: boolean
  /** With `spans`: see `TracingOptions.tracerProvider`. */
  readonly tracerProvider?: TracerProvider
  /** With `spans`: see `TracingOptions.tracer`. */
  readonly tracer?: Tracer
  /** With `spans`: see `TracingOptions.spanKeys`. @default false */
  readonly spanKeys?: boolean
}

/**
 * Attribute names this package sets itself: a user attribute of the same name would overwrite
 * them and merge the series of different families, operations or results.
 */
const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set(['cache', 'family', 'result', 'operation', 'direction'])
const RESERVED_PREFIX = 'tiercache.'

const METRICS_KEYS: ReadonlySet<string> = new Set(['meterProvider', 'meter', 'attributes', 'databaseQueries', 'spans', 'tracerProvider', 'tracer', 'spanKeys'])
const TRACING_KEYS: ReadonlySet<string> = new Set(['tracerProvider', 'tracer', 'attributes', 'spanKeys'])

export interface ResolvedMetrics {
  readonly meter: Meter
  readonly attributes: Attributes
  readonly databaseQueries: (() => number) | undefined
  /** The tracing options when `spans` is on. */
  readonly tracing: ResolvedTracing | undefined
}

export interface ResolvedTracing {
  readonly tracer: Tracer
  readonly attributes: Attributes
  readonly spanKeys: boolean
}

export function checkCache(cache: unknown): asserts cache is InstrumentedCache {
  const c = cache as Partial<InstrumentedCache> | null
  if (typeof c !== 'object' || c === null || typeof c.stats !== 'function') {
    throw new InvalidOptionsError('cache', `expected a cache from createTieredCache (got ${describe(cache)})`)
  }
  if (typeof c.name !== 'string' || c.name === '') throw new InvalidOptionsError('cache.name', `expected a non-empty string (got ${describe(c.name)})`)
}

export function resolveMetricsOptions(options: MetricsOptions | undefined): ResolvedMetrics {
  const o = checkObject(options, METRICS_KEYS)
  if (o.meter !== undefined && o.meterProvider !== undefined) throw new InvalidOptionsError('meter', 'pass meter or meterProvider, not both')
  const meter = o.meter !== undefined ? checkMeter(o.meter) : getMeter(o.meterProvider)
  const attributes = checkAttributes(o.attributes)
  if (o.databaseQueries !== undefined && typeof o.databaseQueries !== 'function') {
    throw new InvalidOptionsError('databaseQueries', `expected a function returning a count, like () => db.queryCount (got ${describe(o.databaseQueries)})`)
  }
  const spans = checkBoolean(o.spans, 'spans')
  if (!spans) {
    // Tracing options without `spans` would trace nothing: say so rather than ignore them.
    for (const key of ['tracerProvider', 'tracer', 'spanKeys'] as const) {
      if (o[key] !== undefined) throw new InvalidOptionsError(key, 'only applies with spans: true')
    }
  }
  const tracing = spans ? resolveTracing(o, attributes) : undefined
  return Object.freeze({ meter, attributes, databaseQueries: o.databaseQueries, tracing })
}

export function resolveTracingOptions(options: TracingOptions | undefined): ResolvedTracing {
  const o = checkObject(options, TRACING_KEYS)
  return resolveTracing(o, checkAttributes(o.attributes))
}

function resolveTracing(o: TracingOptions, attributes: Attributes): ResolvedTracing {
  if (o.tracer !== undefined && o.tracerProvider !== undefined) throw new InvalidOptionsError('tracer', 'pass tracer or tracerProvider, not both')
  const tracer = o.tracer !== undefined ? checkTracer(o.tracer) : getTracer(o.tracerProvider)
  return Object.freeze({ tracer, attributes, spanKeys: checkBoolean(o.spanKeys, 'spanKeys') })
}

function checkObject<T extends object>(options: T | undefined, known: ReadonlySet<string>): T {
  if (options === undefined) return {} as T
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionsError('options', `expected an options object (got ${describe(options)})`)
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionsError(key, `unknown option (known: ${[...known].join(', ')})`)
  }
  return options
}

function getMeter(provider: MeterProvider | undefined): Meter {
  if (provider === undefined) return metrics.getMeter(SCOPE_NAME, SCOPE_VERSION)
  if (typeof (provider as Partial<MeterProvider> | null)?.getMeter !== 'function') {
    throw new InvalidOptionsError('meterProvider', `expected a MeterProvider (an object with getMeter) (got ${describe(provider)})`)
  }
  return checkMeter(provider.getMeter(SCOPE_NAME, SCOPE_VERSION), 'meterProvider')
}

function checkMeter(meter: Meter, path = 'meter'): Meter {
  const m = meter as Partial<Meter> | null
  if (typeof m?.createHistogram !== 'function' || typeof m.createObservableCounter !== 'function' || typeof m.addBatchObservableCallback !== 'function') {
    throw new InvalidOptionsError(path, `expected a Meter (createHistogram, createObservableCounter, addBatchObservableCallback) (got ${describe(meter)})`)
  }
  return meter
}

function getTracer(provider: TracerProvider | undefined): Tracer {
  if (provider === undefined) return trace.getTracer(SCOPE_NAME, SCOPE_VERSION)
  if (typeof (provider as Partial<TracerProvider> | null)?.getTracer !== 'function') {
    throw new InvalidOptionsError('tracerProvider', `expected a TracerProvider (an object with getTracer) (got ${describe(provider)})`)
  }
  return checkTracer(provider.getTracer(SCOPE_NAME, SCOPE_VERSION), 'tracerProvider')
}

function checkTracer(tracer: Tracer, path = 'tracer'): Tracer {
  if (typeof (tracer as Partial<Tracer> | null)?.startSpan !== 'function') {
    throw new InvalidOptionsError(path, `expected a Tracer (an object with startSpan) (got ${describe(tracer)})`)
  }
  return tracer
}

function checkBoolean(value: unknown, path: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new InvalidOptionsError(path, `expected a boolean (got ${describe(value)})`)
  return value
}

function checkAttributes(attributes: Attributes | undefined): Attributes {
  if (attributes === undefined) return Object.freeze({})
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    throw new InvalidOptionsError('attributes', `expected an object of attribute values, like { region: 'eu-west-1' } (got ${describe(attributes)})`)
  }
  const checked: Attributes = {}
  for (const [key, value] of Object.entries(attributes)) {
    if (RESERVED_ATTRIBUTES.has(key) || key.startsWith(RESERVED_PREFIX)) {
      throw new InvalidOptionsError(`attributes.${key}`, `reserved: the exporter sets ${key.startsWith(RESERVED_PREFIX) ? 'the tiercache.* span attributes' : `"${key}"`} itself`)
    }
    if (!isAttributeValue(value)) {
      throw new InvalidOptionsError(`attributes.${key}`, `expected a string, a number, a boolean or an array of one of them (got ${describe(value)})`)
    }
    checked[key] = value
  }
  return Object.freeze(checked)
}

function isAttributeValue(value: unknown): value is AttributeValue {
  const type = typeof value
  if (type === 'string' || type === 'boolean' || (type === 'number' && Number.isFinite(value))) return true
  if (!Array.isArray(value)) return false
  const kinds = new Set(value.filter((item) => item !== null && item !== undefined).map((item) => typeof item))
  return kinds.size <= 1 && [...kinds].every((kind) => kind === 'string' || kind === 'number' || kind === 'boolean')
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value
}
