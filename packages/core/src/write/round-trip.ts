/**
 * One round trip for the remote work of the writes made in one event-loop turn: their L2 changes
 * (sets, deletes, generation bumps, in the order the writes were made) and the one bus message
 * that announces them, published last, so that no process hears of a change before L2 has it.
 * The bump's new value travels in that message, so it cannot be sent ahead: the store writes it
 * into the message the bus prepared (`InvalidationBus.prepare`, `RemoteStore.apply`).
 *
 * A trip keeps the order of the writes for each key: a set of a key deleted earlier in the same
 * turn starts a batch of its own (the store applies sets, then deletes, then bumps), sent right
 * after the first on the same connection, so Redis runs them in that order (still one round trip). A trip carries at most `MAX_CHANGES` changes, so that one
 * script neither holds Redis long nor makes a message receivers would refuse; a larger write
 * (a big `setMany`) takes the two steps, whose store calls are pipelined.
 *
 * Only a store and a bus that share a way to Redis can do that (`possible`); `ready` says whether
 * the breaker lets a trip try now. Otherwise the write path takes its two steps: the store's
 * calls, then the publisher. A trip that fails costs what a failed two-step write costs: the
 * keys' deletes are queued for recovery (by the remote tier), the message is held for resending,
 * and the writers of bumps fall back to the namespace bump.
 */
import type { Coherence } from '../coherence/coherence.js'
import { isCallerDataError } from '../l2/guard.js'
import type { RemoteTier } from '../l2/remote-tier.js'
import type { Invalidation, InvalidationBus, PreparedMessage, RemoteEntry, RemoteStore, StoreChanges, StoreKey } from '../ports.js'

/** The remote work of one write. */
export interface TripWork {
  readonly sets?: readonly { readonly key: StoreKey; readonly entry: RemoteEntry }[]
  readonly deletes?: readonly StoreKey[]
  readonly bumps?: readonly string[]
  /** L1 keys the message tells the other processes to drop. */
  readonly announce?: readonly string[]
}

export type TripOutcome =
  /** In L2 and announced; `bumps`: the new values of the work's bumps, in order. */
  | { readonly kind: 'done'; readonly bumps: readonly number[] }
  /** L2 did not take it: the keys' deletes are queued, the message is held. Bumps are the writer's. */
  | { readonly kind: 'failed' }
  /** Nothing was sent (the caller's data was refused, or the pair cannot prepare this message): take the two steps. */
  | { readonly kind: 'two-steps' }

const FAILED: TripOutcome = Object.freeze({ kind: 'failed' })
const TWO_STEPS: TripOutcome = Object.freeze({ kind: 'two-steps' })
const NO_BUMPS: readonly number[] = Object.freeze([])

/** Changes (sets, deletes, bumps) one trip carries at most. */
export const MAX_CHANGES = 512

interface Queued {
  readonly work: TripWork
  readonly resolve: (outcome: TripOutcome) => void
}

/** The writes of one trip, and what decides whether the next write may join it. */
interface Batch {
  readonly queued: Queued[]
  changes: number
  /** Store keys deleted in this trip: a later set of one of them needs a trip of its own. */
  readonly deleted: Set<string>
}

const keyId = (key: StoreKey): string => `${key.family}\u0000${key.generation}\u0000${key.id}`

const changesOf = (work: TripWork): number => (work.sets?.length ?? 0) + (work.deletes?.length ?? 0) + (work.bumps?.length ?? 0)

export class RoundTrip {
  readonly #remote: RemoteTier
  readonly #store: RemoteStore
  readonly #bus: InvalidationBus
  readonly #coherence: Coherence
  #batches: Batch[] = []
  #scheduled = false

  constructor(remote: RemoteTier, bus: InvalidationBus, coherence: Coherence) {
    this.#remote = remote
    this.#store = remote.guard.store
    this.#bus = bus
    this.#coherence = coherence
  }

  /** The pair can carry writes in one trip. */
  static possible(store: RemoteStore, bus: InvalidationBus | undefined): boolean {
    return typeof store.apply === 'function' && typeof bus?.prepare === 'function'
  }

