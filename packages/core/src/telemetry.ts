/**
 * What the cache counts and tells: per-family counters (plain number fields), the cache-wide
 * counts, the load latency, the stats sink, the events, and the one report of background
 * failures. Every step reports here; none logs or counts on its own.
 */
import { noopStatsSink } from './defaults.js'
import { type CacheEventName, type CacheEvents, Emitter } from './events.js'
import type { FamilyContext } from './family.js'
import type { Logger, StatsSink } from './ports.js'
import { type BreakerState, type CacheStats, type CounterName, FamilyCounters, LatencyReservoir, type LatencySnapshot, sumCounters } from './stats.js'

/** What the stats snapshot reads from the other modules. */
export interface StatsParts {
  readonly breaker: { readonly state: BreakerState; readonly transitions: number }
  readonly recoveryQueueDepth: number
  readonly writeQueueDepth: number
  readonly busHealthy: boolean
  readonly l1: { readonly entries: number; readonly bytes: number }
  readonly l2Latency: LatencySnapshot
}

export class Telemetry {
  readonly events: Emitter
  readonly logger: Logger
  readonly sink: StatsSink
  /** The sink records nothing: hits need not tell it. */
  readonly silentSink: boolean
  l1Flushes = 0
  busMessagesApplied = 0
  busMessagesSent = 0
  /** Every failed L2 call (reads, writes, background) by operation; per-family counters see only reads. */
  readonly #l2ErrorsByOperation = new Map<string, number>()
  readonly #loadLatency = new LatencyReservoir()
  readonly #counters = new Map<string, FamilyCounters>()
  readonly #name: string

  constructor(logger: Logger, sink: StatsSink, name: string) {
    this.logger = logger
    this.sink = sink
    this.silentSink = sink === noopStatsSink
    this.events = new Emitter(logger)
    this.#name = name
  }

  /** A family's counters: declaring a family again keeps them. */
  countersOf(familyId: string): FamilyCounters {
    let counters = this.#counters.get(familyId)
    if (counters === undefined) this.#counters.set(familyId, (counters = new FamilyCounters()))
    return counters
  }

  count(fc: FamilyContext, name: CounterName, by = 1): void {
    fc.counters[name] += by
    this.sink.increment(name, fc.id, by)
  }

  l1Hit(fc: FamilyContext): void {
    fc.counters.l1Hits++
    if (!this.silentSink) this.sink.increment('l1Hits', fc.id)
  }

  loaded(fc: FamilyContext, ms: number): void {
    this.#loadLatency.record(ms)
    this.sink.timing('load', fc.id, ms)
  }

  emit<E extends CacheEventName>(event: E, payload: CacheEvents[E]): void {
    this.events.emit(event, payload)
  }

  /** Background work failed: logged and emitted, never thrown at anyone. */
  background(context: string, error: unknown): void {
    this.logger.error({ err: error, context, cache: this.#name }, `tiercache background ${context} failed`)
    this.events.emit('error', { error, context })
  }

  l2Failed(operation: string, error: unknown): void {
    this.#l2ErrorsByOperation.set(operation, (this.#l2ErrorsByOperation.get(operation) ?? 0) + 1)
    this.logger.warn({ err: error, operation, cache: this.#name }, 'tiercache L2 call failed')
    this.events.emit('l2-error', { operation, error })
  }

  snapshot(parts: StatsParts): CacheStats {
    const families: Record<string, Readonly<FamilyCounters>> = {}
    for (const [id, counters] of this.#counters) families[id] = Object.freeze({ ...counters })
    const total = sumCounters(this.#counters.values())
    const lookups = total.l1Hits + total.l2Hits + total.misses
    return Object.freeze({
      total: Object.freeze({ ...total, l2Errors: [...this.#l2ErrorsByOperation.values()].reduce((n, v) => n + v, 0), hitRate: lookups === 0 ? 0 : (total.l1Hits + total.l2Hits) / lookups }),
      families: Object.freeze(families),
      l2ErrorsByOperation: Object.freeze(Object.fromEntries(this.#l2ErrorsByOperation)),
      busMessagesApplied: this.busMessagesApplied,
      busMessagesSent: this.busMessagesSent,
      l1Flushes: this.l1Flushes,
      breaker: Object.freeze({ ...parts.breaker }),
      recoveryQueueDepth: parts.recoveryQueueDepth,
      writeQueueDepth: parts.writeQueueDepth,
      busHealthy: parts.busHealthy,
      l1: Object.freeze({ ...parts.l1 }),
      latency: Object.freeze({ load: this.#loadLatency.snapshot(), l2: parts.l2Latency }),
    })
  }
}
