/**
 * Every mutation takes one path: `apply({ kind: 'set' | 'delete' | 'expire' | 'clear' | 'bump' | 'tags' })`,
 * in two halves.
 *
 * - Local: L1 changes first (voiding the flights of the written keys, so that no load that
 *   started before the write lands).
 * - Remote: the L2 changes through the guard, then the bus message: in one round trip when the
 *   store and the bus can share one (`RoundTrip`: the writes of one event-loop turn together,
 *   the message last), else in two steps. What L2 could not take goes
 *   to the recovery queue (a failed `set` or delete leaves a wrong L2 copy, so its key's delete
 *   is queued); the bus message still goes out (or is held until it can), so that healthy L1s
 *   drop the value. A writer never sees an L2 error, nor waits longer than the guard's bound.
 *
 * Awaited (the default), a write resolves once both halves are done. In the background
 * (`background: true`, or the cache's `backgroundWrites`), it resolves after the local half; the
 * remote half joins the write queue, and until it has run this process reads the written keys
 * (and the bumped generations) from the loader, never from the older L2 copy. A bump that L2
 * cannot take falls back to what always works once L2 is back: a queued namespace bump, the
 * local L1 dropped, a `clear` on the bus. A tag invalidation does the same.
 *
 * A tagged entry is written with the tag sequence this process knows (its T, see `TagTable`). A
 * tag invalidation holds its tags from its call until the store's new version is applied here:
 * meanwhile no entry with them stands in this process. Its message goes out alone, after the
 * store's script (two steps): a receiver that does not know the op drops the whole message.
 */
