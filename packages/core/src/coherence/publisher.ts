import type { Invalidation, InvalidationBus, Logger } from '../ports.js'

/**
 * Coalesces the key invalidations issued within one turn of the event loop into one bus
 * message. Writers wait for the batch to be handed to the transport; a failed publish is
 * reported, never thrown at them (the bus's health signal covers a transport that drops).
 */
export class Publisher {
  readonly #bus: InvalidationBus
  readonly #onError: (error: unknown) => void
  #keys: string[] = []
  #batch: Promise<void> | undefined
  #fire: (() => void) | undefined
  #timer: ReturnType<typeof setImmediate> | undefined

  constructor(bus: InvalidationBus, onError: (error: unknown) => void, _logger: Logger) {
    this.#bus = bus
    this.#onError = onError
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

  /** Sends a message now, outside any batch. Never rejects. */
  send(message: Invalidation): Promise<void> {
    let sent: Promise<void>
    try {
      sent = this.#bus.publish(message)
    } catch (error) {
      sent = Promise.reject(error)
    }
    return sent.catch(this.#onError)
  }

  /** Sends the pending batch now (on close); resolves once it was handed over. */
  flush(): Promise<void> {
    const batch = this.#batch
    if (this.#timer !== undefined) clearImmediate(this.#timer)
    this.#fire?.()
    return batch ?? Promise.resolve()
  }
}
