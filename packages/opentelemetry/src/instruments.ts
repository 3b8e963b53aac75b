/**
 * The instruments: their names, kinds, units and descriptions, in one table. The names are those
 * of `@tiercache/prometheus` in OpenTelemetry style (dots, no `_total` or unit suffix): an
 * OpenTelemetry Prometheus exporter turns them back into that package's names
 * (`tiercache.reads` → `tiercache_reads_total`, `tiercache.loader.duration` in `s` →
 * `tiercache_loader_duration_seconds`), so one dashboard reads either.
 */
import { type Histogram, type Meter, type ObservableCounter, type ObservableGauge, ValueType } from '@opentelemetry/api'

export const NAMES = {
  reads: 'tiercache.reads',
  loaderDuration: 'tiercache.loader.duration',
  l2Duration: 'tiercache.l2.duration',
  l2Errors: 'tiercache.l2.errors',
  breakerState: 'tiercache.breaker.state',
  busHealthy: 'tiercache.bus.healthy',
  busMessages: 'tiercache.bus.messages',
  l1Entries: 'tiercache.l1.entries',
  recoveryQueueDepth: 'tiercache.recovery_queue.depth',
  databaseQueries: 'tiercache.database.queries',
} as const

/**
 * Bucket advice for the duration histograms, in seconds. The SDK's default boundaries (0 … 10 000)
 * are meant for milliseconds: in seconds every call would land in the first bucket. L2 calls
 * are usually well under a millisecond, so their buckets start lower than the loader's. A View
 * configured in the MeterProvider overrides either. The boundaries are `@tiercache/prometheus`'s, so
 * quantiles read the same from either exporter.
 */
export const LOADER_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
export const L2_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** The numeric values of `tiercache.breaker.state`, as in `@tiercache/prometheus`. */
export const BREAKER_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const

/** The instruments read from `cache.stats()` at each collection. */
export interface StatsInstruments {
  readonly reads: ObservableCounter
  readonly l2Errors: ObservableCounter
  readonly breakerState: ObservableGauge
  readonly busHealthy: ObservableGauge
  readonly busMessages: ObservableCounter
  readonly l1Entries: ObservableGauge
  readonly recoveryQueueDepth: ObservableGauge
  /** Only with the `databaseQueries` option. */
  readonly databaseQueries: ObservableCounter | undefined
}

/** The histograms fed from the `tiercache:*` tracing channels. */
export interface DurationInstruments {
  readonly loader: Histogram
  readonly l2: Histogram
}

const INT = { valueType: ValueType.INT }

export function createStatsInstruments(meter: Meter, withDatabaseQueries: boolean): StatsInstruments {
  return {
    reads: meter.createObservableCounter(NAMES.reads, {
      ...INT,
      description: 'Reads by result: l1_hit, l2_hit, miss (the loader ran or the key was absent), stale (a stale copy answered)',
    }),
    l2Errors: meter.createObservableCounter(NAMES.l2Errors, { ...INT, description: 'Failed L2 calls by operation, the open breaker refusing them included' }),
    breakerState: meter.createObservableGauge(NAMES.breakerState, { ...INT, description: 'The L2 circuit breaker: 0 closed, 1 half-open, 2 open' }),
    busHealthy: meter.createObservableGauge(NAMES.busHealthy, { ...INT, description: '1 while the invalidation bus is healthy (or there is none), else 0' }),
    busMessages: meter.createObservableCounter(NAMES.busMessages, {
      ...INT,
      description: 'Bus messages, heartbeats aside: direction in (applied from other processes), out (sent, each attempt)',
    }),
    l1Entries: meter.createObservableGauge(NAMES.l1Entries, { ...INT, description: 'Entries in the L1 memory tier' }),
    recoveryQueueDepth: meter.createObservableGauge(NAMES.recoveryQueueDepth, {
      ...INT,
      description: 'L2 deletes waiting to be replayed once L2 is back (a pending namespace bump counts one)',
    }),
    databaseQueries: withDatabaseQueries
      ? meter.createObservableCounter(NAMES.databaseQueries, { ...INT, description: 'Queries the service made to its database, as its databaseQueries() counts them' })
      : undefined,
  }
}

export function createDurationInstruments(meter: Meter): DurationInstruments {
  return {
    loader: meter.createHistogram(NAMES.loaderDuration, {
      unit: 's',
      description: 'Loader calls, from the call to its promise settling, failures included (a batch loader: one call)',
      advice: { explicitBucketBoundaries: [...LOADER_BUCKETS] },
    }),
    l2: meter.createHistogram(NAMES.l2Duration, {
      unit: 's',
      description: 'Calls through the L2 guard by operation, from the call to its promise settling, failures included',
      advice: { explicitBucketBoundaries: [...L2_BUCKETS] },
    }),
  }
}
