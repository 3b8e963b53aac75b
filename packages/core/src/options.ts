import { z } from 'zod'
import { noopStatsSink, silentLogger, systemClock } from './defaults.js'
import { type Duration, parseDuration } from './duration.js'
import { InvalidOptionsError } from './errors.js'
import type { Clock, InvalidationBus, Logger, RemoteStore, StatsSink } from './ports.js'

/** How L1 protects shared values from mutation by callers. */
export type Immutability = 'freeze' | 'clone' | 'none'

/** Options of the in-process tier. */
export interface L1Options {
  /**
   * Most entries L1 keeps (least recently used go first).
   * @default 10_000
   */
  maxEntries?: number
  /** Bound on the summed `sizeOf` of the entries. @default unbounded */
  maxBytes?: number
  /**
   * Size estimate of a value, computed once at fill. Only used with `maxBytes`.
   * @default JSON length (2 bytes per character), 1 KiB for values JSON cannot measure
   */
  sizeOf?: (value: unknown) => number
  /** Longest an L1 copy lives, whatever the entry's TTL. @default the entry's TTL */
  ttl?: Duration
  /**
   * `'freeze'` deep-freezes plain objects and arrays at fill (Buffers and typed arrays are left
   * alone; Maps, Sets and Dates are frozen but their contents stay mutable). `'clone'` copies with
   * `structuredClone` on write and on every read. `'none'` trusts callers.
   * @default 'freeze'
   */
  immutability?: Immutability
}

/** Circuit breaker around the remote store (opossum). */
export interface BreakerOptions {
  /** Calls in the rolling window before the breaker may open. @default 5 */
  volumeThreshold?: number
  /** Failure percentage in the window that opens the breaker. @default 50 */
  errorThresholdPercentage?: number
  /**
   * Time open before a half-open probe, i.e. how soon after the store returns it is used again.
   * While it stays down a probe costs one failed call per period (fast with a client that fails
   * fast, at most `l2Timeout` for one caller otherwise).
   * @default '1s'
   */
  resetTimeout?: Duration
  /** Length of the rolling window of call statistics. @default '10s' */
  rollingCountTimeout?: Duration
}

/** Distributed stampede protection on L2 misses. */
export interface LeaseOptions {
  /** Lease lifetime: another process loads if the holder dies. @default '10s' */
  ttl?: Duration
  /** How long a non-holder waits for the holder's fill before loading itself. @default '2s' */
  waitTimeout?: Duration
  /** Interval of L2 polls while waiting (a bus message about the key wakes earlier). @default '20ms' */
  pollInterval?: Duration
}

/**
 * Options of `set` and `setMany` entries: the lifetime of the entry written. Each overrides the
 * family's and the cache's value. `getOrSet` takes them too, for the value its loader returns (a
 * value it finds in L2 keeps the times it was written with; `l1Ttl` still caps its L1 copy).
 */
export interface SetOptions {
  /** Time an entry is fresh. @default '5m' */
  ttl?: Duration
  /** Time after `ttl` during which a stale copy may stand in for a failing loader. @default 0 */
  grace?: Duration
  /** Fraction of `ttl` (0..1) randomly taken off at fill, so keys written together expire apart. @default 0.1 */
  jitter?: number
  /** Longest the L1 copy lives. @default `l1.ttl` */
  l1Ttl?: Duration
}

/**
 * The entry settings plus the loader timeouts: what the cache takes as defaults for every entry
 * (`TieredCacheOptions`) and `getOrSet` per call. Writes have no loader, so `set` takes `SetOptions`.
 */
export interface EntryOptions extends SetOptions {
  /** Soft loader timeout: with a stale copy at hand, serve it after this and keep loading. @default none */
  timeout?: Duration
  /** Hard loader timeout: the load fails with `LoaderTimeoutError`. @default none */
  hardTimeout?: Duration
  /**
   * Eager refresh, a fraction of the TTL (0 < x < 1): a `getOrSet` hit past that point of its
   * entry's life answers at once and starts one background reload (once per key across the
   * processes, through the lease), so a hot key never expires under traffic. A failed refresh
   * keeps the current value and its grace. Set per call, it applies to the value that call
   * loads. See docs/loading.md. @default off
   */
  eagerRefresh?: number
}

