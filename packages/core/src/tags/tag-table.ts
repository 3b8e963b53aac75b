/**
 * The tag versions in memory, and the one rule that decides whether a tagged entry stands.
 *
 * Every tag version is a point on one namespace-wide sequence that only moves forward (the store's
 * `invalidateTags` moves it one on and gives the tags that version). An entry records its tags and
 * the sequence its writer knew when the write was made or the load began (`tagVersion`, T): it
 * stands while no tag of it has a version above T. The table knows
 *
 * - `latest`: the highest version heard of (a lower bound of the store's sequence, so a T taken
 *   from it never claims an invalidation it has not seen — at worst an entry counts as older);
 * - each tag it read or heard of, with its version (bounded: `maxSize` tags, the oldest go);
 * - `horizon`: every tag it does not hold has a version at most this (set by a read of the
 *   sequence, raised to the version of each tag it lets go).
 *
 * While the bus is healthy every invalidation after a read is heard, so an entry whose T is at
 * least `latest` stands without a look at its tags: one comparison on the L1 hit path. Otherwise
 * each tag is looked at: a version above T voids the entry (versions only grow, so that holds for
 * any version ever known); a tag known only by a horizon above T, or known from longer ago than
 * `cap` while the bus is unhealthy, is unknown and is read from L2 (`ensure`). A grace copy only
 * needs no applied invalidation against it: knowledge older than `cap` does for it.
 *
 * A tag this process is invalidating is held until the new version is in: entries with it do not
 * stand. Without L2 the versions are this process's own count: an invalidation heard from another
 * process moves it one on here.
 */
import type { Clock } from '../ports.js'
import { Holds } from '../holds.js'
import type { L2Guard } from '../l2/guard.js'

/** The answer of `check`. */
export const TAGS_OK = 0
/** An invalidation after the entry's T was applied here: the entry is gone. */
export const TAGS_INVALID = 1
/** The table cannot tell without reading L2. */
export const TAGS_UNKNOWN = 2
export type TagCheck = typeof TAGS_OK | typeof TAGS_INVALID | typeof TAGS_UNKNOWN

interface Known {
  readonly version: number
  readonly readAt: number
}

/** Separates the tags of one read in the map of reads in progress. */
const TAGS_SEP = '\u0001'

export class TagTable {
  /** The highest version heard of. */
  latest = 0
  /**
   * Moved by every change that may void an entry (a version applied, a tag held, a reset): a
   * caller that joins a load begun before a change checks what the load answered.
   */
  changes = 0
  readonly #known = new Map<string, Known>()
  readonly #held = new Holds()
  readonly #reads = new Map<string, Promise<boolean>>()
  readonly #guard: L2Guard | undefined
  readonly #clock: Clock
  readonly #maxSize: number
  /** How long knowledge is trusted: `Infinity` while the bus is healthy. Set by coherence. */
  #cap = Infinity
  #horizon: number | undefined
  #horizonAt = 0
  /** An entry with a T at least this stands without a look at its tags (`Infinity`: look). */
  #fast = Infinity
  /** Moved by `reset`: a read issued before it answers for knowledge that was dropped. */
  #epoch = 0

  constructor(guard: L2Guard | undefined, clock: Clock, maxSize: number) {
    this.#guard = guard
    this.#clock = clock
    this.#maxSize = maxSize
    // Without L2 there is nothing to read: the count starts here, at 0, for every tag.
    if (guard === undefined) this.#horizon = 0
    this.#refresh()
  }

  get cap(): number {
    return this.#cap
  }

  set cap(cap: number) {
    this.#cap = cap
    this.#refresh()
  }

  /** Tags held in memory. */
  get size(): number {
    return this.#known.size
  }

  /** Whether L2 can answer for tags: without a store's tag methods, tags are refused. */
  get supported(): boolean {
    const store = this.#guard?.store
    return store === undefined || (typeof store.getTagVersions === 'function' && typeof store.invalidateTags === 'function')
  }

  /** The entry stands (the L1 hit test; `tags` set). */
  fresh(tags: readonly string[], tagVersion: number): boolean {
    return tagVersion >= this.#fast || this.check(tags, tagVersion, false) === TAGS_OK
  }

  /** Whether an entry of `tags` written at `tagVersion` stands; `grace`: as a stale copy. */
  check(tags: readonly string[], tagVersion: number, grace: boolean): TagCheck {
    const aging = !grace && this.#cap !== Infinity && this.#guard !== undefined
    const now = aging ? this.#clock.now() : 0
    let result: TagCheck = TAGS_OK
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i] as string
      if (this.#held.has(tag)) return TAGS_INVALID
      const known = this.#known.get(tag)
      if (known !== undefined) {
        if (known.version > tagVersion) return TAGS_INVALID
        if (aging && now - known.readAt >= this.#cap) result = TAGS_UNKNOWN
      } else if (this.#horizon === undefined || this.#horizon > tagVersion || (aging && now - this.#horizonAt >= this.#cap)) {
        result = TAGS_UNKNOWN
      }
    }
    return result
  }

