import type { Logger } from './ports.js'
import type { BreakerState } from './stats.js'

/** Why a stale copy was served: its loader failed or was slow, or `expire()` made it stale. */
export type StaleReason = 'loader-error' | 'soft-timeout' | 'hard-timeout' | 'expired'

/** Events of a cache, with their payloads. */
export interface CacheEvents {
  /** A stale copy stood in for a failing or slow loader, or for an expired entry while it reloads. */
  'stale-served': { key: string; family: string; reason: StaleReason }
  'loader-error': { key: string; family: string; error: unknown }
  /** An L2 call failed (the reader did not see it). */
  'l2-error': { operation: string; error: unknown }
  breaker: { state: BreakerState }
  'bus-health': { healthy: boolean }
  /** The whole L1 was dropped. */
  'l1-flushed': { reason: 'bus-recovered' | 'namespace-generation' | 'clear' }
  /** A bus message from another node was applied. */
  'bus:applied': { source: string; seq: number; op: 'delete' | 'generation' | 'tags' | 'expire' | 'clear'; keys: readonly string[] }
  /** The recovery queue was replayed after L2 came back. */
  'recovery-replayed': { keys: number; generationBumped: boolean }
  /** Background work failed. */
  error: { error: unknown; context: string }
}

export type CacheEventName = keyof CacheEvents
export type CacheEventListener<E extends CacheEventName> = (payload: CacheEvents[E]) => void

/** A typed emitter whose listeners cannot break the engine: their exceptions are logged. */
export class Emitter {
  readonly #listeners = new Map<CacheEventName, Set<(payload: never) => void>>()
  readonly #logger: Logger

  constructor(logger: Logger) {
    this.#logger = logger
  }

  on<E extends CacheEventName>(event: E, listener: CacheEventListener<E>): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, (set = new Set()))
    set.add(listener as (payload: never) => void)
    return () => {
      set.delete(listener as (payload: never) => void)
    }
  }

  has(event: CacheEventName): boolean {
    const set = this.#listeners.get(event)
    return set !== undefined && set.size > 0
  }

  emit<E extends CacheEventName>(event: E, payload: CacheEvents[E]): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of set) {
      try {
        ;(listener as CacheEventListener<E>)(payload)
      } catch (error) {
        this.#logger.error({ err: error, event }, 'tiercache event listener threw')
      }
    }
  }
}
