/**
 * The keys whose background writes this process has queued and not yet run. Until a key's
 * queued work has reached L2, L2 still holds what the write replaced: reads of the key in this
 * process then skip L2 (a `get` misses, a `getOrSet` loads), so a writer always reads its own
 * write. Counted per key: two queued writes of a key release it once both have run.
 */
import { Holds } from './holds.js'

export class PendingWrites {
  readonly #keys = new Holds()
  /** Queued work was dropped for a namespace bump not made yet: every key is held until it is. */
  #all = false

  get size(): number {
    return this.#keys.size
  }

  holds(l1Key: string): boolean {
    return this.#all || this.#keys.has(l1Key)
  }

  get holdsAll(): boolean {
    return this.#all
  }

  holdAll(): void {
    this.#all = true
  }

  /** The namespace generation moved: nothing L2 served before can be read any more. */
  releaseAll(): void {
    this.#all = false
  }

  mark(l1Keys: readonly string[]): void {
    this.#keys.add(l1Keys)
  }

  release(l1Keys: readonly string[]): void {
    this.#keys.remove(l1Keys)
  }

}
