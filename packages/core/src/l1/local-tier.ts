/**
 * The in-process tier: an LRU (lru-cache) of entries and the one freshness rule.
 *
 * An entry keeps the promise it was filled with, settled once at fill, so that a hit allocates
 * nothing and chains no promise. It is fresh before `freshUntil` (the entry's TTL, capped by
 * `l1Ttl`) and, while the bus is unhealthy, only within `cap` of its fill: coherence sets `cap`
 * (`Infinity` while healthy), so the one hit path reads a number instead of switching code.
 * Entries past `freshUntil` but before `graceUntil` stay as stale copies for a failing loader.
 * A tagged entry also needs its tags to stand (`TagTable`): not fresh, and no stale copy either,
 * once an invalidation of one of them after its write was applied here.
 *
 * Two marks serve a value at once while one reload runs behind (`GetOrSet`): `refreshAt`, where
 * eager refresh starts (a `getOrSet` hit past it reloads; `Infinity` when off or under way), and
 * `expired`, set by `expire()`: the entry is stale but stays, served within its grace.
 */
import { LRUCache } from 'lru-cache'
import type { Clock } from '../ports.js'
import { TAGS_INVALID, TAGS_OK, type TagTable } from '../tags/tag-table.js'

export interface L1Entry {
  readonly value: unknown
  /** Settled with `value` at fill: what a hit returns. */
  readonly promise: Promise<unknown>
  /** Served as fresh until here (`expire()` brings it down). */
  freshUntil: number
  /** The entry's own expiry (`freshUntil` may be earlier: `l1Ttl`, `expire()`). */
  readonly expiresAt: number
  /** May stand in for a failing loader until here. */
  readonly graceUntil: number
  readonly filledAt: number
  /** The entry's tags (`undefined`: none): it stands while `TagTable` says so. */
  readonly tags: readonly string[] | undefined
  /** With `tags`: the tag sequence its writer knew (see `TagTable`). */
  readonly tagVersion: number
  /** A `getOrSet` hit from here on reloads in the background; `Infinity`: never (or under way). */
  refreshAt: number
  /** Expired by `expire()`: served within grace while one reload runs. */
  expired: boolean
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
const KEEP_ENTRY: L1Entry = Object.freeze({ value: undefined, promise: Promise.resolve(undefined), freshUntil: 0, expiresAt: 0, graceUntil: 0, filledAt: 0, tags: undefined, tagVersion: 0, refreshAt: Infinity, expired: false })

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
    return this.#freshAt(entry, this.#clock.now())
  }

  /** Fresh and not yet at its eager refresh point: what a `getOrSet` answers as a plain hit. */
  settled(entry: L1Entry): boolean {
    const now = this.#clock.now()
    return entry.refreshAt > now && this.#freshAt(entry, now)
  }

  #freshAt(entry: L1Entry, now: number): boolean {
    return entry.freshUntil > now && now - entry.filledAt < this.cap && (entry.tags === undefined || this.#tags.fresh(entry.tags, entry.tagVersion))
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
    if (entry.graceUntil > this.#clock.now()) {
      if (entry.tags === undefined) return entry
      const check = this.#tags.check(entry.tags, entry.tagVersion, true)
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
    entry.freshUntil = Math.min(entry.freshUntil, this.#clock.now())
    entry.expired = true
    entry.refreshAt = Infinity
    return true
  }

  /**
   * Fills with a value L1 keeps as is (see `ValuePolicy.keep`), with its tags and their T (`tags`
   * undefined: untagged), its eager refresh point and whether it came expired. Ignored once closed.
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
    const graceEnd = Math.max(graceUntil, freshUntil)
    const entry: L1Entry = { value, promise: Promise.resolve(value), freshUntil, expiresAt, graceUntil: graceEnd, filledAt: now, tags, tagVersion, refreshAt, expired }
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