/** How a write (`set`, `delete`, an invalidation, `clear`) waits for its remote work. */
export interface WriteOptions {
  /**
   * Resolve once L1 changed and the remote work is queued, instead of once L2 changed and the bus
   * message was handed over. @default the cache's `backgroundWrites`
   */
  background?: boolean
}

/** Options of `getOrSet`. */
export interface GetOrSetOptions extends EntryOptions {
  /** Cache a `null` result. @default the cache's `negativeCaching` */
  negativeCaching?: boolean
  /** Take an L2 lease on a miss so one process in the cluster loads. @default the cache's `stampedeProtection` */
  stampedeProtection?: boolean
}

/** Options of `createTieredCache`. */
export interface TieredCacheOptions extends EntryOptions {
  /** Remote tier. Absent: an L1-only cache. */
  l2?: RemoteStore
  /** Invalidation bus keeping the L1s of several processes coherent. */
  bus?: InvalidationBus
  /** In-process tier. */
  l1?: L1Options
  /** Per-call timeout of every L2 call. @default '50ms' */
  l2Timeout?: Duration
  breaker?: BreakerOptions
  /** Failed L2 deletes waiting for the store to come back. */
  recoveryQueue?: {
    /** Keys kept; beyond it, recovery bumps the namespace generation instead. @default 10_000 */
    maxSize?: number
  }
  /**
   * Writes (`set`, `delete`, invalidations, `clear`) resolve once L1 changed and their remote work
   * (L2 changes and the bus message) is queued; the queue runs in order in the background, and
   * until a key's queued work has run this process reads the key from the loader, not L2.
   * Per call: `{ background }`. @default false
   */
  backgroundWrites?: boolean
  /** The tag versions kept in memory (see `invalidateTags`). */
  tagTable?: {
    /**
     * Tags whose versions are kept; beyond it the oldest go, and entries with a tag no longer held
     * that an invalidation since their write may concern have it read from L2 again. @default 10_000
     */
    maxSize?: number
  }
  /** Queued background writes. */
  writeQueue?: {
    /** Writes kept; beyond it, queued work is dropped for one namespace-generation bump. @default 10_000 */
    maxSize?: number
  }
  /** Cache `null` loader results. @default false */
  negativeCaching?: boolean
  /** While the bus is unhealthy, L1 entries are served only this long after their fill. @default '1s' */
  unhealthyL1Cap?: Duration
  lease?: LeaseOptions
  /** Leases on L2 misses for `getOrSet`, so one process loads. @default true */
  stampedeProtection?: boolean
  /** @default systemClock */
  clock?: Clock
  /** pino-compatible. @default silentLogger */
  logger?: Logger
  /** @default noopStatsSink */
  stats?: StatsSink
  /** Name in logs. @default 'tiercache' */
  name?: string
}

/** Entry settings resolved for one call (durations in ms). */
export interface EntrySettings {
  readonly ttl: number
  readonly grace: number
  readonly jitter: number
  readonly timeout: number | undefined
  readonly hardTimeout: number | undefined
  readonly l1Ttl: number | undefined
  readonly negativeCaching: boolean
  readonly stampedeProtection: boolean
  /** Fraction of the TTL after which a hit reloads in the background; `undefined`: off. */
  readonly eagerRefresh: number | undefined
}

/**
 * Where an entry filled at `now` and fresh until `expiresAt` starts its eager refresh: at
 * `eagerRefresh` of its life. For an entry read from L2, whose write time is not known, where a
 * copy written a whole TTL before its expiry would (at once if that is past): refilling L1 from
 * L2 (`l1Ttl`, eviction) must not push the point towards the expiry. `Infinity`: never.
 */
