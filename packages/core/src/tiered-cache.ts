/**
 * The tiered cache engine.
 *
 * Read path
 *   1. L1 (lru-cache) lookup, synchronous. A fresh entry answers with the promise it was filled
 *      with (settled once, at fill), so a hit allocates nothing and chains no promise. The hit
 *      functions are chosen when the cache is built and swapped when the bus health changes
 *      (healthy / capped / closed): no feature flag is tested per hit.
 *   2. Miss: join the key's in-flight load (single-flight per process).
 *   3. L2 get through the guard. A fresh hit fills L1 with the entry's remaining TTL.
 *   4. L2 miss: take the key's lease. Granted → call the loader; fill L1 now and L2 in the
 *      background through `fillWithLease`. Not granted → another process is loading: poll L2
 *      (woken early by a bus message about the key) until its fill lands or `lease.waitTimeout`
 *      passes, then load ourselves.
 *   5. Loader failed or timed out and a stale copy (L1 or L2) within grace exists → serve it.
 *
 * Write path
 *   `set`/`delete`/invalidations change L1, then L2 (a failed L2 write or delete queues a delete
 *   in the recovery queue, because the old L2 value is now wrong), then publish on the bus.
 *   Invalidations of one event-loop turn go out as one message. The writer's promise settles
 *   once the message is handed to the transport.
 *
 * Failure policy
 *   Every L2 call passes one guard (timeout + breaker). Readers never see L2 errors while the
 *   loader can answer; writers don't either (their deletes are queued). The recovery queue is
 *   replayed when the breaker closes or a later write succeeds; overflow turns into a namespace
 *   generation bump. Background work reports through the logger, stats and the 'error' event.
 *
 * Coherence
 *   A load that started before an invalidation of its key (local write, bus message, L1 flush)
 *   is marked void: its result still answers the callers that were waiting (they asked before the
 *   write), but it lands neither in L1 nor, thanks to the voided lease, in L2. While the bus is
 *   unhealthy every L1 entry is served only within `unhealthyL1Cap` of its fill; when the bus is
 *   healthy again the whole L1 and the cached generations are dropped (messages may be lost).
 *   Generations are read lazily through the guard, kept in memory and updated by bus messages;
 *   when they cannot be read, the call skips L2 entirely.
 */
import { LRUCache } from 'lru-cache'
import { noopStatsSink, systemClock } from './defaults.js'
import { coarseClock } from './l1/coarse-clock.js'
import { type Duration, parseDuration } from './duration.js'
import { type CacheEventListener, type CacheEventName, Emitter } from './events.js'
import {
  type Family,
  type FamilyDefinition,
  type Loader,
  type LoaderContext,
  type ValueSchema,
  validateFamilyDefinition,
} from './family.js'
import {
  CacheClosedError,
  InvalidOptionsError,
  L2UnavailableError,
  LoaderError,
  LoaderTimeoutError,
  type TierCacheError,
} from './errors.js'
import { deepFreeze } from './l1/freeze.js'
import { L2Guard } from './l2/guard.js'
import { RecoveryQueue } from './l2/recovery-queue.js'
import { Publisher } from './coherence/publisher.js'
import {
  type EntrySettings,
  type GetOrSetOptions,
  type ResolvedOptions,
  type SetOptions,
  type TieredCacheOptions,
  baseSettings,
  resolveEntryOptions,
  resolveOptions,
  resolveSetOptions,
} from './options.js'
import type { InvalidationBus, LeaseGrant, ReceivedInvalidation, RemoteEntry, RemoteStore, StoreInfo, StoreKey } from './ports.js'
import { type BreakerState, type CacheStats, type CounterName, FamilyCounters, LatencyReservoir, sumCounters } from './stats.js'

/** The cache. Plain-key verbs use the default family (`default@1`). */
export interface TieredCache {
  get<T = unknown>(key: string): Promise<T | undefined>
  /** L1 only, synchronous: the fresh L1 value or `undefined`. */
  peek<T = unknown>(key: string): T | undefined
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>
  setMany<T>(entries: readonly { key: string; value: T; options?: SetOptions }[]): Promise<void>
  delete(key: string | readonly string[]): Promise<void>
  /** Drops L1, clears the store's namespace, tells the other nodes. */
  clear(): Promise<void>
  stats(): CacheStats
  on<E extends CacheEventName>(event: E, listener: CacheEventListener<E>): () => void
  family<P, V>(definition: FamilyDefinition<P, V>): Family<P, V>
  /** Deletes L2 keys whose part after the namespace matches `glob`; 0 without L2. */
  deleteByPattern(glob: string): Promise<number>
  /** The store's statistics, or `undefined` when there is no L2 or it reports none. */
  l2Info(): Promise<StoreInfo | undefined>
  /**
   * Waits until L2 is connected and the bus healthy, or until `timeout` (default 5 s), and says
   * which are: `{ l2, bus }`, false for a tier that is not configured. Never rejects (but for an
   * invalid `timeout`). Optional to call: a cache serves correctly from its first call, with
   * calls made during the first connection waiting for it within `l2Timeout`.
   */
  ready(options?: ReadyOptions): Promise<ReadyState>
  close(): Promise<void>
}

export interface ReadyOptions {
  /** How long to wait for L2 and the bus. @default '5s' */
  readonly timeout?: Duration
}

export interface ReadyState {
  /** L2 is configured and connected. */
  readonly l2: boolean
  /** A bus is configured and healthy: this node hears other nodes' invalidations. */
  readonly bus: boolean
}

const READY_TIMEOUT_MS = 5_000

interface L1Entry {
  readonly value: unknown
  /** Settled with `value` at fill: what a hit returns. */
  readonly promise: Promise<unknown>
  /** Served as fresh until here (entry TTL capped by l1Ttl). */
  readonly freshUntil: number
  /** May stand in for a failing loader until here. */
  readonly graceUntil: number
  readonly filledAt: number
}

interface FamilyContext {
  /** `<name>@<version>`. */
  readonly id: string
  readonly counters: FamilyCounters
  readonly settings: EntrySettings
  readonly schema: ValueSchema<unknown> | undefined
  readonly generational: boolean
  readonly group: ((params: never) => string) | undefined
  readonly isDefault: boolean
}

/** One load (or L2 read) in progress for one L1 key. */
interface Flight {
  /**
   * What joiners get; dropped once the flight has left its map. Maps under churn were seen to keep
   * removed entries reachable to scavenges until the next full GC: a settled flight must not
   * hold its promise (and through it the value), or every scavenge copies those values again.
   */
  promise: Promise<unknown> | undefined
  /** An invalidation of the key arrived after the flight started: its result must not land. */
  void: boolean
  /**
   * Voided only by the start-up L1 drop (the first subscription): the result stays out of L1,
   * but may still fill L2 through its lease, which any write made since has voided in L2.
   */
  voidedAtStart: boolean
  /** Stale value served on a soft timeout; the loader still runs. */
  background: boolean
}

type Outcome =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'soft-timeout' }
  | { readonly kind: 'hard-timeout' }

interface Stale {
  readonly value: unknown
}

/** An L2 answer that passed the family schema. */
interface L2Read {
  readonly entry: RemoteEntry
  readonly value: unknown
  readonly fresh: boolean
}

interface Generation {
  readonly value: number
  readonly readAt: number
}

/** A lease this process holds: it loads and fills with the token instead of waiting on itself. */
interface OwnLease {
  readonly token: string
  readonly storeKey: StoreKey
  readonly l1Key: string
  /** Clock time before which the store still holds it (measured from the request: never later). */
  readonly until: number
}

/** Above this many remembered leases, expired ones are swept on the next grant. */
const OWN_LEASE_SWEEP = 1024

const DEFAULT_FAMILY = 'default@1'
const SEP = '\u0001'

type HitGet = (key: string) => Promise<unknown>
type HitGetOrSet = (key: string, loader: Loader<unknown>, options?: GetOrSetOptions) => Promise<unknown>
type HitPeek = (key: string) => unknown

