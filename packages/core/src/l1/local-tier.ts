/**
 * The in-process tier: an LRU (lru-cache) of entries and the one freshness rule.
 *
 * A hit returns the entry's settled promise, made on the entry's first hit and kept, so that a hit
 * allocates nothing and chains no promise (and an entry never hit costs no promise). It is fresh
 * before `fresh` (the entry's TTL, capped by `l1Ttl`) and, while the bus is unhealthy, only within
 * `cap` of its fill: coherence sets `cap` (`Infinity` while healthy), so the one hit path reads a
 * number instead of switching code. Entries past `fresh` but before `grace` stay as stale copies
 * for a failing loader. A tagged entry also needs its tags to stand (`TagTable`): not fresh, and
 * no stale copy either, once an invalidation of one of them after its write was applied here.
 *
 * Two marks serve a value at once while one reload runs behind (`GetOrSet`): `refresh`, where
 * eager refresh starts (a `getOrSet` hit past it reloads; `NEVER` when off or under way), and
 * `EXPIRED` in its place, set by `expire()`: the entry is stale but stays, served within its grace.
 *
 * What most entries lack (tags, an eager refresh point, an expiry past `fresh`) lives in one
 * record, `more`, that only such an entry has: an entry without it is 7 fields (80 bytes on
 * 64-bit, against 104 with all ten in it), and its hit reads one cache line and tests `more` once.
 *
 * Times are small integers, so that V8 keeps them in the entry itself: a time as a double is a
 * heap number of its own (16 bytes each, five per entry), which at a million entries is most of
 * what an entry costs beyond its value. `base` is the fill time in units of 2^16 ms; every other
 * time is whole milliseconds after `base · 2^16` (rounded up, so `t > now` holds as it did for a
 * whole-millisecond `now`), at most `NEVER`: an L1 copy lives at most 2^31 ms (24.8 days), and a
 * later time (a longer TTL or grace) counts as `NEVER`, which passes as expired once reached. L2
 * keeps its own, exact times.
 */
import { LRUCache } from 'lru-cache'
import type { Clock } from '../ports.js'
import { TAGS_INVALID, TAGS_OK, type TagTable } from '../tags/tag-table.js'

/** The unit of `L1Entry.base`, in milliseconds. */
export const BASE_UNIT = 65_536
/** The latest time an entry can tell (2^31 − 1 ms after its base), and `refresh` when none is due. */
export const NEVER = 0x7fff_ffff
/** `refresh` of an entry expired by `expire()`. */
const EXPIRED = -NEVER

export interface L1Entry {
  readonly value: unknown
  /** Settled with `value`, made on the first hit that returns it (`promiseOf`). */
  promise: Promise<unknown> | undefined
  /** The fill time in units of `BASE_UNIT`: the times below count from `base · BASE_UNIT`. */
  readonly base: number
  /** When it was filled. */
  readonly filled: number
  /** Served as fresh until here (`expire()` brings it down); without `more`, the entry's own expiry too. */
  fresh: number
  /** May stand in for a failing loader until here. */
  readonly grace: number
  /** Its rare parts; `undefined`: untagged, no eager refresh, its own expiry at `fresh`. */
  more: L1More | undefined
}

/** The parts of an entry few entries have (see `LocalTier`). */
export interface L1More {
  /** The entry's own expiry (`fresh` may be earlier: `l1Ttl`, `expire()`). */
  readonly expires: number
  /** A `getOrSet` hit from here on reloads in the background; `NEVER`: never (or under way); `EXPIRED`: expired by `expire()`. */
  refresh: number
  /** The entry's tags (`undefined`: none): it stands while `TagTable` says so. */
  readonly tags: readonly string[] | undefined
  /** With `tags`: the tag sequence its writer knew (see `TagTable`). */
  readonly tagVersion: number
}

/** Whole milliseconds from `from` to `time`, rounded up, within ±`NEVER`: always a small integer. */
function after(time: number, from: number): number {
  const ms = Math.ceil(time - from)
  // `NaN` (no time) compares false both ways: it becomes NEVER too.
  return ms < NEVER ? (ms > -NEVER ? ms | 0 : -NEVER) : NEVER
}

/** The entry's settled promise, made on its first hit. */
export function promiseOf(entry: L1Entry): Promise<unknown> {
  return entry.promise ?? (entry.promise = Promise.resolve(entry.value))
}