export function refreshPoint(settings: EntrySettings, now: number, expiresAt: number, fromL2 = false): number {
  const r = settings.eagerRefresh
  if (r === undefined) return Infinity
  return fromL2 ? Math.max(now, expiresAt - (1 - r) * settings.ttl) : now + r * (expiresAt - now)
}

/** Times of an entry written at `now`: the jitter only ever shortens its TTL. */
export function entryTimes(settings: EntrySettings, now: number): { expiresAt: number; graceUntil: number } {
  const expiresAt = now + Math.max(1, Math.round(settings.ttl * (1 - settings.jitter * Math.random())))
  return { expiresAt, graceUntil: expiresAt + settings.grace }
}

/** The fully resolved options: durations in milliseconds, every default applied. */
export interface ResolvedOptions extends EntrySettings {
  readonly l2: RemoteStore | undefined
  readonly bus: InvalidationBus | undefined
  readonly l1: {
    readonly maxEntries: number
    readonly maxBytes: number | undefined
    readonly sizeOf: (value: unknown) => number
    readonly immutability: Immutability
  }
  readonly l2Timeout: number
  readonly breaker: {
    readonly volumeThreshold: number
    readonly errorThresholdPercentage: number
    readonly resetTimeout: number
    readonly rollingCountTimeout: number
  }
  readonly recoveryQueue: { readonly maxSize: number }
  readonly backgroundWrites: boolean
  readonly writeQueue: { readonly maxSize: number }
  readonly tagTable: { readonly maxSize: number }
  readonly unhealthyL1Cap: number
  readonly lease: { readonly ttl: number; readonly waitTimeout: number; readonly pollInterval: number }
  readonly clock: Clock
  readonly logger: Logger
  readonly stats: StatsSink
  readonly name: string
}

/** Cheap size estimate computed once per fill. */
export function defaultSizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length * 2
  if (value === null || typeof value !== 'object') return 16
  if (ArrayBuffer.isView(value)) return value.byteLength
  try {
    const json = JSON.stringify(value)
    return json === undefined ? 1024 : json.length * 2
  } catch {
    return 1024
  }
}

/** The defaults, in one place. */
export const DEFAULTS = Object.freeze({
  ttl: '5m',
  grace: 0,
  jitter: 0.1,
  negativeCaching: false,
  l1: Object.freeze({ maxEntries: 10_000, immutability: 'freeze' as Immutability }),
  l2Timeout: '50ms',
  breaker: Object.freeze({ volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeout: '1s', rollingCountTimeout: '10s' }),
  recoveryQueue: Object.freeze({ maxSize: 10_000 }),
  backgroundWrites: false,
  writeQueue: Object.freeze({ maxSize: 10_000 }),
  tagTable: Object.freeze({ maxSize: 10_000 }),
  unhealthyL1Cap: '1s',
  lease: Object.freeze({ ttl: '10s', waitTimeout: '2s', pollInterval: '20ms' }),
  stampedeProtection: true,
  name: 'tiercache',
})

const durationSchema = z.union([z.number(), z.string()], {
  error: "expected a duration: milliseconds or a string like '100ms', '30s', '5m'",
})
const positiveInt = z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer')
const refreshFraction = z
  .number({ error: 'expected a number between 0 and 1 (exclusive)' })
  .gt(0, 'expected a number between 0 and 1 (exclusive)')
  .lt(1, 'expected a number between 0 and 1 (exclusive)')
const fraction = z.number({ error: 'expected a number between 0 and 1' }).min(0, 'expected a number between 0 and 1').max(1, 'expected a number between 0 and 1')

function port<T>(name: string, methods: readonly string[]) {
  return z.custom<T>(
    (value) =>
      typeof value === 'object' && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function'),
    { error: `expected a ${name} (an object with ${methods.join(', ')})` },
  )
}

const setShape = {
  ttl: durationSchema.optional(),
  grace: durationSchema.optional(),
  jitter: fraction.optional(),
  l1Ttl: durationSchema.optional(),
}

