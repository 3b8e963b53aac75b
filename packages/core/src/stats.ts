/** Counters of one family. Plain number fields: incrementing one costs a property write. */
export class FamilyCounters {
  l1Hits = 0
  l2Hits = 0
  misses = 0
  loaderCalls = 0
  loaderErrors = 0
  loaderTimeouts = 0
  staleServed = 0
  l2Errors = 0
  schemaFailures = 0
  leaseWaits = 0
  /** Background reloads started: eager refreshes and reloads of entries `expire()` made stale. */
  refreshes = 0
}

export type CounterName = keyof FamilyCounters
export const COUNTER_NAMES: readonly CounterName[] = Object.keys(new FamilyCounters()) as CounterName[]

/** Latency percentiles in milliseconds over the most recent samples. */
export interface LatencySnapshot {
  readonly count: number
  readonly p50: number
  readonly p99: number
}

/** A fixed ring of the most recent samples: constant memory, sorting only at snapshot time. */
export class LatencyReservoir {
  readonly #samples: Float64Array
  #next = 0
  #count = 0

  constructor(size = 1024) {
    this.#samples = new Float64Array(size)
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % this.#samples.length
    this.#count++
  }

  snapshot(): LatencySnapshot {
    const n = Math.min(this.#count, this.#samples.length)
    if (n === 0) return { count: 0, p50: 0, p99: 0 }
    const sorted = this.#samples.slice(0, n).sort()
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))] as number
    return { count: this.#count, p50: at(0.5), p99: at(0.99) }
  }
}

export type BreakerState = 'closed' | 'open' | 'half-open'

/** An immutable view of the cache's statistics. */
export interface CacheStats {
  readonly total: Readonly<FamilyCounters> & { readonly hitRate: number }
  readonly families: Readonly<Record<string, Readonly<FamilyCounters>>>
  /** Every failed L2 call by operation (`get`, `apply`, `publish`, …): reads, writes and background work. */
  readonly l2ErrorsByOperation: Readonly<Record<string, number>>
  /** Messages of other processes this one applied (heartbeats aside). */
  readonly busMessagesApplied: number
  /** Messages this process sent on the bus, heartbeats aside: each attempt (a message held and sent again counts again). */
  readonly busMessagesSent: number
  readonly l1Flushes: number
  readonly breaker: { readonly state: BreakerState; readonly transitions: number }
  readonly recoveryQueueDepth: number
  /** Background writes queued or running, not yet done. */
  readonly writeQueueDepth: number
  readonly busHealthy: boolean
  readonly l1: { readonly entries: number; readonly bytes: number }
  readonly latency: { readonly load: LatencySnapshot; readonly l2: LatencySnapshot }
}

export function sumCounters(all: Iterable<FamilyCounters>): FamilyCounters {
  const total = new FamilyCounters()
  for (const counters of all) for (const name of COUNTER_NAMES) total[name] += counters[name]
  return total
}