/** Creates a cache. Throws `InvalidOptionsError` for invalid options. */
export function createTieredCache(options?: TieredCacheOptions): TieredCache {
  return new TieredCacheEngine(resolveOptions(options))
}

class TieredCacheEngine implements TieredCache {
  // Hit paths, swapped on health changes and close (see buildHitPaths).
  getOrSet: TieredCache['getOrSet']
  get: TieredCache['get']
  peek: TieredCache['peek']

  readonly #o: ResolvedOptions
  readonly #l1: LRUCache<string, L1Entry>
  readonly #guard: L2Guard | undefined
  readonly #bus: InvalidationBus | undefined
  readonly #publisher: Publisher | undefined
  readonly #recovery: RecoveryQueue
  readonly #events: Emitter
  readonly #families = new Map<string, FamilyContext>()
  readonly #default: FamilyContext
  readonly #loads = new Map<string, Flight>()
  readonly #reads = new Map<string, Flight>()
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #generations = new Map<string, Generation>()
  readonly #generationReads = new Map<string, Promise<boolean>>()
  /** Leases granted to this process and not yet filled, by store key (see #lease). */
  readonly #ownLeases = new Map<string, OwnLease>()
  #ownLeaseSweepAt = OWN_LEASE_SWEEP
  readonly #loadLatency = new LatencyReservoir()
  readonly #trackBytes: boolean
  #busHealthy: boolean
  #closed = false
  #replaying = false
  /** Bumped by every invalidation; batch reads compare it to decide whether they may fill. */
  #invalidations = 0
  #busMessagesApplied = 0
  /** Every failed L2 call (reads, writes, background); per-family counters see only reads. */
  #l2Errors = 0
  #l1Flushes = 0
  #everHealthy = false
  /** Writes in progress: close() lets them finish (L2 and bus still open) before closing. */
  readonly #writes = new Set<Promise<unknown>>()
  #fresh: (entry: L1Entry, now: number) => boolean

  constructor(resolved: ResolvedOptions) {
    const options = resolved.clock === systemClock ? Object.freeze({ ...resolved, clock: coarseClock() }) : resolved
    this.#o = options
    this.#events = new Emitter(options.logger)
    this.#trackBytes = options.l1.maxBytes !== undefined
    this.#l1 = new LRUCache<string, L1Entry>(
      options.l1.maxBytes === undefined
        ? { max: options.l1.maxEntries }
        : { max: options.l1.maxEntries, maxSize: options.l1.maxBytes },
    )
    this.#recovery = new RecoveryQueue(options.recoveryQueue.maxSize)
    this.#default = this.#familyContext(DEFAULT_FAMILY, undefined, undefined, undefined, false, undefined, true)
    this.#guard =
      options.l2 === undefined
        ? undefined
        : new L2Guard(
            options.l2,
            { timeout: options.l2Timeout, ...options.breaker },
            { onError: (op, error) => this.#onL2Error(op, error), onStateChange: (state) => this.#onBreaker(state) },
          )
    this.#bus = options.bus
    this.#busHealthy = options.bus === undefined ? true : options.bus.healthy
    this.#everHealthy = this.#busHealthy
    this.#fresh = this.#freshTest()
    if (options.bus !== undefined) {
      const bus = options.bus
      this.#publisher = new Publisher(bus, (error) => this.#background('bus publish', error), options.logger)
      bus.onMessage((message) => this.#onBusMessage(message))
      bus.onHealthChange((healthy) => this.#onBusHealth(healthy))
      bus.start().catch((error: unknown) => this.#background('bus start', error))
    }
    const paths = this.#buildHitPaths()
    this.getOrSet = paths.getOrSet as TieredCache['getOrSet']
    this.get = paths.get as TieredCache['get']
    this.peek = paths.peek as TieredCache['peek']
    if (options.l2 !== undefined && options.bus === undefined && options.l1Ttl === undefined) {
      // Legal, and right for a single process, but with several processes an L1 copy then
      // outlives writes made elsewhere for its whole TTL.
      options.logger.warn(
        { code: 'TIERCACHE_L1_UNBOUNDED', cache: options.name },
        'tiercache: l2 without a bus and without l1.ttl: other processes\' writes reach this L1 only when entries expire',
      )
    }
  }

  // ---------------------------------------------------------------- hit paths

  #freshTest(): (entry: L1Entry, now: number) => boolean {
    if (this.#busHealthy) return (entry, now) => entry.freshUntil > now
    const cap = this.#o.unhealthyL1Cap
    return (entry, now) => entry.freshUntil > now && now - entry.filledAt < cap
  }

  #installHitPaths(): void {
    this.#fresh = this.#freshTest()
    const paths = this.#buildHitPaths()
    this.getOrSet = paths.getOrSet as TieredCache['getOrSet']
    this.get = paths.get as TieredCache['get']
    this.peek = paths.peek as TieredCache['peek']
  }

  // Each variant is a separate closure so that the one in use tests nothing but freshness.
  #buildHitPaths(): { getOrSet: HitGetOrSet; get: HitGet; peek: HitPeek } {
    if (this.#closed) {
      return {
        getOrSet: () => Promise.reject(new CacheClosedError()),
        get: () => Promise.reject(new CacheClosedError()),
        peek: () => {
          throw new CacheClosedError()
        },
      }
    }
    const lru = this.#l1
    const clock = this.#o.clock
    const counters = this.#default.counters
    const fc = this.#default
    const miss = (key: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined, entry: L1Entry | undefined) =>
      this.#load(fc, key, key, undefined, loader, options, entry)
    const read = (key: string, entry: L1Entry | undefined) => this.#read(fc, key, key, undefined, entry)
    const generic = this.#o.l1.immutability === 'clone' || this.#o.stats !== noopStatsSink
    if (generic) {
      const fresh = this.#fresh
      const sink = this.#o.stats
      const out = this.#o.l1.immutability === 'clone' ? (v: unknown) => structuredClone(v) : (v: unknown) => v
      const hit = (entry: L1Entry): unknown => {
        counters.l1Hits++
        sink.increment('l1Hits', DEFAULT_FAMILY)
        return out(entry.value)
      }
      return {
        getOrSet: (key, loader, options) => {
          const entry = lru.get(key)
          if (entry !== undefined && fresh(entry, clock.now())) return Promise.resolve(hit(entry))
          return miss(key, loader, options, entry)
        },
        get: (key) => {
          const entry = lru.get(key)
          if (entry !== undefined && fresh(entry, clock.now())) return Promise.resolve(hit(entry))
          return read(key, entry)
        },
        peek: (key) => {
          const entry = lru.get(key)
          return entry !== undefined && fresh(entry, clock.now()) ? hit(entry) : undefined
        },
      }
    }
    if (this.#busHealthy) {
      return {
        getOrSet: (key, loader, options) => {
          const entry = lru.get(key)
          if (entry !== undefined && entry.freshUntil > clock.now()) {
            counters.l1Hits++
            return entry.promise
          }
          return miss(key, loader, options, entry)
        },
        get: (key) => {
          const entry = lru.get(key)
          if (entry !== undefined && entry.freshUntil > clock.now()) {
            counters.l1Hits++
            return entry.promise
          }
          return read(key, entry)
        },
        peek: (key) => {
          const entry = lru.get(key)
          if (entry !== undefined && entry.freshUntil > clock.now()) {
            counters.l1Hits++
            return entry.value
          }
          return undefined
        },
      }
    }
    const cap = this.#o.unhealthyL1Cap
    return {
      getOrSet: (key, loader, options) => {
        const entry = lru.get(key)
        const now = clock.now()
        if (entry !== undefined && entry.freshUntil > now && now - entry.filledAt < cap) {
          counters.l1Hits++
          return entry.promise
        }
        return miss(key, loader, options, entry)
      },
      get: (key) => {
        const entry = lru.get(key)
        const now = clock.now()
        if (entry !== undefined && entry.freshUntil > now && now - entry.filledAt < cap) {
          counters.l1Hits++
          return entry.promise
        }
        return read(key, entry)
      },
      peek: (key) => {
        const entry = lru.get(key)
        const now = clock.now()
        if (entry !== undefined && entry.freshUntil > now && now - entry.filledAt < cap) {
          counters.l1Hits++
          return entry.value
        }
        return undefined
      },
    }
  }

  /** Fresh L1 value for a family key (families pay one string build; the default family not). */
  #hit(fc: FamilyContext, l1Key: string): L1Entry | undefined {
    const entry = this.#l1.get(l1Key)
    if (entry === undefined || !this.#fresh(entry, this.#o.clock.now())) return undefined
    fc.counters.l1Hits++
    if (this.#o.stats !== noopStatsSink) this.#o.stats.increment('l1Hits', fc.id)
    return entry
  }

  #out(value: unknown): unknown {
    return this.#o.l1.immutability === 'clone' ? structuredClone(value) : value
  }

  // ---------------------------------------------------------------- miss path

  #count(fc: FamilyContext, name: CounterName, by = 1): void {
    fc.counters[name] += by
    this.#o.stats.increment(name, fc.id, by)
  }