const entryShape = {
  ...setShape,
  timeout: durationSchema.optional(),
  hardTimeout: durationSchema.optional(),
  eagerRefresh: refreshFraction.optional(),
}

const optionsSchema = z.strictObject({
  ...entryShape,
  l2: port<RemoteStore>('RemoteStore', ['get', 'getMany', 'set', 'setMany', 'delete', 'clear', 'acquireLease', 'fillWithLease', 'getGenerations', 'bumpGeneration', 'close']).optional(),
  bus: port<InvalidationBus>('InvalidationBus', ['publish', 'onMessage', 'onHealthChange', 'start', 'close']).optional(),
  l1: z
    .strictObject({
      maxEntries: positiveInt.optional(),
      maxBytes: positiveInt.optional(),
      sizeOf: z.custom<(value: unknown) => number>((v) => typeof v === 'function', { error: 'expected a function (value) => number' }).optional(),
      ttl: durationSchema.optional(),
      immutability: z.enum(['freeze', 'clone', 'none'], { error: "expected 'freeze', 'clone' or 'none'" }).optional(),
    })
    .optional(),
  l2Timeout: durationSchema.optional(),
  breaker: z
    .strictObject({
      volumeThreshold: z.number().int('expected a non-negative integer').min(0, 'expected a non-negative integer').optional(),
      errorThresholdPercentage: z.number().min(0, 'expected a percentage 0..100').max(100, 'expected a percentage 0..100').optional(),
      resetTimeout: durationSchema.optional(),
      rollingCountTimeout: durationSchema.optional(),
    })
    .optional(),
  recoveryQueue: z.strictObject({ maxSize: positiveInt.optional() }).optional(),
  backgroundWrites: z.boolean({ error: 'expected a boolean' }).optional(),
  writeQueue: z.strictObject({ maxSize: positiveInt.optional() }).optional(),
  tagTable: z.strictObject({ maxSize: positiveInt.optional() }).optional(),
  negativeCaching: z.boolean({ error: 'expected a boolean' }).optional(),
  unhealthyL1Cap: durationSchema.optional(),
  lease: z
    .strictObject({ ttl: durationSchema.optional(), waitTimeout: durationSchema.optional(), pollInterval: durationSchema.optional() })
    .optional(),
  stampedeProtection: z.boolean({ error: 'expected a boolean' }).optional(),
  clock: port<Clock>('Clock', ['now']).optional(),
  logger: port<Logger>('Logger', ['debug', 'info', 'warn', 'error']).optional(),
  stats: port<StatsSink>('StatsSink', ['increment', 'timing']).optional(),
  name: z.string({ error: 'expected a string' }).min(1, 'expected a non-empty string').optional(),
})

