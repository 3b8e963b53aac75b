/**
 * `adaptiveTtl: { min, max }` of a family: a loaded value of a key read often lives towards
 * `max`, one read rarely towards `min`. How often is this process's estimate (`FrequencySketch`:
 * 4-bit counters that age), recorded on every read of the family: no Redis traffic per access,
 * and each process judges by its own traffic. A loader's `ctx.setTtl` still wins.
 *
 * The estimate is turned into the reads this process can expect within one `max`: a key's count
 * over the time it covers (since the sketch's last aging, plus half the period before it, which
 * the halved counters still carry). One read per `max` or more earns `max`: kept that long, the
 * value is read at least once more on average. Below that, the TTL shrinks in proportion towards
 * `min`, where a value would mostly sit unread. A counter at its ceiling counts as hot whatever
 * the time: its reads are at least that. Scaling the bare count instead (15 reads for `max`)
 * short-changed the keys in between: on the `loading` benchmark's Zipf reads it loaded 1.2× as
 * often as a fixed TTL of the midpoint.
 */
import type { Clock } from '../ports.js'
import { FrequencySketch } from './frequency-sketch.js'

export class AdaptiveTtl {
  readonly min: number
  readonly max: number
  readonly #sketch: FrequencySketch
  readonly #clock: Clock
  /** When the current period began (the sketch's last aging, or the start). */
  #periodStart: number
  /** The length of the period before, in ms (0 before the first aging). */
  #previous = 0

  /** `expected`: about how many keys are read in a period (L1's `maxEntries`). */
  constructor(min: number, max: number, expected: number, clock: Clock) {
    this.min = min
    this.max = max
    this.#sketch = new FrequencySketch(expected)
    this.#clock = clock
    this.#periodStart = clock.now()
  }

  /** One read of the key (a hit or a miss). */
  record(l1Key: string): void {
    if (this.#sketch.record(l1Key)) {
      const now = this.#clock.now()
      this.#previous = now - this.#periodStart
      this.#periodStart = now
    }
  }

  /** The TTL of a value of the key loaded now, in ms. */
  ttlOf(l1Key: string): number {
    const count = this.#sketch.estimate(l1Key)
    if (count >= FrequencySketch.CEILING) return this.max
    // Never under one `max`: early on, a key read once is not judged on a few milliseconds.
    const covered = Math.max(this.max, this.#clock.now() - this.#periodStart + this.#previous / 2)
    const perMax = (count * this.max) / covered
    return perMax >= 1 ? this.max : Math.round(this.min + (this.max - this.min) * perMax)
  }
}
