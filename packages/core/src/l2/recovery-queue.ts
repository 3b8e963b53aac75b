import type { StoreKey } from '../ports.js'

/** What a replay must do, taken out of the queue at once. */
export interface RecoveryBatch {
  readonly keys: StoreKey[]
  /** The queue overflowed (or a clear failed): invalidate the whole namespace instead. */
  readonly bumpNamespace: boolean
}

/**
 * Deletes the store could not take, kept until it can: bounded, one slot per key. Overflow and a
 * failed `clear()` both collapse into one namespace-generation bump, which invalidates every key.
 */
export class RecoveryQueue {
  readonly #keys = new Map<string, StoreKey>()
  readonly #maxSize: number
  #bumpNamespace = false

  constructor(maxSize: number) {
    this.#maxSize = maxSize
  }

  get depth(): number {
    return this.#keys.size + (this.#bumpNamespace ? 1 : 0)
  }

  get isEmpty(): boolean {
    return this.#keys.size === 0 && !this.#bumpNamespace
  }

  add(keys: readonly StoreKey[]): void {
    if (this.#bumpNamespace) return
    for (const key of keys) {
      this.#keys.set(`${key.family}\u0000${key.generation}\u0000${key.id}`, key)
      if (this.#keys.size > this.#maxSize) {
        this.invalidateAll()
        return
      }
    }
  }

  invalidateAll(): void {
    this.#keys.clear()
    this.#bumpNamespace = true
  }

  take(): RecoveryBatch {
    const batch = { keys: [...this.#keys.values()], bumpNamespace: this.#bumpNamespace }
    this.#keys.clear()
    this.#bumpNamespace = false
    return batch
  }

  /** Puts back a batch whose replay failed. */
  restore(batch: RecoveryBatch): void {
    if (batch.bumpNamespace) this.invalidateAll()
    else this.add(batch.keys)
  }
}