/** `now` as the entry counts time: milliseconds after its base. */
export function since(entry: L1Entry, now: number): number {
  return now - entry.base * BASE_UNIT
}

export interface LocalTierOptions {
  readonly maxEntries: number
  readonly maxBytes: number | undefined
  readonly sizeOf: (value: unknown) => number
}

/**
 * The key of an entry that keeps the LRU from emptying by a delete. lru-cache resets its storage
 * when its last entry is deleted, writing every slot of its `max`-sized arrays (measured ~30 µs at
 * the default 10,000 entries): with one hot key (a counter, a flag, a benchmark's key) every write
 * and every invalidation of it would pay that. A symbol is no string key, so nobody can read it.
 */
const KEEP = Symbol('tiercache.l1.keep') as unknown as string
const KEEP_ENTRY: L1Entry = Object.freeze({ value: undefined, promise: undefined, base: 0, filled: 0, fresh: 0, grace: 0, more: undefined })

export class LocalTier {
  /** Longest an entry is served after its fill: `Infinity` while the bus is healthy. */
  cap = Infinity
  readonly #lru: LRUCache<string, L1Entry>
  readonly #clock: Clock
  readonly #tags: TagTable
  readonly #sizeOf: ((value: unknown) => number) | undefined
  #closed = false

  constructor(options: LocalTierOptions, clock: Clock, tags: TagTable) {
    this.#clock = clock
    this.#tags = tags
    this.#sizeOf = options.maxBytes === undefined ? undefined : options.sizeOf
    this.#lru = new LRUCache<string, L1Entry>(
      options.maxBytes === undefined ? { max: options.maxEntries } : { max: options.maxEntries, maxSize: options.maxBytes },
    )
  }

  /** The LRU itself, for the default family's hit path (one call fewer per hit); read it only. */
  get lru(): LRUCache<string, L1Entry> {
    return this.#lru
  }

  /** The entry, fresh or not (a lookup that counts as a use). */
  entry(key: string): L1Entry | undefined {
    return this.#lru.get(key)
  }

  fresh(entry: L1Entry): boolean {
    return this.#freshAt(entry, since(entry, this.#clock.now()))
  }

  /** Fresh and not yet at its eager refresh point: what a `getOrSet` answers as a plain hit. */
  settled(entry: L1Entry): boolean {
    const t = since(entry, this.#clock.now())
    return this.#freshAt(entry, t) && (entry.more === undefined || entry.more.refresh > t)
  }

  /** `t`: milliseconds after the entry's base (`since`). */
  #freshAt(entry: L1Entry, t: number): boolean {
    return entry.fresh > t && t - entry.filled < this.cap && (entry.more === undefined || this.stands(entry.more))
  }

  /** Whether an entry's rare parts let it be served: its tags, if any, stand (`TagTable`). */
  stands(more: L1More): boolean {
    return more.tags === undefined || this.#tags.fresh(more.tags, more.tagVersion)
  }

  /** The entry's own expiry, in milliseconds after its base: `fresh` unless `more` tells another. */
  #expires(entry: L1Entry): number {
    return entry.more === undefined ? entry.fresh : entry.more.expires
  }

  /** The entry's own expiry, in the clock's time. */
  expiresAt(entry: L1Entry): number {
    return entry.base * BASE_UNIT + this.#expires(entry)
  }

  /** Whether its expiry and grace are the ones it was filled with: neither was past 2^31 ms. */
  exact(entry: L1Entry): boolean {
    return this.#expires(entry) !== NEVER && entry.grace !== NEVER
  }

  /** The entry's tags (`undefined`: none). */
  tagsOf(entry: L1Entry): readonly string[] | undefined {
    return entry.more?.tags
  }

  /** With its tags, the tag sequence its writer knew. */
  tagVersionOf(entry: L1Entry): number {
    return entry.more === undefined ? 0 : entry.more.tagVersion
  }

  /** The end of the entry's grace, in the clock's time. */
  graceUntil(entry: L1Entry): number {
    return entry.base * BASE_UNIT + entry.grace
  }

  /** Past its grace: no use even as a stale copy. */
  spent(entry: L1Entry): boolean {
    return entry.grace <= since(entry, this.#clock.now())
  }

  /** Expired by `expire()` (or filled expired). */
  expired(entry: L1Entry): boolean {
    return entry.more !== undefined && entry.more.refresh === EXPIRED
  }

  /**
   * True once for an entry with an eager refresh point (reached or not), which it then gives up:
   * its one reload is under way, and later hits are plain hits.
   */
  takeRefresh(entry: L1Entry): boolean {
    const more = entry.more
    if (more === undefined || more.refresh === NEVER || more.refresh === EXPIRED) return false
    more.refresh = NEVER
    return true
  }

  /** The fresh entry or `undefined`. */
  hit(key: string): L1Entry | undefined {
    const entry = this.#lru.get(key)
    return entry !== undefined && this.fresh(entry) ? entry : undefined
  }

  /** The entry without counting a use (stale copies, late fills). */
  peek(key: string): L1Entry | undefined {
    return this.#lru.peek(key)
  }

  /**
   * The entry as a stale copy while within grace and no invalidation of its tags was applied; past
   * grace, or invalidated, it is dropped. One whose tags the table cannot tell stays, unserved.
   */
  staleOf(key: string, entry: L1Entry | undefined): L1Entry | undefined {
    if (entry === undefined) return undefined
    if (!this.spent(entry)) {
      const more = entry.more
      if (more === undefined || more.tags === undefined) return entry
      const check = this.#tags.check(more.tags, more.tagVersion, true)
      if (check === TAGS_OK) return entry
      if (check !== TAGS_INVALID) return undefined
    }
    this.delete(key)
    return undefined
  }

  /**
   * Marks the key's entry expired (`expire()`): no longer fresh, kept as a stale copy within its
   * grace, the entry's own or, without one, the rest of its TTL. False when there was no entry.
   */
  expire(key: string): boolean {
    const entry = this.#lru.peek(key)
    if (entry === undefined) return false
    // The expiry it had stays its own: without `more`, that was `fresh`, which comes down here.
    if (entry.more === undefined) entry.more = { expires: entry.fresh, refresh: EXPIRED, tags: undefined, tagVersion: 0 }
    else entry.more.refresh = EXPIRED
    entry.fresh = Math.min(entry.fresh, after(this.#clock.now(), entry.base * BASE_UNIT))
    return true
  }

  /**
   * Fills with a value L1 keeps as is (see `ValuePolicy.keep`), with its tags and their T (`tags`
   * undefined: untagged), its eager refresh point (`Infinity`: none) and whether it came expired.
   * Ignored once closed.
   */
  fill(
    key: string,
    value: unknown,
    now: number,
    expiresAt: number,
    graceUntil: number,
    l1Ttl: number | undefined,
    tags: readonly string[] | undefined = undefined,
    tagVersion = 0,
    refreshAt = Infinity,
    expired = false,
  ): void {
    if (this.#closed) return
    const freshUntil = expired ? Math.min(expiresAt, now) : l1Ttl === undefined ? expiresAt : Math.min(expiresAt, now + l1Ttl)
    const b = Math.floor(now / BASE_UNIT)
    // A clock beyond ±2^31 units (4,000 years from its zero) still works, with its base a double.
    const base = b === (b | 0) ? b | 0 : b
    const from = base * BASE_UNIT
    const fresh = after(freshUntil, from)
    const expires = after(expiresAt, from)
    const refresh = expired ? EXPIRED : after(refreshAt, from)
    const entry: L1Entry = {
      value,
      promise: undefined,
      base,
      filled: after(now, from),
      fresh,
      grace: after(Math.max(graceUntil, freshUntil), from),
      more: expires === fresh && refresh === NEVER && tags === undefined ? undefined : { expires, refresh, tags, tagVersion },
    }
    if (this.#sizeOf === undefined) this.#lru.set(key, entry)
    else this.#lru.set(key, entry, { size: Math.max(1, this.#sizeOf(value)) })
  }

  delete(key: string): void {
    const lru = this.#lru
    if (lru.size === 1 && lru.has(key)) {
      if (this.#sizeOf === undefined) lru.set(KEEP, KEEP_ENTRY)
      else lru.set(KEEP, KEEP_ENTRY, { size: 1 })
    }
    lru.delete(key)
  }

  clear(): void {
    this.#lru.clear()
  }

  /** Empties L1 for good: a closed cache has no hits, so the hit path needs no closed check. */
  close(): void {
    this.#closed = true
    this.#lru.clear()
  }

  get size(): number {
    return this.#lru.size - (this.#lru.has(KEEP) ? 1 : 0)
  }

  get bytes(): number {
    return this.#sizeOf === undefined ? 0 : this.#lru.calculatedSize - (this.#lru.has(KEEP) ? 1 : 0)
  }
}
