/**
 * The generations in memory: the namespace's (`''`), each generational family's and group's.
 *
 * They are read lazily from L2 through the guard, kept, and moved forward by bus messages and by
 * this process's own bumps (never backwards: a late read must not undo a bump). While the bus is
 * unhealthy a bump elsewhere may go unheard, so a value read longer ago than `cap` counts as
 * unknown and is read again. A moved namespace generation drops the whole L1 (`onNamespaceMoved`):
 * the default family's L1 keys carry none. Without L2 they live here alone, starting at 0.
 *
 * A generation this process is bumping in the background is held: unknown (its keys skip the
 * cache) until the bump has reached L2, since until then L2 still serves the older generation.
 */
import type { Clock } from '../ports.js'
import { Holds } from '../holds.js'
import type { L2Guard } from './guard.js'

interface Known {
  readonly value: number
  readonly readAt: number
}

/** Separates the names of one batched read in the map of reads in progress. */
const NAMES_SEP = '\u0001'

export class Generations {
  /** How long a value read from L2 is trusted: `Infinity` while the bus is healthy. Set by coherence. */
  cap = Infinity
  readonly #known = new Map<string, Known>()
  readonly #reads = new Map<string, Promise<boolean>>()
  readonly #held = new Holds()
  readonly #guard: L2Guard | undefined
  readonly #clock: Clock
  readonly #onNamespaceMoved: () => void

  constructor(guard: L2Guard | undefined, clock: Clock, onNamespaceMoved: () => void) {
    this.#guard = guard
    this.#clock = clock
    this.#onNamespaceMoved = onNamespaceMoved
  }

  /** The value in memory, `undefined` when it must be read (never read, or read too long ago). */
  value(name: string): number | undefined {
    if (this.#held.has(name)) return undefined
    if (this.#guard === undefined) return this.#known.get(name)?.value ?? 0
    const known = this.#known.get(name)
    if (known === undefined) return undefined
    if (this.#clock.now() - known.readAt >= this.cap) return undefined
    return known.value
  }

  apply(name: string, value: number): void {
    const known = this.#known.get(name)
    if (known !== undefined && known.value > value) return
    this.#known.set(name, { value, readAt: this.#clock.now() })
    if (name === '' && known !== undefined && known.value !== value) this.#onNamespaceMoved()
  }

  /** Makes sure the named generations are in memory; `false` when L2 cannot tell. */
  ensure(names: readonly string[]): Promise<boolean> {
    const missing = names.filter((name) => this.value(name) === undefined)
    if (missing.length === 0) return Promise.resolve(true)
    if (missing.some((name) => this.#held.has(name))) return Promise.resolve(false)
    const guard = this.#guard
    if (guard === undefined || guard.isOpen) return Promise.resolve(false)
    const id = missing.join(NAMES_SEP)
    let reading = this.#reads.get(id)
    if (reading === undefined) {
      reading = guard
        .run('getGenerations', (store) => store.getGenerations(missing))
        .then(
          (values) => {
            missing.forEach((name, i) => this.apply(name, values[i] ?? 0))
            return true
          },
          () => false,
        )
        .finally(() => this.#reads.delete(id))
      this.#reads.set(id, reading)
    }
    return reading
  }

  /** Makes a generation unknown until `release` (a bump of it is queued). */
  hold(name: string): void {
    this.#held.add([name])
  }

  release(name: string): void {
    this.#held.remove([name])
  }

  /** Forgets every value: after a possible loss of messages, they are read again. */
  clear(): void {
    this.#known.clear()
  }
}
