/**
 * Sharing per registry: every cache exported to one registry under one prefix joins one hub,
 * which owns one `MetricSet` (each metric registered once, series told apart by `cache`) and one
 * duration sink. The first cache to join creates the hub, the last to leave unregisters its
 * metrics and removes its sink. Two registries, or two prefixes in one, get hubs of their own.
 *
 * The hub also makes each scrape read `stats()` once per cache: a scrape calls every collect
 * callback synchronously (prom-client starts each metric's `get()` in one loop), so a snapshot
 * kept until the next microtask serves all of them, and the next scrape reads afresh.
 */
import { type CacheStats, InvalidOptionsError, type TieredCache } from '@tiercache/core'
import { type DurationSink, addDurationSink } from './durations.js'
import { DATABASE_QUERIES, METRIC_NAMES, type Member, MetricSet, type StatsSource } from './metric-set.js'
import type { AnyRegistry, ResolvedOptions } from './options.js'

const hubs = new WeakMap<AnyRegistry, Map<string, Hub>>()

/** Exports `cache` through the hub of its registry and prefix; the returned function leaves it. */
export function join(cache: TieredCache, o: ResolvedOptions): () => void {
  const byPrefix = hubs.get(o.registry) ?? new Map<string, Hub>()
  let hub = byPrefix.get(o.prefix)
  if (hub !== undefined) hub.check(cache.name, o)
  else {
    checkNamesFree(o.registry, o.prefix, o.databaseQueries === undefined ? METRIC_NAMES : [...METRIC_NAMES, DATABASE_QUERIES])
    hub = new Hub(o)
    byPrefix.set(o.prefix, hub)
    hubs.set(o.registry, byPrefix)
  }
  const joined = hub
  const member = joined.add(cache, o)
  return () => {
    if (!joined.remove(member)) return
    byPrefix.delete(o.prefix)
    if (byPrefix.size === 0) hubs.delete(o.registry)
  }
}

/** A metric of ours cannot replace one registered by someone else: prom-client would throw an unclear error. */
function checkNamesFree(registry: AnyRegistry, prefix: string, names: readonly string[]): void {
  for (const name of names) {
    if (registry.getSingleMetric(prefix + name) !== undefined) {
      throw new InvalidOptionsError('prefix', `a metric named "${prefix + name}" is already registered in this registry: pass another prefix`)
    }
  }
}

class Hub implements StatsSource, DurationSink {
  readonly #o: ResolvedOptions
  readonly #labelNames: readonly string[]
  readonly #members = new Map<string, Member>()
  readonly #metrics: MetricSet
  readonly #removeSink: () => void
  #tick: Map<Member, CacheStats> | undefined

  constructor(o: ResolvedOptions) {
    this.#o = o
    this.#labelNames = Object.keys(o.labels)
    this.#metrics = new MetricSet({ registry: o.registry, prefix: o.prefix, labelNames: this.#labelNames, loaderBuckets: o.loaderBuckets, l2Buckets: o.l2Buckets }, this)
    this.#removeSink = addDurationSink(this)
  }

  /** Throws, changing nothing, when `name` cannot join: the metrics are shared, so their shape is too. */
  check(name: string, o: ResolvedOptions): void {
    if (this.#members.has(name)) {
      throw new InvalidOptionsError(
        'cache.name',
        `a cache named "${name}" is already exported to this registry (prefix "${o.prefix}"): give each cache its own name option, or close() the other's metrics first`,
      )
    }
    const names = Object.keys(o.labels)
    if (names.join() !== this.#labelNames.join()) {
      throw new InvalidOptionsError('labels', `expected the label names of the other caches in this registry (${list(this.#labelNames)}), got (${list(names)}): a metric's series share their label names`)
    }
    for (const key of ['loaderBuckets', 'l2Buckets'] as const) {
      if (o[key].join() !== this.#o[key].join()) {
        throw new InvalidOptionsError(key, `expected the buckets of the other caches in this registry ([${this.#o[key].join(', ')}]), got [${o[key].join(', ')}]: the histograms are shared`)
      }
    }
    if (o.databaseQueries !== undefined && !this.#metrics.hasDatabaseQueries) checkNamesFree(o.registry, o.prefix, [DATABASE_QUERIES])
  }

  add(cache: TieredCache, o: ResolvedOptions): Member {
    const member: Member = {
      cache,
      name: cache.name,
      labels: o.labels,
      databaseQueries: o.databaseQueries,
      loaderFamilies: new Set(),
      l2Operations: new Set(),
    }
    this.#members.set(member.name, member)
    if (member.databaseQueries !== undefined) this.#metrics.enableDatabaseQueries()
    return member
  }

  /** Removes a member; true when it was the last, and the hub has unregistered everything. */
  remove(member: Member): boolean {
    if (this.#members.get(member.name) !== member) return false
    this.#members.delete(member.name)
    this.#tick?.delete(member)
    if (this.#members.size === 0) {
      this.#metrics.unregister()
      this.#removeSink()
      return true
    }
    this.#metrics.forget(member)
    if (![...this.#members.values()].some((m) => m.databaseQueries !== undefined)) this.#metrics.disableDatabaseQueries()
    return false
  }

  members(): Iterable<Member> {
    return this.#members.values()
  }

  stats(member: Member): CacheStats {
    let tick = this.#tick
    if (tick === undefined) {
      tick = this.#tick = new Map()
      queueMicrotask(() => {
        this.#tick = undefined
      })
    }
    let stats = tick.get(member)
    if (stats === undefined) tick.set(member, (stats = member.cache.stats()))
    return stats
  }

  wants(cache: string): boolean {
    return this.#members.has(cache)
  }

  loader(cache: string, family: string, seconds: number): void {
    const member = this.#members.get(cache)
    if (member !== undefined) this.#metrics.observeLoader(member, family, seconds)
  }

  l2(cache: string, operation: string, seconds: number): void {
    const member = this.#members.get(cache)
    if (member !== undefined) this.#metrics.observeL2(member, operation, seconds)
  }
}

function list(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.join(', ')
}
