/**
 * The remote tier as the engine sees it: every call through the one guard (timeout + breaker),
 * answers checked against the family schema, and the writes L2 missed kept for later.
 *
 * - `read()` answers `fresh | stale | miss | down`; `down` means "skip L2 for this call", and the
 *   failure is already logged and counted (by the guard's hooks). A value that fails the family
 *   schema is a miss, counted and deleted. A tagged entry an applied tag invalidation voids is a
 *   miss; one whose tags the table cannot tell has them read first (`TagTable.ensure`).
 * - `write()` runs an L2 write or delete; when it cannot (breaker open, failure) the keys' L2
 *   copies are wrong, so their deletes go to the recovery queue, replayed when the breaker closes
 *   or a later call succeeds. Overflow turns into one namespace-generation bump, which reaches
 *   every key at once. Writers never see L2 errors.
 */
import { L2UnavailableError } from '../errors.js'
import type { FamilyContext } from '../family.js'
import type { Lifecycle } from '../lifecycle.js'
import type { PendingWrites } from '../pending-writes.js'
import type { Clock, Invalidation, PreparedMessage, RemoteEntry, RemoteStore, StoreChanges, StoreInfo, StoreInfoOptions, StoreKey } from '../ports.js'
import type { BreakerState } from '../stats.js'
import { type TagCheck, TAGS_OK, TAGS_UNKNOWN, type TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import type { Generations } from './generations.js'
import { isCallerDataError, type L2Guard } from './guard.js'
import type { RecoveryQueue } from './recovery-queue.js'

export type RemoteRead =
  | { readonly kind: 'fresh' | 'stale'; readonly entry: RemoteEntry; readonly value: unknown }
  | { readonly kind: 'miss' }
  | { readonly kind: 'down' }

export const MISS: RemoteRead = Object.freeze({ kind: 'miss' })
export const DOWN: RemoteRead = Object.freeze({ kind: 'down' })

export interface RemoteTierParts {
  readonly guard: L2Guard
  readonly recovery: RecoveryQueue
  readonly generations: Generations
  readonly tags: TagTable
  /** Tells the other processes (the bus), e.g. of the namespace bump a replay made. Never rejects. */
  readonly announce: (message: Invalidation) => Promise<void>
  readonly pending: PendingWrites
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
  readonly name: string
}

const INVALID: unique symbol = Symbol('invalid')

export class RemoteTier {
  readonly guard: L2Guard
  readonly #p: RemoteTierParts
  /** The replay under way: a second caller waits for it rather than start another. */
  #replaying: Promise<void> | undefined

  constructor(parts: RemoteTierParts) {
    this.#p = parts
    this.guard = parts.guard
  }

  /** The breaker refuses calls: skip L2 instead of queuing behind it. */
  get isOpen(): boolean {
    return this.guard.isOpen
  }

  // Not async: on the L2-hit path every await is one more promise and microtask per read.
  read(fc: FamilyContext, key: StoreKey): Promise<RemoteRead> {
    return this.guard.run('get', (store) => store.get(key)).then(
      (entry) => this.#answered(fc, key, entry),
      () => {
        this.#p.telemetry.count(fc, 'l2Errors')
        return DOWN
      },
    )
  }

  /** Reads several keys in one call; every answer `down` when the call failed. */
  async readMany(fc: FamilyContext, keys: readonly StoreKey[]): Promise<RemoteRead[]> {
    let entries: (RemoteEntry | undefined)[]
    try {
      entries = await this.guard.run('getMany', (store) => store.getMany(keys))
    } catch {
      this.#p.telemetry.count(fc, 'l2Errors')
      return keys.map(() => DOWN)
    }
    const checks = entries.map((entry) => this.#tagCheck(entry))
    // The tags the table cannot tell, of every entry, in one read; then those entries again.
    const unknown = new Set<string>()
    checks.forEach((check, i) => {
      if (check === TAGS_UNKNOWN) for (const tag of (entries[i] as RemoteEntry).tags as readonly string[]) unknown.add(tag)
    })
    if (unknown.size > 0) {
      await this.#p.tags.ensure([...unknown])
      checks.forEach((check, i) => {
        if (check === TAGS_UNKNOWN) checks[i] = this.#tagCheck(entries[i])
      })
    }
    return keys.map((key, i) => this.#settled(fc, key, entries[i], checks[i] as TagCheck))
  }

  /** Writes or deletes `keys` in L2 with `action`; what it cannot, it queues as deletes. */
  async write(operation: string, keys: readonly StoreKey[], action: (store: RemoteStore) => Promise<void>): Promise<void> {
    if (keys.length === 0) return
    if (this.guard.isOpen) {
      this.#p.recovery.add(keys)
      return
    }
    try {
      await this.guard.run(operation, action)
      if (!this.#p.recovery.isEmpty) void this.replay()
    } catch {
      this.#p.recovery.add(keys)
    }
  }

  /**
   * Applies the changes of a round trip and publishes its message (`RemoteStore.apply`); resolves
   * the bumped values. When it cannot (breaker open, failure), the written and deleted keys'
   * deletes are queued, as for `write()`, and it rejects (a failure counted by the guard; an open
   * breaker refuses without a call) for the caller to fall back on what is left: the message and
   * the bumps. Refused for the caller's data, nothing was sent and nothing is queued.
   */
  apply(changes: StoreChanges, message: PreparedMessage | undefined): Promise<number[]> {
    const keys = [...changes.sets.map((set) => set.key), ...changes.deletes]
    if (this.guard.isOpen) {
      this.#p.recovery.add(keys)
      return Promise.reject(new L2UnavailableError('L2 apply skipped: circuit breaker open'))
    }
    return this.guard.run('apply', (store) => (store.apply as NonNullable<RemoteStore['apply']>).call(store, changes, message)).then(
      (values) => {
        if (!this.#p.recovery.isEmpty) void this.replay()
        return values
      },
      (error: unknown) => {
        // Refused for the caller's data, nothing was sent: the caller takes the two steps instead.
        if (!isCallerDataError(error)) this.#p.recovery.add(keys)
        throw error
      },
    )
  }

  /** The L2 copies of the whole namespace may be wrong: only a namespace bump reaches them now. */
  invalidateAll(): void {
    this.#p.recovery.invalidateAll()
  }

  /** Empties the store's namespace. Rejects (already counted) when L2 cannot. */
  clear(): Promise<void> {
    if (this.guard.isOpen) return Promise.reject(new L2UnavailableError('L2 clear skipped: circuit breaker open'))
    return this.guard.run('clear', (store) => store.clear())
  }

  /** Bumps a generation in the store and says its new value. Rejects (already counted) when L2 cannot. */
  bumpGeneration(name: string): Promise<number> {
    if (this.guard.isOpen) return Promise.reject(new L2UnavailableError('L2 bumpGeneration skipped: circuit breaker open'))
    return this.guard.run('bumpGeneration', (store) => store.bumpGeneration(name))
  }

  /** Gives `tags` the next version of the tag sequence in the store; resolves it. Rejects (already counted) when L2 cannot. */
  invalidateTags(tags: readonly string[]): Promise<number> {
    if (this.guard.isOpen) return Promise.reject(new L2UnavailableError('L2 invalidateTags skipped: circuit breaker open'))
    return this.guard.run('invalidateTags', (store) => (store.invalidateTags as NonNullable<RemoteStore['invalidateTags']>).call(store, tags))
  }

  /**
   * Runs the queued deletes (or the namespace bump); resolves once they ran (the replay under way,
   * when there is one). Never rejects; a failed replay is kept.
   */
  replay(): Promise<void> {
    if (this.#replaying !== undefined) return this.#replaying
    const { recovery, life } = this.#p
    if (recovery.isEmpty || this.guard.isOpen || life.closed) return Promise.resolve()
    const replaying = this.#replay().finally(() => {
      if (this.#replaying === replaying) this.#replaying = undefined
    })
    this.#replaying = replaying
    return replaying
  }

  async #replay(): Promise<void> {
    const { recovery, generations, announce, telemetry } = this.#p
    const batch = recovery.take()
    try {
      if (batch.bumpNamespace) {
        const value = await this.bumpGeneration('')
        generations.apply('', value)
        // Background writes dropped for this bump are covered now.
        this.#p.pending.releaseAll()
        await announce({ op: 'generation', name: '', value })
      } else if (batch.keys.length > 0) {
        await this.guard.run('delete', (store) => store.delete(batch.keys))
      }
      telemetry.logger.info({ keys: batch.keys.length, generationBumped: batch.bumpNamespace }, 'tiercache recovery queue replayed')
      telemetry.emit('recovery-replayed', { keys: batch.keys.length, generationBumped: batch.bumpNamespace })
    } catch {
      recovery.restore(batch)
    }
  }

  /** The breaker moved: told, and once closed the queued writes are replayed. */
  breakerChanged(state: BreakerState): void {
    this.#p.telemetry.logger.warn({ state, cache: this.#p.name }, `tiercache L2 circuit breaker ${state}`)
    this.#p.telemetry.emit('breaker', { state })
    if (state === 'closed') void this.replay()
  }

  deleteByPattern(glob: string): Promise<number> {
    const store = this.guard.store
    if (store.deleteByPattern === undefined) return Promise.resolve(0)
    return this.guard.run('deleteByPattern', (s) => (s.deleteByPattern as (g: string) => Promise<number>).call(s, glob))
  }

  /** Current values of generations, read from the store (not memory). Rejects when L2 cannot. */
  generations(names: readonly string[]): Promise<number[]> {
    if (this.guard.isOpen) return Promise.reject(new L2UnavailableError('L2 getGenerations skipped: circuit breaker open'))
    return this.guard.run('getGenerations', (store) => store.getGenerations(names))
  }

  /** Deletes the family's values of older generations; 0 when the store cannot. */
  purgeFamily(family: string, keep: string): Promise<number> {
    const store = this.guard.store
    if (store.purgeFamily === undefined) return Promise.resolve(0)
    return this.guard.run('purgeFamily', (s) => (s.purgeFamily as (f: string, k: string) => Promise<number>).call(s, family, keep))
  }

  info(options?: StoreInfoOptions): Promise<StoreInfo | undefined> {
    if (this.guard.store.info === undefined) return Promise.resolve(undefined)
    return this.guard.run('info', (s) => (s.info as (o?: StoreInfoOptions) => Promise<StoreInfo>).call(s, options))
  }

  get recoveryQueueDepth(): number {
    return this.#p.recovery.depth
  }

  #answered(fc: FamilyContext, key: StoreKey, entry: RemoteEntry | undefined): RemoteRead | Promise<RemoteRead> {
    // A store that answers again may take the deletes it missed (the breaker may never have opened).
    if (!this.#p.recovery.isEmpty) void this.replay()
    const check = this.#tagCheck(entry)
    if (check === TAGS_UNKNOWN) {
      const tagged = entry as RemoteEntry
      return this.#p.tags.ensure(tagged.tags as readonly string[]).then(() => this.#settled(fc, key, tagged, this.#tagCheck(tagged)))
    }
    return this.#settled(fc, key, entry, check)
  }

  /** Whether an entry's tags stand (an untagged or absent entry's do). */
  #tagCheck(entry: RemoteEntry | undefined): TagCheck {
    return entry?.tags === undefined ? TAGS_OK : this.#p.tags.check(entry.tags, entry.tagVersion ?? 0, false)
  }

  /** The answer for an entry, given what its tags are known to be: a miss unless they stand. */
  #settled(fc: FamilyContext, key: StoreKey, entry: RemoteEntry | undefined, tags: TagCheck): RemoteRead {
    if (entry === undefined || tags !== TAGS_OK) return MISS
    const value = this.#validate(fc, key, entry.value)
    if (value === INVALID) return MISS
    return { kind: entry.expiresAt > this.#p.clock.now() ? 'fresh' : 'stale', entry, value }
  }

  #validate(fc: FamilyContext, key: StoreKey, value: unknown): unknown {
    if (fc.schema === undefined) return value
    const result = fc.schema.safeParse(value)
    if (result.success) return result.data
    this.#p.telemetry.count(fc, 'schemaFailures')
    this.#p.telemetry.logger.warn({ family: fc.id, key: key.id, err: result.error }, 'tiercache L2 value failed the family schema')
    this.guard.run('delete', (store) => store.delete([key])).catch(() => this.#p.recovery.add([key]))
    return INVALID
  }
}
