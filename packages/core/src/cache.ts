/**
 * The cache: wiring and the public facade (the default family's verbs, `family()`, `clear`,
 * `stats`, `ready`, `close`). Each concern lives in its own module, and a call walks down them:
 *
 * - read: `family.ts` (params → id) → `keys.ts` → `l1/local-tier.ts` (hit) → `load/get-or-set.ts`
 *   or `load/get.ts` (the miss) → `load/flights.ts` → `l2/remote-tier.ts` → `l2/stampede.ts` →
 *   `load/loader-runner.ts` → `load/land.ts` (L1; L2 under the lease);
 * - write: `write/write-path.ts` → L1, `l2/remote-tier.ts` (recovery queue), `coherence/coherence.ts`;
 * - in from the bus: `coherence/coherence.ts` → L1, flights, `l2/generations.ts`, `tags/tag-table.ts`;
 * - tags: `tags/tag-table.ts` (the versions, and whether a tagged entry stands: L1 hits, L2
 *   answers, loads landing), `tags/tag-options.ts` (the `tags` option);
 * - counts, events, logs: `telemetry.ts`; lifetime: `lifecycle.ts`.
 *
 * The default family's hit path is here, inline: one LRU lookup, one freshness test (whose cap
 * coherence sets, `Infinity` while the bus is healthy) and the entry's settled promise. Nothing
 * is swapped at run time: a caller may hold `cache.getOrSet` and it stays right.
 */
import { Coherence } from './coherence/coherence.js'
import type { Transport } from './coherence/publisher.js'
import { systemClock } from './defaults.js'
import { type Duration, parseDuration } from './duration.js'
import { CacheClosedError, InvalidOptionsError } from './errors.js'
import type { CacheEventListener, CacheEventName } from './events.js'
import {
  type BatchLoader,
  type Family,
  type FamilyContext,
  type FamilyDefinition,
  FamilyHandle,
  type FamilyOps,
  type Loader,
  type ValueSchema,
  validateFamilyDefinition,
} from './family.js'
import { DEFAULT_FAMILY, familyStoreGeneration, Keys } from './keys.js'
import { coarseClock } from './l1/coarse-clock.js'
import { hitPaths } from './l1/hit-path.js'
import { LocalTier } from './l1/local-tier.js'
import { valuePolicy } from './l1/value-policy.js'
import { Generations } from './l2/generations.js'
import { L2Guard } from './l2/guard.js'
import { RecoveryQueue } from './l2/recovery-queue.js'
import { RemoteTier } from './l2/remote-tier.js'
import { Stampede } from './l2/stampede.js'
import { Lifecycle } from './lifecycle.js'
import { Flights } from './load/flights.js'
import { Get } from './load/get.js'
import { GetOrSet } from './load/get-or-set.js'
import { GetOrSetMany } from './load/get-or-set-many.js'
import { AdaptiveTtl } from './load/adaptive-ttl.js'
import { Lander } from './load/land.js'
import { LoaderRunner } from './load/loader-runner.js'
import {
  type GetOrSetOptions,
  type ResolvedOptions,
  type SetOptions,
  type TieredCacheOptions,
  type WriteOptions,
  baseSettings,
  resolveBackground,
  splitSetOptions,
  resolveEntryOptions,
  resolveOptions,
} from './options.js'
import type { Invalidation, StoreInfo, StoreInfoOptions } from './ports.js'
import type { CacheStats } from './stats.js'
import { checkTags, type FamilyTags, type TagOptions } from './tags/tag-options.js'
import { TagTable } from './tags/tag-table.js'
import { Telemetry } from './telemetry.js'
import { RoundTrip } from './write/round-trip.js'
import { type Mutation, WritePath } from './write/write-path.js'
import { PendingWrites } from './pending-writes.js'

