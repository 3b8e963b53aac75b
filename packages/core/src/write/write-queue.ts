/**
 * The queue of background writes: their remote work (L2 changes, bus message) in the order the
 * writes were made, one at a time, so that the writes of a key reach L2 in order. Bounded: a
 * write past `maxSize` drops what is queued for one namespace-generation bump (`onOverflow`),
 * which reaches every key at once. `close()` lets it run out (the cache tracks its runs).
 */
import type { Lifecycle } from '../lifecycle.js'
import type { PendingWrites } from '../pending-writes.js'
import type { Telemetry } from '../telemetry.js'

export interface QueuedWrite {
  /** The remote work. A rejection is reported, never thrown at anyone. */
  readonly run: () => Promise<void>
  /** Keys this process reads from the loader, not L2, until the work has run. */
  readonly l1Keys: readonly string[]
  /** Runs once the work has run or was dropped (releases what the write held). */
  readonly done?: () => void
}

export interface WriteQueueParts {
  readonly pending: PendingWrites
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly maxSize: number
  /** The queue overflowed and was dropped: the caller makes sure L2 cannot serve what it held. */
  readonly onOverflow: () => void
}

export class WriteQueue {
  readonly #p: WriteQueueParts
  #items: QueuedWrite[] = []
  #running = false

  constructor(parts: WriteQueueParts) {
    this.#p = parts
  }

  /** Writes queued or running, not yet done. */
  get depth(): number {
    return this.#items.length + (this.#running ? 1 : 0)
  }

  /** Work is queued or running: a write that must not overtake it joins the queue. */
  get busy(): boolean {
    return this.#running || this.#items.length > 0
  }

  push(write: QueuedWrite): void {
    if (this.#items.length >= this.#p.maxSize) {
      const dropped = this.#items
      this.#items = []
      for (const item of dropped) this.#finish(item)
      // This write marked nothing yet: only its own `done` runs.
      write.done?.()
      this.#p.telemetry.logger.warn({ dropped: dropped.length + 1 }, 'tiercache background write queue full; namespace bump queued')
      this.#p.onOverflow()
      return
    }
    this.#p.pending.mark(write.l1Keys)
    this.#items.push(write)
    if (!this.#running) void this.#p.life.track(this.#drain())
  }

  async #drain(): Promise<void> {
    this.#running = true
    try {
      for (let item = this.#items.shift(); item !== undefined; item = this.#items.shift()) {
        try {
          await item.run()
        } catch (error) {
          this.#p.telemetry.background('background write', error)
        } finally {
          this.#finish(item)
        }
      }
    } finally {
      this.#running = false
    }
  }

  #finish(item: QueuedWrite): void {
    this.#p.pending.release(item.l1Keys)
    item.done?.()
  }
}