  /**
   * The T of an entry written (or a load begun) now: `latest`, once the sequence was read (none
   * read yet, or dropped, it is read first; L2 unable to tell, `latest` as it is, which at worst
   * makes the entry count as older than it is).
   */
  async tagVersionNow(): Promise<number> {
    if (this.needsSequence) await this.ensure([])
    return this.latest
  }

  /** No sequence read yet (or it was dropped): a T taken now may lag the store's. */
  get needsSequence(): boolean {
    return this.#horizon === undefined
  }

  /**
   * Reads the versions of `tags` and the sequence from L2 (`[]`: the sequence alone); `false` when
   * L2 cannot tell. Concurrent reads of the same tags share one call.
   */
  ensure(tags: readonly string[]): Promise<boolean> {
    const guard = this.#guard
    if (guard === undefined) return Promise.resolve(false)
    if (guard.isOpen) return Promise.resolve(false)
    const id = tags.join(TAGS_SEP)
    let reading = this.#reads.get(id)
    if (reading === undefined) {
      const epoch = this.#epoch
      const issuedAt = this.#clock.now()
      const store = guard.store
      if (store.getTagVersions === undefined) return Promise.resolve(false)
      reading = guard
        .run('getTagVersions', (s) => (s.getTagVersions as NonNullable<typeof store.getTagVersions>).call(s, tags))
        .then(
          (answer) => this.#read(tags, answer.sequence, answer.versions, epoch, issuedAt),
          () => false,
        )
        .finally(() => this.#reads.delete(id))
      this.#reads.set(id, reading)
    }
    return reading
  }

  /** Versions moved: from a bus message or this process's own invalidation. */
  apply(tags: readonly string[], version: number): void {
    this.changes++
    const now = this.#clock.now()
    for (const tag of tags) this.#put(tag, version, now)
    if (version > this.latest) this.latest = version
    this.#refresh()
  }

  /** An invalidation from another process. Without L2 the versions are each process's own count: it moves this one on. */
  heard(tags: readonly string[], version: number): void {
    if (this.#guard === undefined) this.applyLocal(tags)
    else this.apply(tags, version)
  }

  /** Without L2: the next version of this process's count, given to `tags`. */
  applyLocal(tags: readonly string[]): number {
    const version = this.latest + 1
    this.apply(tags, version)
    return version
  }

  /** Entries with any of `tags` do not stand until `release` (their invalidation is on its way). */
  hold(tags: readonly string[]): void {
    this.changes++
    this.#held.add(tags)
    this.#refresh()
  }

  release(tags: readonly string[]): void {
    this.#held.remove(tags)
    this.#refresh()
  }

  /**
   * Forgets what was read: after a possible loss of messages, tags are read again. `latest` stays
   * (a lower bound still); L1 is dropped with it, so no entry is left to judge by what is gone.
   */
  reset(): void {
    this.changes++
    this.#epoch++
    this.#known.clear()
    this.#horizon = this.#guard === undefined ? this.latest : undefined
    this.#refresh()
  }

  #read(tags: readonly string[], sequence: number, versions: readonly number[], epoch: number, issuedAt: number): boolean {
    if (!Number.isSafeInteger(sequence) || versions.length !== tags.length) return false
    if (sequence > this.latest) this.latest = sequence
    // Dropped meanwhile: the read may predate messages that were lost; it proves nothing now.
    if (epoch !== this.#epoch) return false
    for (let i = 0; i < tags.length; i++) {
      const version = versions[i]
      if (typeof version === 'number' && Number.isSafeInteger(version)) this.#put(tags[i] as string, version, issuedAt)
    }
    const aged = this.#cap !== Infinity && issuedAt - this.#horizonAt >= this.#cap
    if (this.#horizon === undefined || aged) {
      this.#horizon = sequence
      this.#horizonAt = issuedAt
    }
    this.#refresh()
    return true
  }

  #put(tag: string, version: number, at: number): void {
    const known = this.#known.get(tag)
    if (known !== undefined) {
      // Versions never go back: a late read must not undo an invalidation heard meanwhile.
      if (known.version > version) version = known.version
      this.#known.delete(tag)
    }
    this.#known.set(tag, { version, readAt: at })
    if (this.#known.size <= this.#maxSize) return
    const [oldest, dropped] = this.#known.entries().next().value as [string, Known]
    this.#known.delete(oldest)
    // What the table lets go it still bounds: absent tags count as at most the horizon.
    if (this.#horizon !== undefined && dropped.version > this.#horizon) this.#horizon = dropped.version
  }

  #refresh(): void {
    const trusted = this.#guard === undefined || this.#cap === Infinity
    this.#fast = trusted && this.#horizon !== undefined && this.#held.size === 0 ? Math.max(this.latest, this.#horizon) : Infinity
  }
}