/** The cache. Plain-key verbs use the default family (`default@1`). */
export interface TieredCache {
  /** The `name` option: tells caches apart in logs, traces (`tiercache:*` channels) and metrics. */
  readonly name: string
  get<T = unknown>(key: string): Promise<T | undefined>
  /** L1 only, synchronous: the fresh L1 value or `undefined`. */
  peek<T = unknown>(key: string): T | undefined
  /** `options.background`: resolve once L1 changed and the remote work is queued (see `WriteOptions`). */
  set<T>(key: string, value: T, options?: SetOptions & TagOptions & WriteOptions): Promise<void>
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions & TagOptions): Promise<T>
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>
  setMany<T>(entries: readonly { key: string; value: T; options?: SetOptions & TagOptions }[], options?: WriteOptions): Promise<void>
  delete(key: string | readonly string[], options?: WriteOptions): Promise<void>
  /**
   * Soft invalidation: the entries become stale, not absent, on every process. The next
   * `getOrSet` serves one within its grace (the rest of its TTL when it has none) at once while one
   * reload runs, once across the processes (through the lease). `get` and `peek`, which have no
   * loader, take it for absent. See docs/loading.md.
   */
  expire(key: string | readonly string[], options?: WriteOptions): Promise<void>
  /**
   * Reads several keys at once: L1 first, one L2 batch for the rest, and one `loader` call for the
   * keys still missing, with those keys in order; it returns their values in that order, or a
   * `Map` from key to value (a key it leaves out is not cached and reads `undefined`). A key with
   * a load or a lease under way joins it instead. See docs/loading.md.
   */
  getOrSetMany<T>(keys: readonly string[], loader: BatchLoader<string, T>, options?: GetOrSetOptions & TagOptions): Promise<(T | undefined)[]>
  /**
   * Drops every entry tagged with any of `tags` and written before, on every process, in O(1):
   * once it resolved (or, `background`, once called) this process serves none of them, from L1,
   * L2 or as a grace copy, and no load that began before lands. The other processes follow when
   * the bus message reaches them. See docs/tags.md.
   */
  invalidateTags(tags: readonly string[], options?: WriteOptions): Promise<void>
  /** Drops L1, clears the store's namespace, tells the other nodes. */
  clear(options?: WriteOptions): Promise<void>
  stats(): CacheStats
  on<E extends CacheEventName>(event: E, listener: CacheEventListener<E>): () => void
  family<P, V>(definition: FamilyDefinition<P, V>): Family<P, V>
  /** Deletes L2 keys whose part after the namespace matches `glob`; 0 without L2. */
  deleteByPattern(glob: string): Promise<number>
  /**
   * The store's statistics, or `undefined` when there is no L2 or it reports none. The key counts
   * scan the namespace: `{ keys: false }` skips them (memory and connection state only).
   */
  l2Info(options?: StoreInfoOptions): Promise<StoreInfo | undefined>
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
const NO_LATENCY = Object.freeze({ count: 0, p50: 0, p99: 0 })

/** One plain key or several, as the keys of the default family a delete or an expiry names. */
function keyItems(key: string | readonly string[]): { id: string; params: undefined }[] {
  return (typeof key === 'string' ? [key] : key).map((id) => ({ id, params: undefined }))
}

/** Creates a cache. Throws `InvalidOptionsError` for invalid options. */
export function createTieredCache(options?: TieredCacheOptions): TieredCache {
  return new Cache(resolveOptions(options))
}

class Cache implements TieredCache {
  readonly #o: ResolvedOptions
  readonly name: string
  readonly #life = new Lifecycle()
  readonly #telemetry: Telemetry
  readonly #local: LocalTier
  readonly #flights = new Flights()
  readonly #pending = new PendingWrites()
  readonly #guard: L2Guard | undefined
  readonly #remote: RemoteTier | undefined
  readonly #stampede: Stampede | undefined
  readonly #coherence: Coherence
  readonly #get: Get
  readonly #write: WritePath
  readonly #ops: FamilyOps
  readonly #default: FamilyContext