function fail(error: z.ZodError, input: unknown): never {
  const issue = error.issues[0] as z.core.$ZodIssue
  const path = issue.path.join('.')
  const value = issue.path.reduce<unknown>((at, part) => (at as Record<PropertyKey, unknown> | undefined)?.[part as PropertyKey], input)
  const got = value !== undefined && typeof value !== 'object' ? ` (got ${show(value)})` : ''
  const message = issue.code === 'unrecognized_keys' ? `unknown option(s) ${issue.keys.join(', ')}` : `${issue.message}${got}`
  throw new InvalidOptionsError(path, message, { cause: error })
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const optionalDuration = (value: Duration | undefined, path: string): number | undefined =>
  value === undefined ? undefined : parseDuration(value, path)

/** Validates and resolves the cache options. Throws `InvalidOptionsError` naming the option. */
export function resolveOptions(options: TieredCacheOptions = {}): ResolvedOptions {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) fail(parsed.error, options)
  const o = parsed.data
  const d = DEFAULTS
  const resolved: ResolvedOptions = {
    l2: o.l2,
    bus: o.bus,
    ttl: parseDuration(o.ttl ?? d.ttl, 'ttl'),
    grace: parseDuration(o.grace ?? d.grace, 'grace'),
    jitter: o.jitter ?? d.jitter,
    timeout: optionalDuration(o.timeout, 'timeout'),
    hardTimeout: optionalDuration(o.hardTimeout, 'hardTimeout'),
    eagerRefresh: o.eagerRefresh,
    l1Ttl: optionalDuration(o.l1Ttl ?? o.l1?.ttl, o.l1Ttl === undefined ? 'l1.ttl' : 'l1Ttl'),
    negativeCaching: o.negativeCaching ?? d.negativeCaching,
    l1: Object.freeze({
      maxEntries: o.l1?.maxEntries ?? d.l1.maxEntries,
      maxBytes: o.l1?.maxBytes,
      sizeOf: o.l1?.sizeOf ?? defaultSizeOf,
      immutability: o.l1?.immutability ?? d.l1.immutability,
    }),
    l2Timeout: parseDuration(o.l2Timeout ?? d.l2Timeout, 'l2Timeout'),
    breaker: Object.freeze({
      volumeThreshold: o.breaker?.volumeThreshold ?? d.breaker.volumeThreshold,
      errorThresholdPercentage: o.breaker?.errorThresholdPercentage ?? d.breaker.errorThresholdPercentage,
      resetTimeout: parseDuration(o.breaker?.resetTimeout ?? d.breaker.resetTimeout, 'breaker.resetTimeout'),
      rollingCountTimeout: parseDuration(o.breaker?.rollingCountTimeout ?? d.breaker.rollingCountTimeout, 'breaker.rollingCountTimeout'),
    }),
    recoveryQueue: Object.freeze({ maxSize: o.recoveryQueue?.maxSize ?? d.recoveryQueue.maxSize }),
    backgroundWrites: o.backgroundWrites ?? d.backgroundWrites,
    writeQueue: Object.freeze({ maxSize: o.writeQueue?.maxSize ?? d.writeQueue.maxSize }),
    tagTable: Object.freeze({ maxSize: o.tagTable?.maxSize ?? d.tagTable.maxSize }),
    unhealthyL1Cap: parseDuration(o.unhealthyL1Cap ?? d.unhealthyL1Cap, 'unhealthyL1Cap'),
    lease: Object.freeze({
      ttl: parseDuration(o.lease?.ttl ?? d.lease.ttl, 'lease.ttl'),
      waitTimeout: parseDuration(o.lease?.waitTimeout ?? d.lease.waitTimeout, 'lease.waitTimeout'),
      pollInterval: parseDuration(o.lease?.pollInterval ?? d.lease.pollInterval, 'lease.pollInterval'),
    }),
    stampedeProtection: o.stampedeProtection ?? d.stampedeProtection,
    clock: o.clock ?? systemClock,
    logger: o.logger ?? silentLogger,
    stats: o.stats ?? noopStatsSink,
    name: o.name ?? d.name,
  }
  checkTogether(resolved)
  return Object.freeze(resolved)
}

// Options that are valid one by one but not together.
function checkTogether(o: ResolvedOptions): void {
  if (o.timeout !== undefined && o.hardTimeout !== undefined && o.timeout >= o.hardTimeout) {
    throw new InvalidOptionsError('timeout', `must be shorter than hardTimeout (got timeout ${o.timeout}ms, hardTimeout ${o.hardTimeout}ms)`)
  }
  if (o.lease.pollInterval <= 0) throw new InvalidOptionsError('lease.pollInterval', 'must be greater than 0')
  if (o.l1.sizeOf !== defaultSizeOf && o.l1.maxBytes === undefined) {
    throw new InvalidOptionsError('l1.sizeOf', 'only applies with l1.maxBytes: set both')
  }
}

const entrySchema = z.strictObject({
  ...entryShape,
  negativeCaching: z.boolean({ error: 'expected a boolean' }).optional(),
  stampedeProtection: z.boolean({ error: 'expected a boolean' }).optional(),
})

const setSchema = z.strictObject(setShape)

