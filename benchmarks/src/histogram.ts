// Latency histogram: logarithmic buckets 1 % wide from 0.01 µs, so that millions of reads merge
// across processes in a few KiB; a percentile is read to within 1 %, the max is kept exactly.

const BUCKET_BASE = Math.log(1.01)
const BUCKETS = 2_400 // up to ≈ 0.01 µs × 1.01^2400 ≈ 230 s

export interface Histogram {
  counts: number[]
  count: number
  maxUs: number
}

export const newHistogram = (): Histogram => ({ counts: new Array<number>(BUCKETS).fill(0), count: 0, maxUs: 0 })

export function record(h: Histogram, us: number): void {
  const i = us <= 0.01 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us * 100) / BUCKET_BASE))
  h.counts[i]!++
  h.count++
  if (us > h.maxUs) h.maxUs = us
}

export function mergeHistograms(all: readonly Histogram[]): Histogram {
  const out = newHistogram()
  for (const h of all) {
    for (let i = 0; i < BUCKETS; i++) out.counts[i]! += h.counts[i] ?? 0
    out.count += h.count
    out.maxUs = Math.max(out.maxUs, h.maxUs)
  }
  return out
}

/** The p-th percentile (0..100): the middle of its bucket, never above the max. */
export function histogramPercentile(h: Histogram, p: number): number | undefined {
  if (h.count === 0) return undefined
  const rank = Math.max(1, Math.ceil((p / 100) * h.count))
  let seen = 0
  for (let i = 0; i < BUCKETS; i++) {
    seen += h.counts[i]!
    if (seen >= rank) return Math.min(h.maxUs, (Math.pow(1.01, i + 0.5)) / 100)
  }
  return h.maxUs
}

/** Reads slower than `us` (to within a bucket). */
export function slowerThan(h: Histogram, us: number): number {
  const from = Math.floor(Math.log(us * 100) / BUCKET_BASE) + 1
  let n = 0
  for (let i = from; i < BUCKETS; i++) n += h.counts[i]!
  return n
}
