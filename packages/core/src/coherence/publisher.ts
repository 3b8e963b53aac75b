import { isCallerDataError } from '../l2/guard.js'
import type { Invalidation } from '../ports.js'

/** How a message reaches the bus: with L2, through the guard (its timeout and breaker). */
export interface Transport {
  /** Hands a message over; rejects when it could not be (already counted and logged). */
  send(message: Invalidation): Promise<void>
  /** The transport is known to be down (the breaker is open): do not try now. */
  readonly down: boolean
  /**
   * Runs before held messages are sent again; never rejects. With L2: the deletes L2 missed are
   * replayed first, or a receiver told to drop its copy would read the old L2 value again.
   */
  beforeResend?(): Promise<void>
}

/** Messages kept for later beyond this many collapse into one `clear`. */
const MAX_HELD = 1000
/** How often held messages are tried again when nothing else brings them out. */
const RETRY_MS = 250

/**
 * The one batcher of outgoing messages. The key invalidations issued within one turn of the
 * event loop go out as one message; writers wait for the batch to be handed to the transport,
 * never longer than the transport's own bound (the guard's `l2Timeout`). A message the transport
 * could not take is held, not lost: `resend()` (the breaker closed, the bus healthy again, a
 * later send went through, or a retry every 250 ms while any is held) sends it then. Receivers apply messages idempotently, so a message
 * that in fact arrived before its timeout costs only a second, harmless delivery.
 */
export class Publisher {
  readonly #transport: Transport
  /** Counts each message handed to the transport (`stats().busMessagesSent`). */
  readonly #sent: () => void
  #keys: string[] = []
  #batch: Promise<void> | undefined
  #fire: (() => void) | undefined
  #timer: ReturnType<typeof setImmediate> | undefined
  #held: Invalidation[] = []
  #resending = false
  #retry: ReturnType<typeof setTimeout> | undefined
  #stopped = false

  constructor(transport: Transport, sent: () => void) {
    this.#transport = transport
    this.#sent = sent
  }

  get heldCount(): number {
    return this.#held.length
  }

  deleteKeys(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#keys.push(key)
    if (this.#batch === undefined) {
      this.#batch = new Promise<void>((resolve) => {
        this.#fire = () => {
          const message: Invalidation = { op: 'delete', keys: this.#keys }
          this.#keys = []
          this.#batch = undefined
          this.#fire = undefined
          this.#timer = undefined
          this.send(message).then(resolve)
        }
      })
      this.#timer = setImmediate(() => this.#fire?.())
    }
    return this.#batch
  }

  /** Sends a message now, outside any batch. Never rejects; what cannot go now is held. */
  send(message: Invalidation): Promise<void> {
    if (this.#transport.down) {
      this.hold(message)
      return Promise.resolve()
    }
    return this.#try(message).then(
      () => {
        if (this.#held.length > 0) void this.resend()
      },
      (error: unknown) => this.#failed(message, error),
    )
  }

  /**
   * Sends the held messages, oldest first; what fails again stays held. Resolves when done (or
   * at once when a resend is already under way or the transport is down).
   */
  resend(): Promise<void> {
    if (this.#resending || this.#held.length === 0 || this.#transport.down) return Promise.resolve()
    this.#resending = true
    const next = (held: readonly Invalidation[], i: number): Promise<void> => {
      if (i >= held.length) return Promise.resolve()
      const message = held[i] as Invalidation
      return this.#try(message).then(
        () => next(held, i + 1),
        (error: unknown) => {
          this.#failed(message, error)
          for (const rest of held.slice(i + 1)) this.hold(rest)
        },
      )
    }
    const before = this.#transport.beforeResend?.() ?? Promise.resolve()
    return before
      .then(() => {
        const held = this.#held
        this.#held = []
        return next(held, 0)
      })
      .finally(() => {
        this.#resending = false
        // Held meanwhile (or again): the retry timer brings them out.
        if (this.#held.length > 0) this.#scheduleRetry()
      })
  }

  /** The transport's send, a synchronous throw turned into a rejection. */
  #try(message: Invalidation): Promise<void> {
    this.#sent()
    try {
      return this.#transport.send(message)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** A message that could not go: held, unless the message itself is at fault (it never would). */
  #failed(message: Invalidation, error: unknown): void {
    if (isCallerDataError(error)) return
    this.hold(message)
  }

  /** Sends the pending batch now (on close); resolves once it was handed over. */
  flush(): Promise<void> {
    const batch = this.#batch
    if (this.#timer !== undefined) clearImmediate(this.#timer)
    this.#fire?.()
    return batch ?? Promise.resolve()
  }

  /** Keeps a message that could not go (here, or in a round trip that failed) for the next resend. */
  hold(message: Invalidation): void {
    if (this.#held.length >= MAX_HELD || message.op === 'clear') this.#held = [{ op: 'clear' }]
    else if (!(this.#held.length === 1 && this.#held[0]?.op === 'clear')) this.#held.push(message)
    this.#scheduleRetry()
  }

  #scheduleRetry(): void {
    if (this.#retry !== undefined || this.#stopped) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#held.length === 0) return
      if (this.#transport.down || this.#resending) this.#scheduleRetry()
      else void this.resend()
    }, RETRY_MS)
    this.#retry.unref?.()
  }

  /** Stops retrying (on close). */
  stop(): void {
    this.#stopped = true
    if (this.#retry !== undefined) clearTimeout(this.#retry)
    this.#retry = undefined
  }
}
