/**
 * How often this process read a key lately, estimated in 0..15 (after Caffeine's TinyLFU
 * `FrequencySketch`): what `AdaptiveTtl` turns into a TTL between `min` and `max`.
 *
 * A count-min sketch: 4 rows of counters, a key counting in one counter of each row and estimated
 * by the least of its 4, so a key sharing counters with others is overestimated only when it shares
 * all 4. It keeps no keys: its memory is fixed however many keys pass, and a read costs one hash
 * and 4 counters, no allocation. Counters are 4 bits, saturating at 15: an adaptive TTL only needs
 * to tell rare from frequent, and beyond 15 reads a period a key is as hot as it gets. They age:
 * every `sampleSize` reads all are halved, so a key hot long ago fades and one hot now stands out.
 *
 * Memory: 4 rows of `width` counters at half a byte each, 2 × `width` bytes, `width` being
 * `expected` rounded up to a power of two: 2 to 4 bytes per expected key (32 KiB for 10,000).
 */

/** Rows are at least 64 counters wide and the table holds at most 2^22 counters (2 MiB). */
const MIN_WIDTH = 64
const MAX_WIDTH = 1 << 20
/** Four odd multipliers: multiply-shift hashing with each is a different function of the one hash, so rows collide apart. */
const M0 = 0x9e3779b1 | 0
const M1 = 0x85ebca6b | 0
const M2 = 0xc2b2ae35 | 0
const M3 = 0x27d4eb2f | 0
/** Each 4-bit counter of a word halved at once: shifted right, the bit each lost to its neighbour masked off. */
const HALF = 0x77777777

/** FNV-1a over the UTF-16 code units: one multiply a unit, no string built. */
function hashOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return h
}

export class FrequencySketch {
  /** The most a counter holds. */
  static readonly CEILING = 15

  /**
   * Packed 8 counters to a 32-bit word: 32 bits is what JavaScript's bitwise operators work on, so a
   * counter is one shift and mask away and aging halves 8 counters per operation (a Uint8Array would
   * halve 2). Row `r` is the `width / 8` words from `r × width / 8`.
   */
  readonly #table: Uint32Array
  /** log2 of `width`, and 32 minus it: a row index is the top `#bits` bits of a 32-bit product. */
  readonly #bits: number
  readonly #shift: number
  readonly #sampleSize: number
  /** Reads since the last aging. */
  #reads = 0

  /**
   * `expected`: about how many distinct keys are read in a period (e.g. L1's `maxEntries`); a row
   * is that many counters, rounded up to a power of two, from 64 to 2^20, and a period is 10 reads
   * per counter of a row (Caffeine's sample of 10 per entry).
   */
  constructor(expected: number) {
    if (!Number.isInteger(expected) || expected <= 0) throw new RangeError(`expected must be a positive integer (got ${expected})`)
    let width = MIN_WIDTH
    while (width < expected && width < MAX_WIDTH) width *= 2
    this.#bits = 31 - Math.clz32(width)
    this.#shift = 32 - this.#bits
    this.#table = new Uint32Array(width >>> 1)
    this.#sampleSize = 10 * width
  }

  /**
   * Counts one read of `key`. Only the key's counters at its minimum go up (conservative update):
   * the others already count reads of other keys too, and raising them would overestimate those.
   * True when this read ended a period (the counters were halved).
   */
  record(key: string): boolean {
    const h = hashOf(key)
    const t = this.#table
    const bits = this.#bits
    const shift = this.#shift
    // Counter positions in the table (row r starts at r << bits); word p >>> 3, bit offset (p & 7) × 4.
    const p0 = Math.imul(h, M0) >>> shift
    const p1 = (1 << bits) | (Math.imul(h, M1) >>> shift)
    const p2 = (2 << bits) | (Math.imul(h, M2) >>> shift)
    const p3 = (3 << bits) | (Math.imul(h, M3) >>> shift)
    const o0 = (p0 & 7) << 2
    const o1 = (p1 & 7) << 2
    const o2 = (p2 & 7) << 2
    const o3 = (p3 & 7) << 2
    const c0 = (t[p0 >>> 3]! >>> o0) & 15
    const c1 = (t[p1 >>> 3]! >>> o1) & 15
    const c2 = (t[p2 >>> 3]! >>> o2) & 15
    const c3 = (t[p3 >>> 3]! >>> o3) & 15
    const min = Math.min(c0, c1, c2, c3)
    // Below 15 a counter at the minimum has room: adding 1 at its offset never carries into the next.
    if (min < 15) {
      if (c0 === min) t[p0 >>> 3] = t[p0 >>> 3]! + (1 << o0)
      if (c1 === min) t[p1 >>> 3] = t[p1 >>> 3]! + (1 << o1)
      if (c2 === min) t[p2 >>> 3] = t[p2 >>> 3]! + (1 << o2)
      if (c3 === min) t[p3 >>> 3] = t[p3 >>> 3]! + (1 << o3)
    }
    // The period counts reads, saturated ones too: a few keys at 15 still move time on for the rest.
    if (++this.#reads !== this.#sampleSize) return false
    this.#age()
    return true
  }

  /**
   * The key's estimated reads, 0..15: the least of its counters (never under its reads since the
   * last aging). The positions are computed as in `record`, unrolled in both: a shared helper
   * filling a scratch array measured 38 → 43 ns per `record`, which runs on every read.
   */
  estimate(key: string): number {
    const h = hashOf(key)
    const t = this.#table
    const bits = this.#bits
    const shift = this.#shift
    const p0 = Math.imul(h, M0) >>> shift
    const p1 = (1 << bits) | (Math.imul(h, M1) >>> shift)
    const p2 = (2 << bits) | (Math.imul(h, M2) >>> shift)
    const p3 = (3 << bits) | (Math.imul(h, M3) >>> shift)
    return Math.min(
      (t[p0 >>> 3]! >>> ((p0 & 7) << 2)) & 15,
      (t[p1 >>> 3]! >>> ((p1 & 7) << 2)) & 15,
      (t[p2 >>> 3]! >>> ((p2 & 7) << 2)) & 15,
      (t[p3 >>> 3]! >>> ((p3 & 7) << 2)) & 15,
    )
  }

  /** Halves every counter (a period ends): once a key's reads stop, its estimate halves each period till 0. */
  #age(): void {
    const t = this.#table
    for (let i = 0; i < t.length; i++) t[i] = (t[i]! >>> 1) & HALF
    this.#reads = 0
  }
}
