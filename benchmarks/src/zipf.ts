// Zipf-distributed key indexes: a few keys are hot, most are cold, as in real key traffic.
import { seededRandom } from '@tiercache/testkit'

export { seededRandom }

/**
 * Draws indexes in [0, n) with P(i) ∝ 1 / (i + 1)^s. Inverse-CDF over a precomputed table:
 * O(log n) per draw, no allocation.
 */
export function zipf(n: number, s = 1, random: () => number = seededRandom(42)): () => number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipf: n must be a positive integer (got ${n})`)
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, s)
    cdf[i] = sum
  }
  for (let i = 0; i < n; i++) cdf[i]! /= sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** A precomputed sequence of `count` Zipf draws, to build inputs outside the timed function. */
export function zipfSequence(n: number, count: number, s = 1, seed = 42): Uint32Array {
  const next = zipf(n, s, seededRandom(seed))
  const out = new Uint32Array(count)
  for (let i = 0; i < count; i++) out[i] = next()
  return out
}