  #settings(fc: FamilyContext, options: GetOrSetOptions | undefined): EntrySettings {
    return options === undefined ? fc.settings : resolveEntryOptions(fc.settings, options)
  }

  #load(
    fc: FamilyContext,
    id: string,
    l1Key: string,
    params: unknown,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    entry: L1Entry | undefined,
  ): Promise<unknown> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    if (typeof loader !== 'function') return Promise.reject(new InvalidOptionsError('loader', `expected a function (got ${typeof loader})`))
    let settings: EntrySettings
    try {
      settings = this.#settings(fc, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const joined = this.#loads.get(l1Key)?.promise
    if (joined !== undefined) return joined
    const stale = this.#staleOf(l1Key, entry)
    const flight: Flight = { promise: undefined, void: false, voidedAtStart: false, background: false }
    this.#loads.set(l1Key, flight)
    const release = () => {
      if (this.#loads.get(l1Key) === flight) this.#loads.delete(l1Key)
      flight.promise = undefined
    }
    // `finally` runs in a later microtask: the flight is still in the map when this assigns.
    const promise = this.#runLoad(flight, release, fc, id, l1Key, params, loader, settings, stale).finally(() => {
      if (!flight.background) release()
    })
    flight.promise = promise
    return promise
  }

  #staleOf(l1Key: string, entry: L1Entry | undefined): Stale | undefined {
    if (entry === undefined) return undefined
    if (entry.graceUntil > this.#o.clock.now()) return entry
    this.#l1.delete(l1Key)
    return undefined
  }

  async #runLoad(
    flight: Flight,
    release: () => void,
    fc: FamilyContext,
    id: string,
    l1Key: string,
    params: unknown,
    loader: Loader<unknown>,
    settings: EntrySettings,
    l1Stale: Stale | undefined,
  ): Promise<unknown> {
    let stale = l1Stale
    let storeKey: StoreKey | undefined
    let token: string | undefined
    const guard = this.#guard
    if (guard !== undefined && !guard.isOpen) {
      storeKey = this.#storeKeySync(fc, id, params) ?? (await this.#storeKey(fc, id, params))
      if (storeKey !== undefined) {
        const found = await this.#readL2(fc, storeKey)
        if (found === null) storeKey = undefined
        else if (found !== undefined) {
          if (found.fresh) return this.#fromL2(flight, fc, l1Key, found.entry, found.value, settings)
          stale ??= { value: found.value }
        }
      }
      if (storeKey !== undefined) {
        const grant = await this.#lease(storeKey, l1Key)
        if (grant === undefined) storeKey = undefined
        else if (grant !== false) token = grant
        else if (settings.stampedeProtection) {
          this.#count(fc, 'leaseWaits')
          const waited = await this.#waitForFill(fc, l1Key, storeKey)
          if (waited !== undefined && 'token' in waited) token = waited.token
          else if (waited !== undefined) return this.#fromL2(flight, fc, l1Key, waited.entry, waited.value, settings)
          else {
            const again = await this.#lease(storeKey, l1Key)
            if (typeof again === 'string') token = again
            else storeKey = undefined
          }
        } else storeKey = undefined
      }
    }
    this.#count(fc, 'misses')
    const outcome = await this.#callLoader(fc, id, loader, settings, stale, flight, release, (value) =>
      this.#landLoaded(flight, fc, l1Key, storeKey, token, value, settings),
    )
    switch (outcome.kind) {
      case 'value':
        return this.#landLoaded(flight, fc, l1Key, storeKey, token, outcome.value, settings)
      case 'error':
        this.#count(fc, 'loaderErrors')
        this.#events.emit('loader-error', { key: id, family: fc.id, error: outcome.error })
        this.#o.logger.warn({ err: outcome.error, key: id, family: fc.id }, 'tiercache loader failed')
        if (stale !== undefined) return this.#serveStale(fc, id, stale, 'loader-error')
        throw new LoaderError(id, outcome.error)
      case 'soft-timeout':
        flight.background = true
        return this.#serveStale(fc, id, stale as Stale, 'soft-timeout')
      case 'hard-timeout':
        this.#count(fc, 'loaderTimeouts')
        if (stale !== undefined) return this.#serveStale(fc, id, stale, 'hard-timeout')
        throw new LoaderTimeoutError(id, settings.hardTimeout as number)
    }
  }

  #serveStale(fc: FamilyContext, id: string, stale: Stale, reason: 'loader-error' | 'soft-timeout' | 'hard-timeout'): unknown {
    this.#count(fc, 'staleServed')
    this.#events.emit('stale-served', { key: id, family: fc.id, reason })
    return this.#out(stale.value)
  }

  /**
   * Runs the loader under the soft and hard timeouts. A value arriving after a timeout answered
   * still lands (through `late`), so the next reader finds it.
   */
  #callLoader(
    fc: FamilyContext,
    id: string,
    loader: Loader<unknown>,
    settings: EntrySettings,
    stale: Stale | undefined,
    flight: Flight,
    release: () => void,
    late: (value: unknown) => void,
  ): Promise<Outcome> {
    this.#count(fc, 'loaderCalls')
    const started = performance.now()
    const controller = new AbortController()
    const context: LoaderContext<unknown> = { key: id, staleValue: stale?.value, signal: controller.signal }
    return new Promise<Outcome>((resolve) => {
      let settled = false
      let soft: ReturnType<typeof setTimeout> | undefined
      let hard: ReturnType<typeof setTimeout> | undefined
      const settle = (outcome: Outcome): boolean => {
        if (settled) return false
        settled = true
        if (soft !== undefined) clearTimeout(soft)
        if (hard !== undefined) clearTimeout(hard)
        resolve(outcome)
        return true
      }
      let result: Promise<unknown>
      try {
        result = Promise.resolve(loader(context))
      } catch (error) {
        result = Promise.reject(error)
      }
      result.then(
        (value) => {
          const ms = performance.now() - started
          this.#loadLatency.record(ms)
          this.#o.stats.timing('load', fc.id, ms)
          if (!settle({ kind: 'value', value })) {
            try {
              late(value)
            } catch (error) {
              this.#background('late fill', error)
            }
            release()
          }
        },
        (error: unknown) => {
          if (!settle({ kind: 'error', error })) {
            this.#count(fc, 'loaderErrors')
            this.#o.logger.warn({ err: error, key: id, family: fc.id }, 'tiercache background load failed')
            release()
          }
        },
      )
      if (stale !== undefined && settings.timeout !== undefined) {
        soft = setTimeout(() => settle({ kind: 'soft-timeout' }), settings.timeout)
      }
      if (settings.hardTimeout !== undefined) {
        const ms = settings.hardTimeout
        hard = setTimeout(() => {
          if (settle({ kind: 'hard-timeout' })) controller.abort(new LoaderTimeoutError(id, ms))
        }, ms)
      }
      // A soft timeout that already answered: the hard one still bounds the background load.
      if (stale !== undefined && settings.timeout !== undefined && settings.hardTimeout !== undefined) {
        const ms = settings.hardTimeout
        const bound = setTimeout(() => {
          if (flight.background) {
            controller.abort(new LoaderTimeoutError(id, ms))
            release()
          }
        }, ms)
        bound.unref?.()
        result.then(
          () => clearTimeout(bound),
          () => clearTimeout(bound),
        )
      }
    })
  }

  /** Lands a loaded value in L1 and (in the background) L2, unless the flight was voided. */
  #landLoaded(
    flight: Flight,
    fc: FamilyContext,
    l1Key: string,
    storeKey: StoreKey | undefined,
    token: string | undefined,
    loaded: unknown,
    settings: EntrySettings,
  ): unknown {
    const value = this.#o.l1.immutability === 'freeze' ? deepFreeze(loaded) : loaded
    if (value === undefined || (value === null && !settings.negativeCaching) || this.#closed) return value
    if (flight.void && !(flight.voidedAtStart && token !== undefined)) return value
    const now = this.#o.clock.now()
    const expiresAt = now + Math.max(1, Math.round(settings.ttl * (1 - settings.jitter * Math.random())))
    const graceUntil = expiresAt + settings.grace
    if (!flight.void) this.#fillL1(l1Key, value, now, expiresAt, graceUntil, settings)
    const guard = this.#guard
    if (guard !== undefined && storeKey !== undefined && !guard.isOpen) {
      const entry: RemoteEntry = { value, expiresAt, graceUntil }
      if (token === undefined) {
        guard.run('set', (store) => store.set(storeKey, entry)).catch(() => {
          // Counted and logged by the guard; the next reader loads again.
        })
      } else {
        // Landed or refused, the lease is no longer ours. A fill that failed may not have run:
        // the lease stays remembered, so the next miss here fills with it instead of waiting.
        guard.run('fillWithLease', (store) => store.fillWithLease(storeKey, token, entry)).then(
          () => this.#forgetLease(storeKey, token),
          () => {},
        )
      }
    }
    return value
  }

  #fromL2(flight: Flight, fc: FamilyContext, l1Key: string, entry: RemoteEntry, value: unknown, settings: EntrySettings): unknown {
    this.#count(fc, 'l2Hits')
    const stored = this.#o.l1.immutability === 'freeze' ? deepFreeze(value) : value
    if (!flight.void && !this.#closed) this.#fillL1(l1Key, stored, this.#o.clock.now(), entry.expiresAt, entry.graceUntil, settings)
    return this.#out(stored)
  }

  #fillL1(l1Key: string, value: unknown, now: number, expiresAt: number, graceUntil: number, settings: EntrySettings): void {
    const stored = this.#o.l1.immutability === 'clone' ? structuredClone(value) : value
    const freshUntil = settings.l1Ttl === undefined ? expiresAt : Math.min(expiresAt, now + settings.l1Ttl)
    const entry: L1Entry = {
      value: stored,
      promise: Promise.resolve(stored),
      freshUntil,
      graceUntil: Math.max(graceUntil, freshUntil),
      filledAt: now,
    }
    if (this.#trackBytes) this.#l1.set(l1Key, entry, { size: Math.max(1, this.#o.l1.sizeOf(stored)) })
    else this.#l1.set(l1Key, entry)
  }

  /**
   * L2 read for a key. `null`: L2 failed (skip it for this call). `undefined`: miss. Schema
   * failures count as misses and are deleted.
   */
  // Not async: on the L2-hit path every await is one more promise and microtask per read.
  #readL2(fc: FamilyContext, storeKey: StoreKey): Promise<L2Read | undefined | null> {
    return (this.#guard as L2Guard).run('get', (store) => store.get(storeKey)).then(
      (entry) => this.#l2Answered(fc, storeKey, entry),
      () => {
        this.#count(fc, 'l2Errors')
        return null
      },
    )
  }

  #l2Answered(fc: FamilyContext, storeKey: StoreKey, entry: RemoteEntry | undefined): L2Read | undefined {
    // A store that answers again may take the deletes it missed (the breaker may never have opened).
    if (!this.#recovery.isEmpty) void this.#replay()
    if (entry === undefined) return undefined
    const value = this.#validate(fc, storeKey, entry.value)
    if (value === INVALID) return undefined
    return { entry, value, fresh: entry.expiresAt > this.#o.clock.now() }
  }

  #validate(fc: FamilyContext, storeKey: StoreKey, value: unknown): unknown {
    if (fc.schema === undefined) return value
    const result = fc.schema.safeParse(value)
    if (result.success) return result.data
    this.#count(fc, 'schemaFailures')
    this.#o.logger.warn({ family: fc.id, key: storeKey.id, err: result.error }, 'tiercache L2 value failed the family schema')
    this.#guard?.run('delete', (store) => store.delete([storeKey])).catch(() => this.#recovery.add([storeKey]))
    return INVALID
  }

  /**
   * The lease token, `false` when someone else holds it, `undefined` when L2 failed.
   *
   * A lease this process already holds (its fill was dropped by the open breaker or failed, or
   * its load failed) is answered from memory: the store would refuse it, and this process would
   * wait up to `lease.waitTimeout` for a fill that only it can make. A request that timed out
   * in the guard may still have run in the store; when the store answers late, its token is
   * remembered the same way, and the value this process loaded meanwhile (its L1 copy) is filled
   * with it, so other processes waiting on that lease get the value instead of their timeout.
   */
  async #lease(storeKey: StoreKey, l1Key: string): Promise<string | false | undefined> {
    const id = leaseId(storeKey)
    const clock = this.#o.clock
    const own = this.#ownLeases.get(id)
    if (own !== undefined) {
      if (own.until > clock.now()) return own.token
      this.#ownLeases.delete(id)
    }
    const requestedAt = clock.now()
    const ttl = this.#o.lease.ttl
    let request: Promise<LeaseGrant> | undefined
    try {
      const grant = await (this.#guard as L2Guard).run('acquireLease', (store) => (request = store.acquireLease(storeKey, ttl)))
      if (!grant.granted) return false
      this.#holdLease(id, storeKey, l1Key, grant.token, requestedAt + ttl)
      return grant.token
    } catch {
      request?.then(
        (grant) => {
          if (!grant.granted || this.#closed) return
          this.#holdLease(id, storeKey, l1Key, grant.token, requestedAt + ttl)
          this.#fillLate(l1Key, storeKey, grant.token)
        },
        () => {},
      )
      return undefined
    }
  }

  #holdLease(id: string, storeKey: StoreKey, l1Key: string, token: string, until: number): void {
    if (this.#ownLeases.size >= this.#ownLeaseSweepAt) {
      const now = this.#o.clock.now()
      for (const [key, lease] of this.#ownLeases) if (lease.until <= now) this.#ownLeases.delete(key)
      this.#ownLeaseSweepAt = Math.max(OWN_LEASE_SWEEP, this.#ownLeases.size * 2)
    }
    this.#ownLeases.set(id, { token, storeKey, l1Key, until })
  }

  /** Fills L2 from the fresh L1 copy with a lease granted after its request timed out. */
  #fillLate(l1Key: string, storeKey: StoreKey, token: string): void {
    const guard = this.#guard as L2Guard
    const entry = this.#l1.peek(l1Key)
    // No copy (not loaded yet, invalidated, evicted): the lease stays remembered for the next miss.
    if (entry === undefined || entry.freshUntil <= this.#o.clock.now() || guard.isOpen) return
    const remote: RemoteEntry = { value: entry.value, expiresAt: entry.freshUntil, graceUntil: entry.graceUntil }
    guard.run('fillWithLease', (store) => store.fillWithLease(storeKey, token, remote)).then(
      () => this.#forgetLease(storeKey, token),
      () => {},
    )
  }

  #forgetLease(storeKey: StoreKey, token: string): void {
    const id = leaseId(storeKey)
    if (this.#ownLeases.get(id)?.token === token) this.#ownLeases.delete(id)
  }

  /**
   * Polls L2 for the lease holder's fill; a bus message about the key wakes it early. A poll that
   * misses asks for the lease again: when the holder died its lease expires, and exactly one
   * waiter takes it over and loads while the others keep waiting for that one's fill.
   * Resolves the fill, the lease taken over, or `undefined` (timeout, L2 failure).
   */
  async #waitForFill(
    fc: FamilyContext,
    l1Key: string,
    storeKey: StoreKey,
  ): Promise<{ entry: RemoteEntry; value: unknown } | { token: string } | undefined> {
    const { waitTimeout, pollInterval } = this.#o.lease
    // Bounded by count (deterministic under a fake clock) and by real time (slow L2 polls).
    const polls = Math.max(1, Math.ceil(waitTimeout / pollInterval))
    const deadline = performance.now() + waitTimeout
    for (let i = 0; i < polls && !this.#closed && (i === 0 || performance.now() < deadline); i++) {
      await this.#sleepOrWake(l1Key, pollInterval)
      const found = await this.#readL2(fc, storeKey)
      if (found === null) return undefined
      if (found !== undefined && found.fresh) return found
      const grant = await this.#lease(storeKey, l1Key)
      if (grant === undefined) return undefined
      if (grant === false) continue
      // The holder may have filled (and released its lease) between the read and the grant.
      const late = await this.#readL2(fc, storeKey)
      if (late !== undefined && late !== null && late.fresh) return late
      return { token: grant }
    }
    return undefined
  }

  #sleepOrWake(l1Key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#waiters.get(l1Key)
      if (set === undefined) this.#waiters.set(l1Key, (set = new Set()))
      const waiters = set
      const wake = () => {
        clearTimeout(timer)
        waiters.delete(wake)
        if (waiters.size === 0 && this.#waiters.get(l1Key) === waiters) this.#waiters.delete(l1Key)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      waiters.add(wake)
    })
  }

  #read(fc: FamilyContext, id: string, l1Key: string, params: unknown, entry: L1Entry | undefined): Promise<unknown> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    const loading = (this.#loads.get(l1Key) ?? this.#reads.get(l1Key))?.promise
    if (loading !== undefined) return loading
    if (entry !== undefined && entry.graceUntil <= this.#o.clock.now()) this.#l1.delete(l1Key)
    if (this.#guard === undefined || this.#guard.isOpen) {
      this.#count(fc, 'misses')
      return Promise.resolve(undefined)
    }
    const flight: Flight = { promise: undefined, void: false, voidedAtStart: false, background: false }
    this.#reads.set(l1Key, flight)
    // The generations are in memory on all but the first reads: one guarded call, one `then`.
    const storeKey = this.#storeKeySync(fc, id, params)
    const found =
      storeKey === undefined
        ? this.#storeKey(fc, id, params).then((key) => (key === undefined ? undefined : this.#readL2(fc, key)))
        : this.#readL2(fc, storeKey)
    const promise = found.then(
      (read) => {
        try {
          return this.#afterRead(flight, fc, l1Key, read)
        } finally {
          if (this.#reads.get(l1Key) === flight) this.#reads.delete(l1Key)
          flight.promise = undefined
        }
      },
      (error: unknown) => {
        if (this.#reads.get(l1Key) === flight) this.#reads.delete(l1Key)
        flight.promise = undefined
        throw error
      },
    )
    flight.promise = promise
    return promise
  }

  #afterRead(flight: Flight, fc: FamilyContext, l1Key: string, found: L2Read | undefined | null): unknown {
    if (found === undefined || found === null || !found.fresh) {
      this.#count(fc, 'misses')
      return undefined
    }
    return this.#fromL2(flight, fc, l1Key, found.entry, found.value, fc.settings)
  }

  // ---------------------------------------------------------------- batch reads

  async #getMany(fc: FamilyContext, ids: readonly string[], params: readonly unknown[] | undefined): Promise<unknown[]> {
    if (this.#closed) throw new CacheClosedError()
    const results = new Array<unknown>(ids.length)
    if (!fc.isDefault && fc.generational) {
      const ok = await this.#ensureGenerations(this.#generationNames(fc, params ?? []))
      if (!ok) {
        this.#count(fc, 'misses', ids.length)
        return results
      }
    }
    const keys = ids.map((id, i) => this.#l1KeyOf(fc, id, params?.[i]) as string)
    const missing: number[] = []
    for (let i = 0; i < ids.length; i++) {
      const entry = this.#hit(fc, keys[i] as string)
      if (entry === undefined) missing.push(i)
      else results[i] = this.#out(entry.value)
    }
    const guard = this.#guard
    if (missing.length === 0) return results
    if (guard === undefined || guard.isOpen || !(await this.#ensureGenerations(['']))) {
      this.#count(fc, 'misses', missing.length)
      return results
    }
    const storeKeys = missing.map((i) => this.#storeKeySync(fc, ids[i] as string, params?.[i]) as StoreKey)
    const before = this.#invalidations
    let entries: (RemoteEntry | undefined)[]
    try {
      entries = await guard.run('getMany', (store) => store.getMany(storeKeys))
    } catch {
      this.#count(fc, 'l2Errors')
      entries = []
    }
    const now = this.#o.clock.now()
    let misses = 0
    missing.forEach((index, j) => {
      const entry = entries[j]
      const value = entry === undefined ? INVALID : this.#validate(fc, storeKeys[j] as StoreKey, entry.value)
      if (entry === undefined || value === INVALID || entry.expiresAt <= now) {
        misses++
        return
      }
      this.#count(fc, 'l2Hits')
      const stored = this.#o.l1.immutability === 'freeze' ? deepFreeze(value) : value
      if (this.#invalidations === before) this.#fillL1(keys[index] as string, stored, now, entry.expiresAt, entry.graceUntil, fc.settings)
      results[index] = this.#out(stored)
    })
    if (misses > 0) this.#count(fc, 'misses', misses)
    return results
  }

  // ---------------------------------------------------------------- write path

  #track<T>(write: Promise<T>): Promise<T> {
    this.#writes.add(write)
    const done = () => this.#writes.delete(write)
    write.then(done, done)
    return write
  }

  #set(fc: FamilyContext, items: readonly { id: string; params: unknown; value: unknown; options?: SetOptions }[]): Promise<void> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    return this.#track(this.#runSet(fc, items))
  }

  #delete(fc: FamilyContext, items: readonly { id: string; params: unknown }[]): Promise<void> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    return this.#track(this.#runDelete(fc, items))
  }

  async #runSet(fc: FamilyContext, items: readonly { id: string; params: unknown; value: unknown; options?: SetOptions }[]): Promise<void> {
    // Every entry's options are checked before anything changes: a bad one later in a batch must
    // not leave the earlier ones in L1 but never in L2 nor announced on the bus.
    const resolved = items.map((item) => (item.options === undefined ? fc.settings : resolveSetOptions(fc.settings, item.options)))
    await this.#writeGenerations(fc, items)
    const now = this.#o.clock.now()
    const l1Keys: string[] = []
    const remote: { key: StoreKey; entry: RemoteEntry }[] = []
    let unkeyed = false
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as (typeof items)[number]
      const settings = resolved[i] as EntrySettings
      const value = this.#o.l1.immutability === 'freeze' ? deepFreeze(item.value) : item.value
      const expiresAt = now + Math.max(1, Math.round(settings.ttl * (1 - settings.jitter * Math.random())))
      const graceUntil = expiresAt + settings.grace
      const l1Key = this.#l1KeyOf(fc, item.id, item.params)
      if (l1Key === undefined) {
        unkeyed = true
        continue
      }
      this.#invalidateKey(l1Key)
      this.#fillL1(l1Key, value, now, expiresAt, graceUntil, settings)
      l1Keys.push(l1Key)
      const storeKey = this.#guard === undefined ? undefined : this.#storeKeySync(fc, item.id, item.params)
      if (storeKey === undefined) unkeyed ||= this.#guard !== undefined
      else remote.push({ key: storeKey, entry: { value, expiresAt, graceUntil } })
    }
    await this.#writeRemote('setMany', remote, (store) =>
      remote.length === 1 ? store.set((remote[0] as (typeof remote)[0]).key, (remote[0] as (typeof remote)[0]).entry) : store.setMany(remote),
    )
    // Without the generations the key in L2 is unknown: only a namespace bump reaches it.
    if (unkeyed) this.#recovery.invalidateAll()
    if (l1Keys.length > 0) await this.#publishDelete(l1Keys)
  }

  async #runDelete(fc: FamilyContext, items: readonly { id: string; params: unknown }[]): Promise<void> {
    await this.#writeGenerations(fc, items)
    const l1Keys: string[] = []
    const remote: { key: StoreKey; entry?: undefined }[] = []
    let unkeyed = false
    for (const item of items) {
      const l1Key = this.#l1KeyOf(fc, item.id, item.params)
      if (l1Key === undefined) {
        unkeyed = true
        continue
      }
      this.#invalidateKey(l1Key)
      l1Keys.push(l1Key)
      const storeKey = this.#guard === undefined ? undefined : this.#storeKeySync(fc, item.id, item.params)
      if (storeKey === undefined) unkeyed ||= this.#guard !== undefined
      else remote.push({ key: storeKey })
    }
    const keys = remote.map((r) => r.key)
    await this.#writeRemote('delete', remote, (store) => store.delete(keys))
    if (unkeyed) this.#recovery.invalidateAll()
    if (l1Keys.length > 0) await this.#publishDelete(l1Keys)
  }

  #writeGenerations(fc: FamilyContext, items: readonly { params: unknown }[]): Promise<boolean> {
    const names = fc.generational ? this.#generationNames(fc, items.map((i) => i.params)) : []
    if (this.#guard !== undefined) names.push('')
    return names.length === 0 ? Promise.resolve(true) : this.#ensureGenerations(names)
  }

  /** An L2 write or delete; on failure the keys' L2 copies are wrong, so they go to recovery. */
  async #writeRemote(operation: string, items: readonly { key: StoreKey }[], action: (store: RemoteStore) => Promise<void>): Promise<void> {
    const guard = this.#guard
    if (guard === undefined || items.length === 0) return
    const keys = items.map((i) => i.key)
    if (guard.isOpen) {
      this.#recovery.add(keys)
      return
    }
    try {
      await guard.run(operation, action)
      if (!this.#recovery.isEmpty) void this.#replay()
    } catch {
      this.#recovery.add(keys)
    }
  }

  #publishDelete(l1Keys: readonly string[]): Promise<void> {
    return this.#publisher === undefined ? Promise.resolve() : this.#publisher.deleteKeys(l1Keys)
  }

  /** Voids in-flight loads of the key, wakes lease waiters, drops the L1 copy. */
  #invalidateKey(l1Key: string): void {
    this.#invalidations++
    this.#l1.delete(l1Key)
    const load = this.#loads.get(l1Key)
    if (load !== undefined) {
      load.void = true
      this.#loads.delete(l1Key)
    }
    const read = this.#reads.get(l1Key)
    if (read !== undefined) {
      read.void = true
      this.#reads.delete(l1Key)
    }
    const waiters = this.#waiters.get(l1Key)
    if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  #dropL1(reason: 'bus-recovered' | 'namespace-generation' | 'clear', generations: boolean): void {
    const kept = generations ? undefined : new Map(this.#generations)
    this.#clearQuietly()
    if (kept !== undefined) for (const [name, generation] of kept) this.#generations.set(name, generation)
    this.#l1Flushes++
    this.#events.emit('l1-flushed', { reason })
  }

  #clearQuietly(startup = false): void {
    this.#invalidations++
    this.#l1.clear()
    this.#generations.clear()
    for (const flights of [this.#loads, this.#reads]) {
      for (const flight of flights.values()) {
        if (!flight.void) flight.voidedAtStart = startup
        flight.void = true
      }
      flights.clear()
    }
  }

  async #replay(): Promise<void> {
    const guard = this.#guard
    if (guard === undefined || this.#replaying || this.#recovery.isEmpty || guard.isOpen || this.#closed) return
    this.#replaying = true
    const batch = this.#recovery.take()
    try {
      if (batch.bumpNamespace) {
        const value = await guard.run('bumpGeneration', (store) => store.bumpGeneration(''))
        this.#applyGeneration('', value)
        await this.#publisher?.send({ op: 'generation', name: '', value })
      } else if (batch.keys.length > 0) {
        await guard.run('delete', (store) => store.delete(batch.keys))
      }
      this.#o.logger.info({ keys: batch.keys.length, generationBumped: batch.bumpNamespace }, 'tiercache recovery queue replayed')
      this.#events.emit('recovery-replayed', { keys: batch.keys.length, generationBumped: batch.bumpNamespace })
    } catch {
      this.#recovery.restore(batch)
    } finally {
      this.#replaying = false
    }
  }

  // ---------------------------------------------------------------- generations

  #generation(name: string): number | undefined {
    if (this.#guard === undefined) return this.#generations.get(name)?.value ?? 0
    const known = this.#generations.get(name)
    if (known === undefined) return undefined
    // While capped, a generation read long ago may have moved without us hearing of it.
    if (!this.#busHealthy && this.#o.clock.now() - known.readAt >= this.#o.unhealthyL1Cap) return undefined
    return known.value
  }

  #applyGeneration(name: string, value: number): void {
    const known = this.#generations.get(name)
    if (known !== undefined && known.value > value) return
    this.#generations.set(name, { value, readAt: this.#o.clock.now() })
    // The default family's L1 keys carry no namespace generation: drop them all instead.
    if (name === '' && known !== undefined && known.value !== value) this.#dropL1('namespace-generation', false)
  }

  #generationNames(fc: FamilyContext, params: readonly unknown[]): string[] {
    const names = new Set<string>()
    if (fc.generational) names.add(fc.id)
    if (fc.group !== undefined) for (const p of params) names.add(`${fc.id}:${fc.group(p as never)}`)
    return [...names]
  }

  /** Makes sure the named generations are in memory; false when L2 cannot tell. */
  #ensureGenerations(names: readonly string[]): Promise<boolean> {
    const missing = names.filter((name) => this.#generation(name) === undefined)
    if (missing.length === 0) return Promise.resolve(true)
    const guard = this.#guard
    if (guard === undefined || guard.isOpen) return Promise.resolve(false)
    const id = missing.join(SEP)
    let reading = this.#generationReads.get(id)
    if (reading === undefined) {
      reading = guard
        .run('getGenerations', (store) => store.getGenerations(missing))
        .then(
          (values) => {
            missing.forEach((name, i) => this.#applyGeneration(name, values[i] ?? 0))
            return true
          },
          () => false,
        )
        .finally(() => this.#generationReads.delete(id))
      this.#generationReads.set(id, reading)
    }
    return reading
  }

  #l1Tag(fc: FamilyContext, params: unknown): string | undefined {
    if (!fc.generational) return ''
    const family = this.#generation(fc.id)
    if (family === undefined) return undefined
    if (fc.group === undefined) return `${family}`
    const group = this.#generation(`${fc.id}:${fc.group(params as never)}`)
    return group === undefined ? undefined : `${family}.${group}`
  }

  #l1KeyOf(fc: FamilyContext, id: string, params: unknown): string | undefined {
    if (fc.isDefault) return id
    const tag = this.#l1Tag(fc, params)
    return tag === undefined ? undefined : `${SEP}${fc.id}${SEP}${tag}${SEP}${id}`
  }

  #storeKeySync(fc: FamilyContext, id: string, params: unknown): StoreKey | undefined {
    const namespace = this.#generation('')
    const tag = this.#l1Tag(fc, params)
    if (namespace === undefined || tag === undefined) return undefined
    const generation = namespace === 0 ? tag : tag === '' ? `n${namespace}` : `n${namespace}-${tag}`
    return { family: fc.id, generation, id }
  }

  async #storeKey(fc: FamilyContext, id: string, params: unknown): Promise<StoreKey | undefined> {
    const key = this.#storeKeySync(fc, id, params)
    if (key !== undefined) return key
    const ok = await this.#ensureGenerations(['', ...this.#generationNames(fc, [params])])
    return ok ? this.#storeKeySync(fc, id, params) : undefined
  }

  #bump(fc: FamilyContext, name: string): Promise<void> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    return this.#track(this.#runBump(fc, name))
  }

  async #runBump(fc: FamilyContext, name: string): Promise<void> {
    const guard = this.#guard
    if (guard === undefined) {
      const value = (this.#generation(name) ?? 0) + 1
      this.#applyGeneration(name, value)
      await this.#publisher?.send({ op: 'generation', name, value })
      return
    }
    try {
      if (guard.isOpen) throw new L2UnavailableError('L2 bumpGeneration skipped: circuit breaker open')
      const value = await guard.run('bumpGeneration', (store) => store.bumpGeneration(name))
      this.#applyGeneration(name, value)
      await this.#publisher?.send({ op: 'generation', name, value })
    } catch {
      // The bump did not happen in L2: fall back to what always works once L2 is back.
      this.#o.logger.warn({ family: fc.id, generation: name }, 'tiercache generation bump failed; namespace bump queued')
      this.#recovery.invalidateAll()
      this.#dropL1('clear', true)
      await this.#publisher?.send({ op: 'clear' })
    }
  }

  // ---------------------------------------------------------------- events from ports

  #onL2Error(operation: string, error: TierCacheError): void {
    this.#l2Errors++
    this.#o.logger.warn({ err: error, operation, cache: this.#o.name }, 'tiercache L2 call failed')
    this.#events.emit('l2-error', { operation, error })
  }

  #onBreaker(state: BreakerState): void {
    this.#o.logger.warn({ state, cache: this.#o.name }, `tiercache L2 circuit breaker ${state}`)
    this.#events.emit('breaker', { state })
    if (state !== 'closed') return
    void this.#replay()
    // Fills dropped while the breaker was open: other processes may be waiting on those leases.
    const now = this.#o.clock.now()
    for (const lease of [...this.#ownLeases.values()]) {
      if (lease.until > now) this.#fillLate(lease.l1Key, lease.storeKey, lease.token)
    }
  }

  #onBusMessage(message: ReceivedInvalidation): void {
    try {
      if (this.#closed || message.source === this.#bus?.instanceId) return
      let keys: readonly string[] = []
      switch (message.op) {
        case 'delete':
          keys = message.keys
          for (const key of keys) this.#invalidateKey(key)
          break
        case 'generation':
          this.#applyGeneration(message.name, message.value)
          break
        case 'clear':
          this.#dropL1('clear', true)
          break
        default:
          return
      }
      this.#busMessagesApplied++
      this.#events.emit('bus:applied', { source: message.source, seq: message.seq, op: message.op, keys })
    } catch (error) {
      this.#background('bus message', error)
    }
  }

  #onBusHealth(healthy: boolean): void {
    try {
      if (this.#closed || healthy === this.#busHealthy) return
      this.#busHealthy = healthy
      // Entries filled before the first subscription may have missed messages too, but that
      // first drop is start-up, not a recovery: it is not counted or announced.
      const wasEverHealthy = this.#everHealthy
      if (healthy && this.#everHealthy) this.#dropL1('bus-recovered', true)
      else if (healthy) this.#clearQuietly(true)
      this.#everHealthy ||= healthy
      this.#installHitPaths()
      if (healthy && !wasEverHealthy) this.#o.logger.info({ healthy, cache: this.#o.name }, 'tiercache bus subscribed')
      else this.#o.logger.warn({ healthy, cache: this.#o.name }, `tiercache bus ${healthy ? 'healthy: L1 flushed' : 'unhealthy: L1 capped'}`)
      this.#events.emit('bus-health', { healthy })
    } catch (error) {
      this.#background('bus health', error)
    }
  }

  #background(context: string, error: unknown): void {
    this.#o.logger.error({ err: error, context, cache: this.#o.name }, `tiercache background ${context} failed`)
    this.#events.emit('error', { error, context })
  }

  // ---------------------------------------------------------------- public verbs

  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return this.#getMany(this.#default, keys, undefined) as Promise<(T | undefined)[]>
  }

  set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    return this.#set(this.#default, [{ id: key, params: undefined, value, options }])
  }

  setMany<T>(entries: readonly { key: string; value: T; options?: SetOptions }[]): Promise<void> {
    return this.#set(
      this.#default,
      entries.map((e) => ({ id: e.key, params: undefined, value: e.value, options: e.options })),
    )
  }

  delete(key: string | readonly string[]): Promise<void> {
    const keys = typeof key === 'string' ? [key] : key
    return this.#delete(
      this.#default,
      keys.map((id) => ({ id, params: undefined })),
    )
  }

  clear(): Promise<void> {
    if (this.#closed) return Promise.reject(new CacheClosedError())
    return this.#track(this.#runClear())
  }

  async #runClear(): Promise<void> {
    this.#dropL1('clear', true)
    const guard = this.#guard
    if (guard !== undefined) {
      try {
        if (guard.isOpen) throw new L2UnavailableError('L2 clear skipped: circuit breaker open')
        await guard.run('clear', (store) => store.clear())
      } catch {
        this.#recovery.invalidateAll()
      }
    }
    await this.#publisher?.send({ op: 'clear' })
  }

  stats(): CacheStats {
    const families: Record<string, Readonly<FamilyCounters>> = {}
    for (const [id, fc] of this.#families) families[id] = Object.freeze({ ...fc.counters })
    const total = sumCounters([...this.#families.values()].map((fc) => fc.counters))
    const lookups = total.l1Hits + total.l2Hits + total.misses
    return Object.freeze({
      total: Object.freeze({ ...total, l2Errors: this.#l2Errors, hitRate: lookups === 0 ? 0 : (total.l1Hits + total.l2Hits) / lookups }),
      families: Object.freeze(families),
      busMessagesApplied: this.#busMessagesApplied,
      l1Flushes: this.#l1Flushes,
      breaker: Object.freeze({ state: this.#guard?.state ?? 'closed', transitions: this.#guard?.transitions ?? 0 }),
      recoveryQueueDepth: this.#recovery.depth,
      busHealthy: this.#busHealthy,
      l1: Object.freeze({ entries: this.#l1.size, bytes: this.#trackBytes ? this.#l1.calculatedSize : 0 }),
      latency: Object.freeze({ load: this.#loadLatency.snapshot(), l2: this.#guard?.latency.snapshot() ?? { count: 0, p50: 0, p99: 0 } }),
    })
  }

  on<E extends CacheEventName>(event: E, listener: CacheEventListener<E>): () => void {
    return this.#events.on(event, listener)
  }

  async deleteByPattern(glob: string): Promise<number> {
    if (this.#closed) throw new CacheClosedError()
    const guard = this.#guard
    if (guard === undefined || guard.store.deleteByPattern === undefined) return 0
    return guard.run('deleteByPattern', (store) => (store.deleteByPattern as (g: string) => Promise<number>).call(store, glob))
  }

  async l2Info(): Promise<StoreInfo | undefined> {
    if (this.#closed) throw new CacheClosedError()
    const guard = this.#guard
    if (guard === undefined || guard.store.info === undefined) return undefined
    return guard.run('info', (store) => (store.info as () => Promise<StoreInfo>).call(store))
  }

  async ready(options?: ReadyOptions): Promise<ReadyState> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidOptionsError('ready', `expected an options object like { timeout: '5s' } (got ${options === null ? 'null' : typeof options})`)
    }
    const timeoutMs = options?.timeout === undefined ? READY_TIMEOUT_MS : parseDuration(options.timeout, 'ready.timeout')
    const store = this.#o.l2
    const bus = this.#bus
    const [l2, busReady] = await Promise.all([
      store === undefined ? false : store.ready === undefined ? true : store.ready(timeoutMs).catch(() => false),
      bus === undefined ? false : bus.ready === undefined ? bus.healthy : bus.ready(timeoutMs).catch(() => false),
    ])
    // The engine applies a health change synchronously when the bus reports it, so a healthy bus
    // means the start-up L1 drop is behind us.
    return { l2: l2 && !this.#closed, bus: busReady && this.#busHealthy && !this.#closed }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#installHitPaths()
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake()
    await Promise.allSettled([...this.#writes])
    await this.#publisher?.flush()
    this.#guard?.shutdown()
    const closing: Promise<void>[] = []
    if (this.#bus !== undefined) closing.push(this.#bus.close())
    if (this.#o.l2 !== undefined) closing.push(this.#o.l2.close())
    for (const result of await Promise.allSettled(closing)) {
      if (result.status === 'rejected') this.#background('close', result.reason)
    }
    this.#l1.clear()
  }

  // ---------------------------------------------------------------- families

  #familyContext(
    id: string,
    ttl: Duration | undefined,
    grace: Duration | undefined,
    schema: ValueSchema<unknown> | undefined,
    generational: boolean,
    group: ((params: never) => string) | undefined,
    isDefault = false,
  ): FamilyContext {
    const existing = this.#families.get(id)
    const base = baseSettings(this.#o)
    const settings = ttl === undefined && grace === undefined ? base : resolveEntryOptions(base, { ttl, grace }, 'family')
    const fc: FamilyContext = {
      id,
      counters: existing?.counters ?? new FamilyCounters(),
      settings,
      schema,
      generational,
      group,
      isDefault,
    }
    this.#families.set(id, fc)
    return fc
  }

  family<P, V>(definition: FamilyDefinition<P, V>): Family<P, V> {
    validateFamilyDefinition(definition)
    const id = `${definition.name}@${definition.version ?? 1}`
    if (id === DEFAULT_FAMILY) throw new InvalidOptionsError('family.name', `"${id}" is the default family's id: choose another name`)
    const gen = definition.generational
    const fc = this.#familyContext(
      id,
      definition.ttl,
      definition.grace,
      definition.schema as ValueSchema<unknown> | undefined,
      gen !== undefined && gen !== false,
      typeof gen === 'object' ? (gen.group as (params: never) => string) : undefined,
    )
    return new FamilyHandle<P, V>(this, fc, definition.key)
  }

  /** Internal entry points for family handles (same module, not exported). */
  familyOps = {
    getOrSet: (fc: FamilyContext, id: string, params: unknown, loader: Loader<unknown>, options?: GetOrSetOptions): Promise<unknown> => {
      if (this.#closed) return Promise.reject(new CacheClosedError())
      const l1Key = this.#l1KeyOf(fc, id, params)
      if (l1Key !== undefined) {
        const entry = this.#hit(fc, l1Key)
        if (entry !== undefined) return this.#o.l1.immutability === 'clone' ? Promise.resolve(this.#out(entry.value)) : entry.promise
        return this.#load(fc, id, l1Key, params, loader, options, this.#l1.get(l1Key))
      }
      return this.#ensureGenerations(['', ...this.#generationNames(fc, [params])]).then((ok) => {
        const key = ok ? this.#l1KeyOf(fc, id, params) : undefined
        if (key !== undefined) return this.familyOps.getOrSet(fc, id, params, loader, options)
        return this.#loadUncached(fc, id, loader, options)
      })
    },
    get: (fc: FamilyContext, id: string, params: unknown): Promise<unknown> => {
      if (this.#closed) return Promise.reject(new CacheClosedError())
      const l1Key = this.#l1KeyOf(fc, id, params)
      if (l1Key !== undefined) {
        const entry = this.#hit(fc, l1Key)
        if (entry !== undefined) return this.#o.l1.immutability === 'clone' ? Promise.resolve(this.#out(entry.value)) : entry.promise
        return this.#read(fc, id, l1Key, params, this.#l1.peek(l1Key))
      }
      return this.#ensureGenerations(['', ...this.#generationNames(fc, [params])]).then((ok) => {
        if (ok) return this.familyOps.get(fc, id, params)
        this.#count(fc, 'misses')
        return undefined
      })
    },
    peek: (fc: FamilyContext, id: string, params: unknown): unknown => {
      if (this.#closed) throw new CacheClosedError()
      const l1Key = this.#l1KeyOf(fc, id, params)
      const entry = l1Key === undefined ? undefined : this.#hit(fc, l1Key)
      return entry === undefined ? undefined : this.#out(entry.value)
    },
    getMany: (fc: FamilyContext, ids: readonly string[], params: readonly unknown[]) => this.#getMany(fc, ids, params),
    set: (fc: FamilyContext, items: readonly { id: string; params: unknown; value: unknown; options?: SetOptions }[]) => this.#set(fc, items),
    delete: (fc: FamilyContext, items: readonly { id: string; params: unknown }[]) => this.#delete(fc, items),
    bump: (fc: FamilyContext, name: string) => this.#bump(fc, name),
  }

  /** Generations unreadable (L2 down): answer from the loader alone, cache nothing. */
  #loadUncached(fc: FamilyContext, id: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined): Promise<unknown> {
    let settings: EntrySettings
    try {
      settings = this.#settings(fc, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const flight: Flight = { promise: Promise.resolve(), void: true, voidedAtStart: false, background: false }
    this.#count(fc, 'misses')
    return this.#callLoader(fc, id, loader, settings, undefined, flight, () => {}, () => {}).then((outcome) => {
      if (outcome.kind === 'value') return this.#o.l1.immutability === 'freeze' ? deepFreeze(outcome.value) : outcome.value
      if (outcome.kind === 'error') {
        this.#count(fc, 'loaderErrors')
        this.#events.emit('loader-error', { key: id, family: fc.id, error: outcome.error })
        throw new LoaderError(id, outcome.error)
      }
      this.#count(fc, 'loaderTimeouts')
      throw new LoaderTimeoutError(id, settings.hardTimeout as number)
    })
  }
}

const INVALID: unique symbol = Symbol('invalid')

function leaseId(key: StoreKey): string {
  return `${key.family}${SEP}${key.generation}${SEP}${key.id}`
}

class FamilyHandle<P, V> implements Family<P, V> {
  readonly id: string
  readonly #ops: TieredCacheEngine['familyOps']
  readonly #fc: FamilyContext
  readonly #key: (params: P) => string

  constructor(engine: TieredCacheEngine, fc: FamilyContext, key: (params: P) => string) {
    this.id = fc.id
    this.#ops = engine.familyOps
    this.#fc = fc
    this.#key = key
  }

  get(params: P): Promise<V | undefined> {
    return this.#ops.get(this.#fc, this.#key(params), params) as Promise<V | undefined>
  }

  peek(params: P): V | undefined {
    return this.#ops.peek(this.#fc, this.#key(params), params) as V | undefined
  }

  set(params: P, value: V, options?: SetOptions): Promise<void> {
    return this.#ops.set(this.#fc, [{ id: this.#key(params), params, value, options }])
  }

  getOrSet(params: P, loader: Loader<V>, options?: GetOrSetOptions): Promise<V> {
    return this.#ops.getOrSet(this.#fc, this.#key(params), params, loader as Loader<unknown>, options) as Promise<V>
  }

  getMany(params: readonly P[]): Promise<(V | undefined)[]> {
    return this.#ops.getMany(
      this.#fc,
      params.map((p) => this.#key(p)),
      params,
    ) as Promise<(V | undefined)[]>
  }

  setMany(entries: readonly { params: P; value: V; options?: SetOptions }[]): Promise<void> {
    return this.#ops.set(
      this.#fc,
      entries.map((e) => ({ id: this.#key(e.params), params: e.params, value: e.value, options: e.options })),
    )
  }

  delete(params: P | readonly P[]): Promise<void> {
    const list = Array.isArray(params) ? (params as readonly P[]) : [params as P]
    return this.#ops.delete(
      this.#fc,
      list.map((p) => ({ id: this.#key(p), params: p })),
    )
  }

  invalidate(): Promise<void> {
    if (!this.#fc.generational) {
      return Promise.reject(new InvalidOptionsError('family.generational', `family ${this.id} is not generational: invalidate() needs generational: true`))
    }
    return this.#ops.bump(this.#fc, this.#fc.id)
  }

  invalidateGroup(group: string): Promise<void> {
    if (this.#fc.group === undefined) {
      return Promise.reject(
        new InvalidOptionsError('family.generational', `family ${this.id} has no groups: invalidateGroup() needs generational: { group }`),
      )
    }
    return this.#ops.bump(this.#fc, `${this.#fc.id}:${group}`)
  }
}