/** The cache-level entry settings. */
export function baseSettings(o: ResolvedOptions): EntrySettings {
  return Object.freeze({
    ttl: o.ttl,
    grace: o.grace,
    jitter: o.jitter,
    timeout: o.timeout,
    hardTimeout: o.hardTimeout,
    l1Ttl: o.l1Ttl,
    negativeCaching: o.negativeCaching,
    stampedeProtection: o.stampedeProtection,
    eagerRefresh: o.eagerRefresh,
  })
}

/** Layers per-call (or per-family) options over `base`. Only called off the hit path. */
export function resolveEntryOptions(base: EntrySettings, options: GetOrSetOptions | undefined, path = 'options'): EntrySettings {
  if (options === undefined) return base
  const parsed = entrySchema.safeParse(options)
  if (!parsed.success) failEntry(parsed.error, path)
  return layer(base, parsed.data, path)
}

/**
 * Layers the options of one written entry over `base`. Strict like `getOrSet`'s, so the options
 * only `getOrSet` reads (a write has no loader) are refused instead of ignored.
 */
export function resolveSetOptions(base: EntrySettings, options: SetOptions | undefined, path = 'options'): EntrySettings {
  if (options === undefined) return base
  const parsed = setSchema.safeParse(options)
  if (!parsed.success) failEntry(parsed.error, path)
  return layer(base, parsed.data, path)
}

const writeSchema = z.strictObject({ background: z.boolean({ error: 'expected a boolean' }).optional() })

/** Whether a write runs in the background: its `background` option, else the cache's default. */
export function resolveBackground(options: WriteOptions | undefined, fallback: boolean, path = 'options'): boolean {
  if (options === undefined) return fallback
  const parsed = writeSchema.safeParse(options)
  if (!parsed.success) failEntry(parsed.error, path)
  return parsed.data.background ?? fallback
}

/**
 * Splits the options of `set` into the entry's lifetime (checked by `resolveSetOptions`) and how
 * the write waits (checked by `resolveBackground`).
 */
export function splitSetOptions<E extends SetOptions>(options: (E & WriteOptions) | undefined): { entry: E | undefined; write: WriteOptions | undefined } {
  if (options === undefined || typeof options !== 'object' || options === null || !('background' in options)) {
    return { entry: options, write: undefined }
  }
  const { background, ...entry } = options
  return { entry: Object.keys(entry).length === 0 ? undefined : (entry as unknown as E), write: { background } }
}

/** Options `getOrSet` reads and writes do not: named when a write is given one. */
const getOrSetOnly: ReadonlySet<string> = new Set(Object.keys(entrySchema.shape).filter((key) => !(key in setShape)))

function failEntry(error: z.ZodError, path: string): never {
  const issue = error.issues[0] as z.core.$ZodIssue
  const misplaced = issue.code === 'unrecognized_keys' ? issue.keys.filter((key) => getOrSetOnly.has(key)) : []
  const hint = misplaced.length === 0 ? '' : ` (only getOrSet takes ${misplaced.join(', ')})`
  throw new InvalidOptionsError([path, ...issue.path].join('.'), `${issue.message}${hint}`, { cause: error })
}

function layer(base: EntrySettings, o: z.infer<typeof entrySchema>, path: string): EntrySettings {
  return {
    ttl: o.ttl === undefined ? base.ttl : parseDuration(o.ttl, `${path}.ttl`),
    grace: o.grace === undefined ? base.grace : parseDuration(o.grace, `${path}.grace`),
    jitter: o.jitter ?? base.jitter,
    timeout: o.timeout === undefined ? base.timeout : parseDuration(o.timeout, `${path}.timeout`),
    hardTimeout: o.hardTimeout === undefined ? base.hardTimeout : parseDuration(o.hardTimeout, `${path}.hardTimeout`),
    l1Ttl: o.l1Ttl === undefined ? base.l1Ttl : parseDuration(o.l1Ttl, `${path}.l1Ttl`),
    negativeCaching: o.negativeCaching ?? base.negativeCaching,
    stampedeProtection: o.stampedeProtection ?? base.stampedeProtection,
    eagerRefresh: o.eagerRefresh ?? base.eagerRefresh,
  }
}
