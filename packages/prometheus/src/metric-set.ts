/**
 * The metrics of one registry and prefix, shared by every cache exported there: counters and
 * gauges filled from `stats()` in prom-client `collect()` callbacks (at scrape time, never on the
 * cache's hot path), and the two duration histograms, observed from the tracing channels.
 *
 * A collected metric is rebuilt from scratch on each scrape: `reset()`, then one series per
 * cache. The core's counters are totals since the cache was created, so setting each series to
 * that total gives Prometheus the monotonic counter it expects, and a cache that left is simply
 * not written again.
 */
import type { CacheStats, TieredCache } from '@tiercache/core'
import { Counter, Gauge, Histogram } from 'prom-client'
import type { AnyRegistry } from './options.js'

type FamilyCounterName = keyof CacheStats['families'][string]

/** One cache exported to the set. */
export interface Member {
  readonly cache: TieredCache
  readonly name: string
  /** The extra constant labels, on every series of this cache after the metric's own. */
  readonly labels: Readonly<Record<string, string>>
  readonly databaseQueries: (() => number) | undefined
  /** Label values observed in the histograms, so that leaving can remove exactly those series. */
  readonly loaderFamilies: Set<string>
  readonly l2Operations: Set<string>
}

/** What the collected metrics read: the members, and one stats snapshot per member and scrape. */
export interface StatsSource {
  members(): Iterable<Member>
  stats(member: Member): CacheStats
}

export interface MetricSetOptions {
  readonly registry: AnyRegistry
  readonly prefix: string
  readonly labelNames: readonly string[]
  readonly loaderBuckets: readonly number[]
  readonly l2Buckets: readonly number[]
}

const READ_RESULTS: readonly (readonly [string, FamilyCounterName])[] = [
  ['l1_hit', 'l1Hits'],
  ['l2_hit', 'l2Hits'],
  ['miss', 'misses'],
  ['stale', 'staleServed'],
]

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const

/** Every metric name of a set but the optional database counter: checked free before a set is made. */
export const METRIC_NAMES = [
  'reads_total',
  'loader_calls_total',
  'loader_duration_seconds',
  'l2_duration_seconds',
  'l2_errors_total',
  'breaker_state',
  'bus_healthy',
  'bus_messages_total',
  'l1_entries',
  'recovery_queue_depth',
] as const
export const DATABASE_QUERIES = 'database_queries_total'

type Add = (labels: Record<string, string>, value: number) => void

/** A series' labels, in the order the exposition shows them: `cache`, the metric's own, the extra ones. */
function series(member: Member, own: Record<string, string>): Record<string, string> {
  return { cache: member.name, ...own, ...member.labels }
}

export class MetricSet {
  readonly #o: MetricSetOptions
  readonly #source: StatsSource
  /** Names as registered: an OpenMetrics scrape renames counters in place, the registry keeps these. */
  readonly #names: string[] = []
  readonly #loader: Histogram<string>
  readonly #l2: Histogram<string>
  #database: Counter<string> | undefined