  /** The breaker lets a trip try now. */
  get ready(): boolean {
    return !this.#remote.isOpen
  }

  /**
   * Joins the trip of this turn; resolves how it went. Never rejects. The trip leaves on
   * process.nextTick: submits come from promise continuations, and a tick queued from one runs
   * once the microtask queue has drained, so the writes of one turn (a `Promise.all` of them, at
   * any promise depth) are in it, and none waits for the event loop's next phase.
   */
  submit(work: TripWork): Promise<TripOutcome> {
    const changes = changesOf(work)
    if (changes > MAX_CHANGES) return Promise.resolve(TWO_STEPS)
    return new Promise<TripOutcome>((resolve) => {
      let batch = this.#batches.at(-1)
      if (batch === undefined || batch.changes + changes > MAX_CHANGES || (work.sets?.some((set) => batch?.deleted.has(keyId(set.key))) ?? false)) {
        batch = { queued: [], changes: 0, deleted: new Set() }
        this.#batches.push(batch)
      }
      batch.queued.push({ work, resolve })
      batch.changes += changes
      if (work.deletes !== undefined) for (const key of work.deletes) batch.deleted.add(keyId(key))
      if (this.#scheduled) return
      this.#scheduled = true
      process.nextTick(() => this.#sendAll())
    })
  }

  #sendAll(): void {
    const batches = this.#batches
    this.#batches = []
    this.#scheduled = false
    // In order, on the same connection: Redis runs them in the order they were sent.
    for (const batch of batches) this.#send(batch.queued)
  }

  #send(queued: readonly Queued[]): void {
    const sets: { key: StoreKey; entry: RemoteEntry }[] = []
    const deletes: StoreKey[] = []
    const bumps: string[] = []
    const announce: string[] = []
    for (const { work } of queued) {
      if (work.sets !== undefined) for (const set of work.sets) sets.push(set)
      if (work.deletes !== undefined) for (const key of work.deletes) deletes.push(key)
      if (work.bumps !== undefined) for (const name of work.bumps) bumps.push(name)
      if (work.announce !== undefined) for (const key of work.announce) announce.push(key)
    }
    const messages: Invalidation[] = []
    if (announce.length > 0) messages.push({ op: 'delete', keys: announce })
    for (const name of bumps) messages.push({ op: 'generation', name, value: 0 })
    let prepared: PreparedMessage | undefined
    try {
      prepared = messages.length === 0 ? undefined : (this.#bus.prepare as NonNullable<InvalidationBus['prepare']>).call(this.#bus, messages, this.#store)
    } catch {
      prepared = undefined
    }
    if (messages.length > 0 && prepared === undefined) {
      for (const q of queued) q.resolve(TWO_STEPS)
      return
    }
    const changes: StoreChanges = { sets, deletes, bumps }
    if (prepared !== undefined) this.#coherence.sent()
    this.#remote
      .apply(changes, prepared)
      .then(
        (values) => {
          // A store that answers something else has not done what was asked: taken as failed.
          if (!Array.isArray(values) || values.length !== bumps.length) throw new TypeError(`apply() resolved ${String(values)} for ${bumps.length} bumps`)
          let at = 0
          for (const q of queued) {
            const n = q.work.bumps?.length ?? 0
            q.resolve({ kind: 'done', bumps: n === 0 ? NO_BUMPS : values.slice(at, at + n) })
            at += n
          }
          // What was held before now has a way out.
          if (this.#coherence.heldMessages > 0) this.#coherence.resendHeld()
        },
        (error: unknown) => {
          if (isCallerDataError(error)) {
            for (const q of queued) q.resolve(TWO_STEPS)
            return
          }
          this.#failed(queued, announce)
        },
      )
      .catch(() => this.#failed(queued, announce))
  }

  /** The message may have gone out or not: held, it goes out again (receivers are idempotent). */
  #failed(queued: readonly Queued[], announce: readonly string[]): void {
    if (announce.length > 0) this.#coherence.hold({ op: 'delete', keys: announce })
    // Resolving a settled promise again does nothing: writers already answered keep their answer.
    for (const q of queued) q.resolve(FAILED)
  }
}