  constructor(resolved: ResolvedOptions) {
    const o = resolved.clock === systemClock ? Object.freeze({ ...resolved, clock: coarseClock() }) : resolved
    this.#o = o
    const { clock, name } = o
    this.name = name
    const life = this.#life
    const flights = this.#flights
    const pending = this.#pending
    const telemetry = (this.#telemetry = new Telemetry(o.logger, o.stats, name))
    const policy = valuePolicy(o.l1.immutability)
    let remote: RemoteTier | undefined
    let stampede: Stampede | undefined
    const guard = (this.#guard =
      o.l2 === undefined
        ? undefined
        : new L2Guard(
            o.l2,
            { name, timeout: o.l2Timeout, ...o.breaker },
            {
              onError: (operation, error) => telemetry.l2Failed(operation, error),
              onStateChange: (state) => {
                remote?.breakerChanged(state)
                if (state !== 'closed') return
                // Fills dropped while the breaker was open: other processes may be waiting on those leases.
                stampede?.refillOwn()
                coherence.resendHeld()
              },
            },
          ))
    const tags = new TagTable(guard, clock, o.tagTable.maxSize)
    const local = (this.#local = new LocalTier(o.l1, clock, tags))
    const generations = new Generations(guard, clock, () => coherence.flush('namespace-generation', false))
    const keys = new Keys(generations)
    if (guard !== undefined) {
      const recovery = new RecoveryQueue(o.recoveryQueue.maxSize)
      const announce = (message: Invalidation): Promise<void> => coherence.publish(message)
      remote = new RemoteTier({ guard, recovery, generations, tags, announce, pending, telemetry, life, clock, name })
      stampede = new Stampede({ remote, local, telemetry, life, clock, lease: o.lease })
    }
    const bus = o.bus
    // With L2, a message is remote work of the write like its L2 changes: bounded by the guard's
    // timeout, counted by its breaker, held while the breaker is open (writers never wait on a
    // client's own command timeout). Without L2 the bus alone carries it; its failures are reported.
    const transport: Transport | undefined =
      bus === undefined
        ? undefined
        : guard === undefined
          ? {
              down: false,
              send: (message) =>
                bus.publish(message).catch((error: unknown) => {
                  telemetry.background('bus publish', error)
                  throw error
                }),
            }
          : {
              get down() {
                return guard.isOpen
              },
              send: (message) => guard.run('publish', () => bus.publish(message)),
              beforeResend: () => remote?.replay() ?? Promise.resolve(),
            }
    const coherence: Coherence = (this.#coherence = new Coherence({
      bus,
      transport,
      local,
      flights,
      generations,
      tags,
      stampede,
      telemetry,
      life,
      unhealthyL1Cap: o.unhealthyL1Cap,
      name,
    }))
    this.#remote = remote
    this.#stampede = stampede
    const land = new Lander({ local, policy, remote, stampede, tags, telemetry, life, clock })
    const runner = new LoaderRunner(telemetry, name)
    const getOrSet = new GetOrSet({ local, policy, flights, keys, generations, remote, stampede, runner, land, tags, pending, telemetry, life, clock })
    const many = new GetOrSetMany({ local, policy, flights, keys, generations, remote, stampede, runner, land, tags, pending, telemetry, life, clock, single: getOrSet })
    const get = (this.#get = new Get({ local, policy, flights, keys, generations, remote, land, tags, pending, telemetry, life, clock }))
    const writeQueueSize = o.writeQueue.maxSize
    const trip = remote !== undefined && bus !== undefined && RoundTrip.possible(remote.guard.store, bus) ? new RoundTrip(remote, bus, coherence) : undefined
    this.#write = new WritePath({ local, policy, coherence, keys, generations, tags, remote, trip, pending, telemetry, life, clock, writeQueueSize })
    const background = (options: WriteOptions | undefined) => () => resolveBackground(options, o.backgroundWrites)
    this.#ops = {
      getOrSet: (fc, id, params, loader, options) => getOrSet.getOrSet(fc, id, params, loader, options),
      get: (fc, id, params) => get.get(fc, id, params),
      peek: (fc, id, params) => get.peek(fc, id, params),
      getMany: (fc, ids, params) => get.getMany(fc, ids, params),
      set: (fc, items, options) => this.#apply({ kind: 'set', fc, items }, background(options)),
      delete: (fc, items, options) => this.#apply({ kind: 'delete', fc, items }, background(options)),
      expire: (fc, items, options) => this.#apply({ kind: 'expire', fc, items }, background(options)),
      getOrSetMany: (fc, ids, params, loader, options) => many.getOrSetMany(fc, ids, params, loader, options),
      bump: (fc, generation, options) => this.#apply({ kind: 'bump', fc, name: generation }, background(options)),
      purge: (fc) => (this.#life.closed ? Promise.reject(new CacheClosedError()) : this.#life.track(this.#purge(fc))),
    }
    this.#default = this.#declare(DEFAULT_FAMILY, undefined)
    const hits = hitPaths({
      local,
      clock,
      counters: this.#default.counters,
      observed: policy.shared && telemetry.silentSink ? undefined : (value) => {
        telemetry.l1Hit(this.#default)
        return policy.out(value)
      },
      miss: (key, loader, options, entry) => getOrSet.miss(this.#default, key, key, undefined, loader, options, entry),
      read: (key, entry) => get.miss(this.#default, key, key, undefined, entry),
      closed: () => life.closed,
    })
    this.getOrSet = hits.getOrSet as TieredCache['getOrSet']
    this.get = hits.get as TieredCache['get']
    this.peek = hits.peek as TieredCache['peek']
    coherence.start()
    if (o.l2 !== undefined && o.bus === undefined && o.l1Ttl === undefined) {
      // Legal, and right for a single process, but with several processes an L1 copy then
      // outlives writes made elsewhere for its whole TTL.
      o.logger.warn(
        { code: 'TIERCACHE_L1_UNBOUNDED', cache: name },
        'tiercache: l2 without a bus and without l1.ttl: other processes\' writes reach this L1 only when entries expire',
      )
    }
  }

  // ---------------------------------------------------------------- the default family's hits
  // Fields set once in the constructor (see `hitPaths`), never reassigned: a caller may take them
  // off the cache (`const { getOrSet } = cache`) and they stay right.
  readonly getOrSet: TieredCache['getOrSet']
  readonly get: TieredCache['get']
  readonly peek: TieredCache['peek']

  // ---------------------------------------------------------------- the other verbs

  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return this.#get.getMany(this.#default, keys, undefined) as Promise<(T | undefined)[]>
  }

  set<T>(key: string, value: T, options?: SetOptions & TagOptions & WriteOptions): Promise<void> {
    const { entry, write } = splitSetOptions(options)
    const items = [{ id: key, params: undefined, value, options: entry }]
    return this.#apply({ kind: 'set', fc: this.#default, items }, () => resolveBackground(write, this.#o.backgroundWrites))
  }

  setMany<T>(entries: readonly { key: string; value: T; options?: SetOptions & TagOptions }[], options?: WriteOptions): Promise<void> {
    const items = entries.map((e) => ({ id: e.key, params: undefined, value: e.value, options: e.options }))
    return this.#apply({ kind: 'set', fc: this.#default, items }, () => resolveBackground(options, this.#o.backgroundWrites))
  }

  delete(key: string | readonly string[], options?: WriteOptions): Promise<void> {
    return this.#apply({ kind: 'delete', fc: this.#default, items: keyItems(key) }, () => resolveBackground(options, this.#o.backgroundWrites))
  }

  expire(key: string | readonly string[], options?: WriteOptions): Promise<void> {
    return this.#apply({ kind: 'expire', fc: this.#default, items: keyItems(key) }, () => resolveBackground(options, this.#o.backgroundWrites))
  }

  getOrSetMany<T>(keys: readonly string[], loader: BatchLoader<string, T>, options?: GetOrSetOptions & TagOptions): Promise<(T | undefined)[]> {
    return this.#ops.getOrSetMany(this.#default, keys, undefined, loader as BatchLoader<unknown, unknown>, options) as Promise<(T | undefined)[]>
  }

  invalidateTags(tags: readonly string[], options?: WriteOptions): Promise<void> {
    let checked: readonly string[]
    try {
      checked = Object.freeze([...new Set(checkTags(tags, 'tags'))])
    } catch (error) {
      return Promise.reject(error)
    }
    if (checked.length === 0) return this.#life.closed ? Promise.reject(new CacheClosedError()) : Promise.resolve()
    return this.#apply({ kind: 'tags', tags: checked }, () => resolveBackground(options, this.#o.backgroundWrites))
  }

  clear(options?: WriteOptions): Promise<void> {
    return this.#apply({ kind: 'clear' }, () => resolveBackground(options, this.#o.backgroundWrites))
  }

  /** A write whose `background` option is resolved first (a bad one rejects the write). */
  #apply(mutation: Mutation, background: () => boolean): Promise<void> {
    let inBackground: boolean
    try {
      inBackground = background()
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#write.apply(mutation, inBackground)
  }

  family<P, V>(definition: FamilyDefinition<P, V>): Family<P, V> {
    validateFamilyDefinition(definition)
    const id = `${definition.name}@${definition.version ?? 1}`
    if (id === DEFAULT_FAMILY) throw new InvalidOptionsError('family.name', `"${id}" is the default family's id: choose another name`)
    const fc = this.#declare(id, definition as FamilyDefinition<unknown, unknown>)
    return new FamilyHandle<P, V>(this.#ops, fc, definition.key)
  }

  stats(): CacheStats {
    const guard = this.#guard
    return this.#telemetry.snapshot({
      breaker: { state: guard?.state ?? 'closed', transitions: guard?.transitions ?? 0 },
      recoveryQueueDepth: this.#remote?.recoveryQueueDepth ?? 0,
      writeQueueDepth: this.#write.queued,
      busHealthy: this.#coherence.healthy,
      l1: { entries: this.#local.size, bytes: this.#local.bytes },
      l2Latency: guard?.latency.snapshot() ?? NO_LATENCY,
    })
  }

  on<E extends CacheEventName>(event: E, listener: CacheEventListener<E>): () => void {
    return this.#telemetry.events.on(event, listener)
  }

  async deleteByPattern(glob: string): Promise<number> {
    if (this.#life.closed) throw new CacheClosedError()
    return this.#remote === undefined ? 0 : this.#remote.deleteByPattern(glob)
  }

  async l2Info(options?: StoreInfoOptions): Promise<StoreInfo | undefined> {
    if (this.#life.closed) throw new CacheClosedError()
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidOptionsError('l2Info', `expected an options object like { keys: false } (got ${options === null ? 'null' : typeof options})`)
    }
    if (options?.keys !== undefined && typeof options.keys !== 'boolean') {
      throw new InvalidOptionsError('l2Info.keys', `expected a boolean (got ${typeof options.keys})`)
    }
    return this.#remote?.info(options)
  }

  async ready(options?: ReadyOptions): Promise<ReadyState> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidOptionsError('ready', `expected an options object like { timeout: '5s' } (got ${options === null ? 'null' : typeof options})`)
    }
    const timeoutMs = options?.timeout === undefined ? READY_TIMEOUT_MS : parseDuration(options.timeout, 'ready.timeout')
    const store = this.#o.l2
    const bus = this.#o.bus
    const [l2, busReady] = await Promise.all([
      store === undefined ? false : store.ready === undefined ? true : store.ready(timeoutMs).catch(() => false),
      bus === undefined ? false : bus.ready === undefined ? bus.healthy : bus.ready(timeoutMs).catch(() => false),
    ])
    // Coherence applies a health change synchronously when the bus reports it, so a healthy bus
    // means the start-up L1 drop is behind us.
    const open = !this.#life.closed
    return { l2: l2 && open, bus: busReady && this.#coherence.healthy && open }
  }

  async close(): Promise<void> {
    if (this.#life.closed) return
    this.#life.close()
    this.#local.close()
    this.#stampede?.wakeAll()
    await this.#life.drain()
    await this.#coherence.flushOutgoing()
    this.#guard?.shutdown()
    const closing: Promise<void>[] = []
    if (this.#o.bus !== undefined) closing.push(this.#o.bus.close())
    if (this.#o.l2 !== undefined) closing.push(this.#o.l2.close())
    for (const result of await Promise.allSettled(closing)) {
      if (result.status === 'rejected') this.#telemetry.background('close', result.reason)
    }
  }

  /** Read from L2, not memory: a generation bumped elsewhere and not heard of yet must not be purged. */
  async #purge(fc: FamilyContext): Promise<number> {
    const remote = this.#remote
    if (remote === undefined) return 0
    const [namespace = 0, family = 0] = await remote.generations(['', fc.id])
    return remote.purgeFamily(fc.id, familyStoreGeneration(fc, namespace, family))
  }

  /** A family's context: the default family's without a definition. */
  #declare(id: string, d: FamilyDefinition<unknown, unknown> | undefined): FamilyContext {
    const base = baseSettings(this.#o)
    const own = d === undefined ? undefined : { ttl: d.ttl, grace: d.grace, eagerRefresh: d.eagerRefresh }
    const settings =
      own === undefined || (own.ttl === undefined && own.grace === undefined && own.eagerRefresh === undefined)
        ? base
        : resolveEntryOptions(base, own as GetOrSetOptions, 'family')
    const gen = d?.generational
    return {
      id,
      counters: this.#telemetry.countersOf(id),
      settings,
      schema: d?.schema as ValueSchema<unknown> | undefined,
      generational: gen !== undefined && gen !== false,
      group: typeof gen === 'object' ? (gen.group as (params: never) => string) : undefined,
      tags: d?.tags as FamilyTags | undefined,
      isDefault: d === undefined,
      adaptive: d?.adaptiveTtl === undefined ? undefined : this.#adaptive(d.adaptiveTtl),
    }
  }

  #adaptive(range: { min: Duration; max: Duration }): AdaptiveTtl {
    const min = parseDuration(range.min, 'family.adaptiveTtl.min')
    const max = parseDuration(range.max, 'family.adaptiveTtl.max')
    if (min <= 0) throw new InvalidOptionsError('family.adaptiveTtl.min', `must be greater than 0 (got ${min}ms)`)
    if (max < min) throw new InvalidOptionsError('family.adaptiveTtl.max', `must not be shorter than min (got min ${min}ms, max ${max}ms)`)
    return new AdaptiveTtl(min, max, this.#o.l1.maxEntries, this.#o.clock)
  }
}