import type { Coherence } from '../coherence/coherence.js'
import { CacheClosedError } from '../errors.js'
import type { FamilyContext, KeyItem, WriteItem } from '../family.js'
import type { Keys } from '../keys.js'
import type { LocalTier } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import type { Generations } from '../l2/generations.js'
import type { RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import { type EntrySettings, entryTimes, refreshPoint, resolveSetOptions, type SetOptions } from '../options.js'
import type { PendingWrites } from '../pending-writes.js'
import type { Clock, RemoteEntry, StoreKey } from '../ports.js'
import { splitTags, type TagOptions, tagsOfEntry, unsupportedTags } from '../tags/tag-options.js'
import type { TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import type { RoundTrip, TripWork } from './round-trip.js'
import { WriteQueue } from './write-queue.js'

/** How often an overflowed queue's namespace bump is tried until it lands. */
const REPLAY_RETRY_MS = 250

export type Mutation =
  | { readonly kind: 'set'; readonly fc: FamilyContext; readonly items: readonly WriteItem[] }
  | { readonly kind: 'delete'; readonly fc: FamilyContext; readonly items: readonly KeyItem[] }
  /** Soft invalidation: the entries go stale, kept within grace while one reload runs. */
  | { readonly kind: 'expire'; readonly fc: FamilyContext; readonly items: readonly KeyItem[] }
  | { readonly kind: 'clear' }
  /** `name`: the generation bumped, a family's id or `<id>:<group>`. */
  | { readonly kind: 'bump'; readonly fc: FamilyContext; readonly name: string }
  /** Every entry with any of `tags`, written before, is gone. */
  | { readonly kind: 'tags'; readonly tags: readonly string[] }

export interface WritePathParts {
  readonly local: LocalTier
  readonly policy: ValuePolicy
  readonly coherence: Coherence
  readonly keys: Keys
  readonly generations: Generations
  readonly tags: TagTable
  readonly remote: RemoteTier | undefined
  /** One round trip for L2 changes and message, when the store and the bus can share one. */
  readonly trip: RoundTrip | undefined
  readonly pending: PendingWrites
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
  readonly writeQueueSize: number
}

/** A written (or deleted) entry after the local half: what the remote half writes. */
interface Written {
  readonly item: KeyItem
  /** Its L1 key, when the local half could name it. */
  readonly l1Key: string | undefined
  /** Its L2 key, likewise. */
  readonly storeKey: StoreKey | undefined
  readonly entry: RemoteEntry | undefined
}

/** One written entry's settings and tags. */
interface EntryOptionsOf {
  readonly settings: EntrySettings
  readonly tags: readonly string[] | undefined
}

const NO_OPTIONS = Object.freeze({ tags: undefined, rest: undefined })

/** The remote half's keys: L2 keys of `items`, L1 keys to announce. */
interface Located {
  readonly items: Written[]
  readonly stored: StoreKey[]
  readonly l1Keys: string[]
  unkeyed: boolean
}

export class WritePath {
  readonly #p: WritePathParts
  readonly #queue: WriteQueue

  constructor(parts: WritePathParts) {
    this.#p = parts
    this.#queue = new WriteQueue({
      pending: parts.pending,
      telemetry: parts.telemetry,
      life: parts.life,
      maxSize: parts.writeQueueSize,
      onOverflow: () => {
        // The dropped work is covered by one namespace bump; until it lands, L2 may serve what
        // the dropped writes replaced, so every key is read from the loader, and nothing else
        // (reads skip L2) would bring the bump about: try it until it lands.
        parts.pending.holdAll()
        parts.remote?.invalidateAll()
        this.#replayUntilCovered()
      },
    })
  }

  #replayUntilCovered(): void {
    const { remote, pending, life } = this.#p
    if (remote === undefined) {
      pending.releaseAll()
      return
    }
    void remote.replay().finally(() => {
      if (!pending.holdsAll || life.closed) return
      setTimeout(() => this.#replayUntilCovered(), REPLAY_RETRY_MS).unref?.()
    })
  }

  /** Background writes queued and not yet run. */
  get queued(): number {
    return this.#queue.depth
  }

  apply(mutation: Mutation, background = false): Promise<void> {
    if (this.#p.life.closed) return Promise.reject(new CacheClosedError())
    return this.#p.life.track(this.#run(mutation, background))
  }

  #run(m: Mutation, background: boolean): Promise<void> {
    switch (m.kind) {
      case 'set':
        return this.#set(m.fc, m.items, background)
      case 'delete':
        return this.#delete(m.fc, m.items, background)
      case 'expire':
        return this.#delete(m.fc, m.items, background, true)
      case 'clear':
        return this.#clear(background)
      case 'bump':
        return this.#bump(m.fc, m.name, background)
      case 'tags':
        return this.#invalidateTags(m.tags, background)
    }
  }

  /**
   * Runs the remote half now, or queues it (marking `l1Keys` as pending). An awaited write of a
   * key with background work still queued (and a `clear`, which concerns every key) waits its turn
   * in the queue: run at once, it could reach L2 before that older write, which would then
   * overwrite it. Other awaited writes do not wait for the queue.
   */
  #remote(background: boolean, l1Keys: readonly string[], run: (later: boolean) => Promise<void>, done?: () => void, all = false): Promise<void> {
    const behind = this.#queue.busy && (all || l1Keys.some((key) => this.#p.pending.holds(key)))
    if (!background && !behind) return run(false)
    if (background) {
      this.#queue.push({ run: () => run(true), l1Keys, ...(done === undefined ? {} : { done }) })
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      this.#queue.push({
        run: () => run(true),
        l1Keys,
        done: () => {
          done?.()
          resolve()
        },
      })
    })
  }

  async #set(fc: FamilyContext, items: readonly WriteItem[], background: boolean): Promise<void> {
    const { policy, keys, local, coherence, clock, tags: table } = this.#p
    // Every entry's options are checked before anything changes: a bad one later in a batch must
    // not leave the earlier ones in L1 but never in L2 nor announced on the bus.
    const resolved = items.map((item) => this.#entryOptions(fc, item))
    const tagged = resolved.some((r) => r.tags !== undefined)
    if (tagged && !table.supported) throw unsupportedTags()
    const tagVersion = tagged && table.needsSequence ? await table.tagVersionNow() : table.latest
    await this.#generationsOf(fc, items)
    const now = clock.now()
    const l1Keys: string[] = []
    const written = items.map((item, i): Written => {
      const { settings, tags } = resolved[i] as EntryOptionsOf
      const value = policy.seal(item.value)
      const { expiresAt, graceUntil } = entryTimes(settings, now)
      const l1Key = keys.l1Key(fc, item.id, item.params)
      if (l1Key !== undefined) {
        coherence.invalidateKey(l1Key)
        local.fill(l1Key, policy.keep(value), now, expiresAt, graceUntil, settings.l1Ttl, tags, tagVersion, refreshPoint(settings, now, expiresAt))
        l1Keys.push(l1Key)
      }
      const entry: RemoteEntry = tags === undefined ? { value, expiresAt, graceUntil } : { value, expiresAt, graceUntil, tags, tagVersion }
      return { item, l1Key, storeKey: this.#storeKeyOf(fc, item), entry }
    })
    await this.#remote(background, l1Keys, (later) => this.#setRemote(fc, written, later))
  }

  /** One written entry's settings and tags (its own and its family's), checked. */
  #entryOptions(fc: FamilyContext, item: WriteItem): EntryOptionsOf {
    const { tags, rest } = item.options === undefined ? NO_OPTIONS : splitTags<SetOptions>(item.options as SetOptions & TagOptions)
    const settings = rest === undefined ? fc.settings : resolveSetOptions(fc.settings, rest)
    return { settings, tags: tags === undefined && fc.tags === undefined ? undefined : tagsOfEntry(tags, fc.tags, item.params, item.value) }
  }

  async #setRemote(fc: FamilyContext, written: readonly Written[], later: boolean): Promise<void> {
    const { remote } = this.#p
    const located = await this.#locate(fc, written, later)
    const writes = located.stored.map((key, i) => ({ key, entry: (located.items[i] as Written).entry as RemoteEntry }))
    if (this.#tripReady(located) && (await this.#inOneTrip({ sets: writes, announce: located.l1Keys }, located))) return
    await remote?.write(
      'setMany',
      located.stored,
      (store) => (writes.length === 1 ? store.set((writes[0] as (typeof writes)[0]).key, (writes[0] as (typeof writes)[0]).entry) : store.setMany(writes)),
    )
    await this.#settle(located)
  }

  /**
   * A delete, or with `soft` an expiry (soft invalidation): locally the L1 copies go (or go stale,
   * kept) and their flights are voided; the remote half deletes (or expires) them in L2.
   */
  async #delete(fc: FamilyContext, items: readonly KeyItem[], background: boolean, soft = false): Promise<void> {
    const { keys, coherence } = this.#p
    await this.#generationsOf(fc, items)
    const l1Keys: string[] = []
    const deleted = items.map((item): Written => {
      const l1Key = keys.l1Key(fc, item.id, item.params)
      if (l1Key !== undefined) {
        if (soft) coherence.expireKey(l1Key)
        else coherence.invalidateKey(l1Key)
        l1Keys.push(l1Key)
      }
      return { item, l1Key, storeKey: this.#storeKeyOf(fc, item), entry: undefined }
    })
    await this.#remote(background, l1Keys, (later) => (soft ? this.#expireRemote(fc, deleted, later) : this.#deleteRemote(fc, deleted, later)))
  }

  async #deleteRemote(fc: FamilyContext, deleted: readonly Written[], later: boolean): Promise<void> {
    const located = await this.#locate(fc, deleted, later)
    if (this.#tripReady(located) && (await this.#inOneTrip({ deletes: located.stored, announce: located.l1Keys }, located))) return
    await this.#p.remote?.write('delete', located.stored, (store) => store.delete(located.stored))
    await this.#settle(located)
  }

  /**
   * The remote half of an expiry: the store marks its entries expired (a store without `expire`
   * deletes them: stricter, never laxer), then the message goes out alone: the receivers mark their
   * copies the same way. What L2 could not take is queued as deletes, like any write.
   */
  async #expireRemote(fc: FamilyContext, expired: readonly Written[], later: boolean): Promise<void> {
    const { remote, coherence, clock } = this.#p
    const located = await this.#locate(fc, expired, later)
    const at = clock.now()
    await remote?.write('expire', located.stored, (store) => (store.expire === undefined ? store.delete(located.stored) : store.expire(located.stored, at)))
    if (located.unkeyed) remote?.invalidateAll()
    if (located.l1Keys.length > 0) await coherence.publish({ op: 'expire', keys: located.l1Keys })
  }

  /**
   * The key the write means in L2: named when the write is made, so that a write run later still
   * lands in the generation it was made in (a bump made since, here or elsewhere, must leave it
   * behind, not carry it over).
   */
  #storeKeyOf(fc: FamilyContext, item: KeyItem): StoreKey | undefined {
    return this.#p.remote === undefined ? undefined : this.#p.keys.storeKey(fc, item.id, item.params)
  }

  /**
   * Where the written keys are in L2 and which L1 keys to announce. Run later (in the background),
   * it names the keys the local half could not (their generation was held, or not read yet),
   * after the bump queued before them has landed.
   */
  async #locate(fc: FamilyContext, written: readonly Written[], later: boolean): Promise<Located> {
    const { keys, remote } = this.#p
    if (later) await this.#generationsOf(fc, written.map((w) => w.item))
    const located: Located = { items: [], stored: [], l1Keys: [], unkeyed: false }
    for (const w of written) {
      const l1Key = w.l1Key ?? (later ? keys.l1Key(fc, w.item.id, w.item.params) : undefined)
      if (l1Key === undefined) {
        located.unkeyed = true
        continue
      }
      located.l1Keys.push(l1Key)
      if (remote === undefined) continue
      const storeKey = w.storeKey ?? (later ? keys.storeKey(fc, w.item.id, w.item.params) : undefined)
      if (storeKey === undefined) located.unkeyed = true
      else {
        located.items.push(w)
        located.stored.push(storeKey)
      }
    }
    return located
  }

  /** The pair can take this remote half in one round trip now. */
  #tripReady(located: Located): boolean {
    return this.#p.trip?.ready === true && (located.stored.length > 0 || located.l1Keys.length > 0)
  }

  /**
   * The remote half in one round trip: true once it was done (or failed, and what the failure
   * leaves was taken care of); false when it must take the two steps after all.
   */
  async #inOneTrip(work: TripWork, located: Located): Promise<boolean> {
    const outcome = await (this.#p.trip as RoundTrip).submit(work)
    if (outcome.kind === 'two-steps') return false
    if (located.unkeyed) this.#p.remote?.invalidateAll()
    return true
  }

  /** After the L2 changes: what has no known key is reached by a namespace bump; then the message. */
  async #settle(located: Located): Promise<void> {
    if (located.unkeyed) this.#p.remote?.invalidateAll()
    await this.#p.coherence.publishDelete(located.l1Keys)
  }

  async #clear(background: boolean): Promise<void> {
    const { coherence, generations } = this.#p
    coherence.flush('clear', true)
    // Until the store is cleared, its namespace generation would lead reads to the old values.
    if (background) generations.hold('')
    await this.#remote(background, [], () => this.#clearRemote(), background ? () => generations.release('') : undefined, true)
  }

  async #clearRemote(): Promise<void> {
    const { coherence, remote } = this.#p
    if (remote !== undefined) {
      try {
        await remote.clear()
      } catch {
        remote.invalidateAll()
      }
    }
    await coherence.publish({ op: 'clear' })
  }

  async #bump(fc: FamilyContext, name: string, background: boolean): Promise<void> {
    const { remote, generations, coherence } = this.#p
    if (remote === undefined) {
      const value = (generations.value(name) ?? 0) + 1
      generations.apply(name, value)
      await coherence.publish({ op: 'generation', name, value })
      return
    }
    // Until the bump is in L2, its older generation would still lead reads to the old entries.
    if (background) generations.hold(name)
    await this.#remote(background, [], () => this.#bumpRemote(fc, name), background ? () => generations.release(name) : undefined)
  }

  async #bumpRemote(fc: FamilyContext, name: string): Promise<void> {
    const { remote, generations, coherence, trip } = this.#p
    if (remote === undefined) return
    if (trip?.ready === true) {
      const outcome = await trip.submit({ bumps: [name] })
      if (outcome.kind === 'done') {
        generations.apply(name, outcome.bumps[0] as number)
        return
      }
      if (outcome.kind === 'failed') {
        // L2 is failing now: the clear goes out with the next resend rather than wait on it again.
        this.#bumpFailed(fc, name)
        coherence.hold({ op: 'clear' })
        return
      }
    }
    try {
      const value = await remote.bumpGeneration(name)
      generations.apply(name, value)
      await coherence.publish({ op: 'generation', name, value })
    } catch {
      this.#bumpFailed(fc, name)
      await coherence.publish({ op: 'clear' })
    }
  }

  async #invalidateTags(tags: readonly string[], background: boolean): Promise<void> {
    const { remote, tags: table, coherence } = this.#p
    if (!table.supported) throw unsupportedTags()
    if (remote === undefined) {
      const version = table.applyLocal(tags)
      await coherence.publish({ op: 'tags', tags, version })
      return
    }
    // From now until the new version is in, entries with these tags do not stand here.
    table.hold(tags)
    const release = () => table.release(tags)
    if (background) return this.#remote(true, [], () => this.#invalidateTagsRemote(tags), release)
    try {
      await this.#remote(false, [], () => this.#invalidateTagsRemote(tags))
    } finally {
      release()
    }
  }

  async #invalidateTagsRemote(tags: readonly string[]): Promise<void> {
    const { remote, tags: table, coherence, telemetry } = this.#p
    if (remote === undefined) return
    let version: number
    try {
      version = await remote.invalidateTags(tags)
    } catch {
      // What the versions would have reached, the namespace bump reaches once L2 is back. Until
      // it has landed L2 still serves the tagged entries as standing: this process reads every
      // key from the loader meanwhile, and tries the bump until it lands (as for a dropped queue).
      telemetry.logger.warn({ tags: tags.length }, 'tiercache tag invalidation failed; namespace bump queued')
      this.#p.pending.holdAll()
      remote.invalidateAll()
      this.#replayUntilCovered()
      coherence.flush('clear', true)
      await coherence.publish({ op: 'clear' })
      return
    }
    table.apply(tags, version)
    await coherence.publish({ op: 'tags', tags, version })
  }

  /** A bump L2 did not take: the namespace bump reaches what it would have; every L1 drops. */
  #bumpFailed(fc: FamilyContext, name: string): void {
    const { remote, coherence, telemetry } = this.#p
    telemetry.logger.warn({ family: fc.id, generation: name }, 'tiercache generation bump failed; namespace bump queued')
    remote?.invalidateAll()
    coherence.flush('clear', true)
  }

  /** Reads the generations the written keys need (their L1 and store keys depend on them). */
  #generationsOf(fc: FamilyContext, items: readonly { params: unknown }[]): Promise<boolean> {
    const { keys, generations, remote } = this.#p
    const names = fc.generational ? keys.generationNames(fc, items.map((i) => i.params)) : []
    if (remote !== undefined) names.push('')
    return names.length === 0 ? Promise.resolve(true) : generations.ensure(names)
  }
}
