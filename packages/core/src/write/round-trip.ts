/**
 * One round trip for the remote work of the writes made in one event-loop turn: their L2 changes
 * (sets, deletes, generation bumps, in the order the writes were made) and the one bus message
 * that announces them, published last, so that no process hears of a change before L2 has it.
 * The bump's new value travels in that message, so it cannot be sent ahead: the store writes it
 * into the message the bus prepared (`InvalidationBus.prepare`, `RemoteStore.apply`).
 *
 * Only a store and a bus that share a way to Redis can do that; `ready` says whether this pair
 * can now (the breaker closed too). Otherwise the write path takes its two steps: the store's
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

interface Queued {
  readonly work: TripWork
  readonly resolve: (outcome: TripOutcome) => void
}

export class RoundTrip {
  readonly #remote: RemoteTier
  readonly #store: RemoteStore
  readonly #bus: InvalidationBus
  readonly #coherence: Coherence
  #queued: Queued[] = []
  #scheduled = false

  constructor(remote: RemoteTier, bus: InvalidationBus, coherence: Coherence) {
    this.#remote = remote
    this.#store = remote.guard.store
    this.#bus = bus
    this.#coherence = coherence
  }

  /** The pair can carry a write in one trip, and the breaker lets it try now. */
  static possible(store: RemoteStore, bus: InvalidationBus | undefined): boolean {
    return typeof store.apply === 'function' && typeof bus?.prepare === 'function'
  }

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
    return new Promise<TripOutcome>((resolve) => {
      this.#queued.push({ work, resolve })
      if (this.#scheduled) return
      this.#scheduled = true
      process.nextTick(() => this.#send())
    })
  }

  #send(): void {
    const queued = this.#queued
    this.#queued = []
    this.#scheduled = false
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
    this.#remote.apply(changes, prepared).then(
      (values) => {
        let at = 0
        for (const q of queued) {
          const n = q.work.bumps?.length ?? 0
          q.resolve({ kind: 'done', bumps: n === 0 ? NO_BUMPS : values.slice(at, at + n) })
          at += n
        }
      },
      (error: unknown) => {
        if (isCallerDataError(error)) {
          for (const q of queued) q.resolve(TWO_STEPS)
          return
        }
        // The message may have gone out or not: held, it goes out again (receivers are idempotent).
        if (announce.length > 0) this.#coherence.hold({ op: 'delete', keys: announce })
        for (const q of queued) q.resolve(FAILED)
      },
    )
  }
}
