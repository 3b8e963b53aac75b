// Time-based measurement on top of tinybench 6. Inputs are built by the caller, outside `fn`.
import { Bench } from 'tinybench'
import type { Figures } from './scenario.js'

export interface MeasureOptions {
  /** Measuring time in ms (use `ctx.timeMs`). */
  timeMs: number
  /** Warm-up time in ms. @default timeMs / 4, at least 50 */
  warmupMs?: number
  /**
   * Operations `fn` performs per call. Sub-microsecond operations (an L1 hit) must be batched
   * (e.g. 1000 gets in a loop) because a single call is below the timer's resolution; the
   * percentiles are then of batch means. An `fn` running 64 calls concurrently passes 64 here.
   * @default 1
   */
  opsPerCall?: number
  /**
   * Whether latency is divided by `opsPerCall`. Batches of sequential calls: yes (the mean per
   * call). Batches of concurrent calls: no, each call waits about as long as the batch.
   * @default true
   */
  latencyPerOp?: boolean
}

export type Measured = Required<Pick<Figures, 'opsPerSec' | 'p50Us' | 'p99Us' | 'maxUs'>> & { samples: number }

/** Measures one function: ops/s and per-operation p50/p99/max latency in µs. */
export async function measure(fn: () => unknown, options: MeasureOptions): Promise<Measured> {
  const ops = options.opsPerCall ?? 1
  const bench = new Bench({
    time: options.timeMs,
    warmupTime: options.warmupMs ?? Math.max(50, options.timeMs / 4),
    iterations: 8,
    warmupIterations: 8,
    throws: true,
  } as ConstructorParameters<typeof Bench>[0])
  bench.add('task', fn)
  await bench.run()
  const task = bench.tasks[0]
  const result = task?.result
  if (!result || !('latency' in result)) throw new Error(`measurement failed (${result?.state ?? 'no result'})`)
  const latency = result.latency
  // tinybench's latency is in ms per call of fn.
  const divisor = options.latencyPerOp === false ? 1 : ops
  const usPerOp = (ms: number) => (ms * 1000) / divisor
  return {
    opsPerSec: (ops * 1000) / result.period,
    p50Us: usPerOp(latency.p50),
    p99Us: usPerOp(latency.p99),
    maxUs: usPerOp(latency.max),
    samples: latency.samplesCount,
  }
}

/** Percentile (0..100) of unsorted samples, interpolated; undefined for no samples. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = (p / 100) * (sorted.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo)
}
