/**
 * `adaptiveTtl: { min, max }` of a family: a loaded value of a key read often lives towards
 * `max`, one read rarely towards `min`. How often is this process's estimate (`FrequencySketch`:
 * 4-bit counters that age), recorded on every read of the family: no Redis traffic per access,
 * and each process judges by its own traffic. A loader's `ctx.setTtl` still wins.
 */
import { FrequencySketch } from './frequency-sketch.js'

export class AdaptiveTtl {
  readonly min: number
  readonly max: number
  readonly #sketch: FrequencySketch

  /** `expected`: about how many keys are read in a period (L1's `maxEntries`). */
  constructor(min: number, max: number, expected: number) {
    this.min = min
    this.max = max
    this.#sketch = new FrequencySketch(expected)
  }

  /** One read of the key (a hit or a miss). */
  record(l1Key: string): void {
    this.#sketch.record(l1Key)
  }

  /** The TTL of a value of the key loaded now, in ms. */
  ttlOf(l1Key: string): number {
    return Math.round(this.min + (this.max - this.min) * this.#sketch.frequency(l1Key))
  }
}