  constructor(options: MetricSetOptions, source: StatsSource) {
    this.#o = options
    this.#source = source
    this.#counter('reads_total', 'Reads by result: L1 hit, L2 hit, miss, stale copy served.', ['family', 'result'], (add, stats) => {
      for (const [family, counters] of Object.entries(stats.families)) {
        for (const [result, field] of READ_RESULTS) add({ family, result }, counters[field])
      }
    })
    this.#counter('loader_calls_total', 'Loader calls (a batch loader call counts once).', ['family'], (add, stats) => {
      for (const [family, counters] of Object.entries(stats.families)) add({ family }, counters.loaderCalls)
    })
    this.#counter('l2_errors_total', 'Failed L2 calls by operation: reads, writes and background work.', ['operation'], (add, stats) => {
      for (const [operation, count] of Object.entries(stats.l2ErrorsByOperation)) add({ operation }, count)
    })
    this.#counter('bus_messages_total', 'Bus messages: in = applied from other processes, out = sent (heartbeats aside).', ['direction'], (add, stats) => {
      add({ direction: 'in' }, stats.busMessagesApplied)
      add({ direction: 'out' }, stats.busMessagesSent)
    })
    this.#gauge('breaker_state', 'L2 circuit breaker: 0 closed, 1 half-open, 2 open.', (set, stats) => set({}, BREAKER_STATE[stats.breaker.state]))
    this.#gauge('bus_healthy', '1 while the invalidation bus is healthy, else 0.', (set, stats) => set({}, stats.busHealthy ? 1 : 0))
    this.#gauge('l1_entries', 'Entries in L1.', (set, stats) => set({}, stats.l1.entries))
    this.#gauge('recovery_queue_depth', 'L2 changes queued while L2 is unavailable, replayed when it is back.', (set, stats) => set({}, stats.recoveryQueueDepth))
    this.#loader = this.#histogram('loader_duration_seconds', 'Loader call duration, failures included.', 'family', options.loaderBuckets)
    this.#l2 = this.#histogram('l2_duration_seconds', 'L2 call duration by operation, failures included.', 'operation', options.l2Buckets)
  }

  observeLoader(member: Member, family: string, seconds: number): void {
    member.loaderFamilies.add(family)
    this.#loader.observe(series(member, { family }), seconds)
  }

  observeL2(member: Member, operation: string, seconds: number): void {
    member.l2Operations.add(operation)
    this.#l2.observe(series(member, { operation }), seconds)
  }

  /** Drops a leaving member's histogram series; the collected metrics stop writing it themselves. */
  forget(member: Member): void {
    for (const family of member.loaderFamilies) this.#loader.remove(series(member, { family }))
    for (const operation of member.l2Operations) this.#l2.remove(series(member, { operation }))
  }

  /** The database counter exists while some member has `databaseQueries`. */
  get hasDatabaseQueries(): boolean {
    return this.#database !== undefined
  }

  enableDatabaseQueries(): void {
    this.#database ??= this.#collectedCounter(DATABASE_QUERIES, 'Database queries the service ran (its databaseQueries option).', [], (add, member) => {
      const read = member.databaseQueries
      if (read !== undefined) add({}, databaseQueries(member.name, read))
    })
  }

  disableDatabaseQueries(): void {
    if (this.#database === undefined) return
    this.#unregister(this.#o.prefix + DATABASE_QUERIES)
    this.#database = undefined
  }

  unregister(): void {
    for (const name of [...this.#names]) this.#unregister(name)
    this.#database = undefined
  }

  #unregister(name: string): void {
    this.#o.registry.removeSingleMetric(name)
    const at = this.#names.indexOf(name)
    if (at !== -1) this.#names.splice(at, 1)
  }

  #counter(name: string, help: string, labelNames: readonly string[], fill: (add: Add, stats: CacheStats) => void): void {
    this.#collectedCounter(name, help, labelNames, (add, member) => fill(add, this.#source.stats(member)))
  }

  /** A counter rebuilt on each scrape: reset, then each member's totals. */
  #collectedCounter(name: string, help: string, labelNames: readonly string[], fill: (add: Add, member: Member) => void): Counter<string> {
    const source = this.#source
    const counter: Counter<string> = new Counter({
      ...this.#config(name, help, labelNames),
      collect() {
        counter.reset()
        for (const member of source.members()) fill((labels, value) => counter.inc(series(member, labels), value), member)
      },
    })
    return counter
  }

  /** A gauge of one series per member, rebuilt on each scrape like the counters. */
  #gauge(name: string, help: string, fill: (set: Add, stats: CacheStats) => void): void {
    const source = this.#source
    const gauge: Gauge<string> = new Gauge({
      ...this.#config(name, help, []),
      collect() {
        gauge.reset()
        for (const member of source.members()) fill((labels, value) => gauge.set(series(member, labels), value), source.stats(member))
      },
    })
  }

  #histogram(name: string, help: string, label: string, buckets: readonly number[]): Histogram<string> {
    return new Histogram({ ...this.#config(name, help, [label]), buckets: [...buckets] })
  }

  #config(name: string, help: string, labelNames: readonly string[]) {
    const full = this.#o.prefix + name
    this.#names.push(full)
    return { name: full, help, labelNames: ['cache', ...labelNames, ...this.#o.labelNames], registers: [this.#o.registry] }
  }
}

/**
 * One reading of a `databaseQueries` option. A value a counter cannot take, or a throw, fails the
 * scrape with an error naming the cache: a silently missing series would hide the fault.
 */
function databaseQueries(cache: string, read: () => number): number {
  let value: unknown
  try {
    value = read()
  } catch (error) {
    throw new Error(`databaseQueries of cache "${cache}" threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`databaseQueries of cache "${cache}" returned ${String(value)}: expected a finite number of 0 or more`)
  }
  return value
}
