/**
 * Coherence between the L1s of the processes sharing an L2.
 *
 * - Out: every local invalidation goes out on the bus, the keys of one event-loop turn in one
 *   message (`Publisher`); a writer's promise settles once it was handed to the transport, or
 *   the transport's bound (`l2Timeout`) passed: a message it could not take is held and sent
 *   once it is back (the breaker closed, the bus healthy again).
 * - In: a message from another process drops the L1 copies it names (voiding their flights), or
 *   marks them expired (`expire()`: stale, kept within grace, voiding their flights), moves
 *   a generation or tags forward (`TagTable`: entries with them written before stop standing), or
 *   drops the whole L1. A process ignores its own messages.
 * - Health: while the bus is unhealthy every L1 entry (and every generation read from L2) is
 *   trusted only within `unhealthyL1Cap` of its fill, since messages may be going unheard (so is
 *   every generation and tag version read from L2); when it is healthy again the whole L1, the
 *   generations and the tag versions are dropped, as messages may have been lost. The first subscription is start-up, not a recovery: its drop is neither counted nor
 *   announced, and loads voided by it may still fill L2 through their lease.
 *
 * Without a bus the cache is a single process's: always healthy, nothing goes out.
 */
import type { Generations } from '../l2/generations.js'
import type { LocalTier } from '../l1/local-tier.js'
import type { Stampede } from '../l2/stampede.js'
import type { Flights } from '../load/flights.js'
import type { Lifecycle } from '../lifecycle.js'
import type { Invalidation, InvalidationBus, ReceivedInvalidation } from '../ports.js'
import type { TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import { Publisher, type Transport } from './publisher.js'

/** How long `close()` gives held messages to go out. */
const CLOSE_RESEND_MS = 1_000

export type FlushReason = 'bus-recovered' | 'namespace-generation' | 'clear'

export interface CoherenceParts {
  readonly bus: InvalidationBus | undefined
  /** How messages reach the bus (through the guard when there is L2); absent without a bus. */
  readonly transport: Transport | undefined
  readonly local: LocalTier
  readonly flights: Flights
  readonly generations: Generations
  readonly tags: TagTable
  /** Lease waiters, woken when their key is invalidated; absent without L2. */
  readonly stampede: Stampede | undefined
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly unhealthyL1Cap: number
  readonly name: string
}

export class Coherence {
  readonly #p: CoherenceParts
  readonly #publisher: Publisher | undefined
  #healthy: boolean
  #everHealthy: boolean

  constructor(parts: CoherenceParts) {
    this.#p = parts
    const bus = parts.bus
    this.#healthy = bus === undefined ? true : bus.healthy
    this.#everHealthy = this.#healthy
    this.#applyCap()
    this.#publisher = parts.transport === undefined ? undefined : new Publisher(parts.transport, () => this.sent())
  }

  /** Subscribes to the bus (in the background: serving does not wait for it). */
  start(): void {
    const bus = this.#p.bus
    if (bus === undefined) return
    bus.onMessage((message) => this.#onMessage(message))
    bus.onHealthChange((healthy) => this.#onHealth(healthy))
    bus.start().catch((error: unknown) => this.#p.telemetry.background('bus start', error))
  }

  get healthy(): boolean {
    return this.#healthy
  }

  /** Drops the key's L1 copy, voids its flights, wakes its lease waiters. */
  invalidateKey(l1Key: string): void {
    this.#p.local.delete(l1Key)
    this.#p.flights.invalidate(l1Key)
    this.#p.stampede?.wake(l1Key)
  }

  /**
   * Makes the key's L1 copy stale but keeps it (`expire()`): served within grace while one reload
   * runs. Voids its flights: a load that began before must not land as the reload.
   */
  expireKey(l1Key: string): void {
    this.#p.local.expire(l1Key)
    this.#p.flights.invalidate(l1Key)
  }

  /** Drops the whole L1 (and the generations and tag versions with `generations`), counted and announced. */
  flush(reason: FlushReason, generations: boolean): void {
    this.#clear(false, generations)
    this.#p.telemetry.l1Flushes++
    this.#p.telemetry.emit('l1-flushed', { reason })
  }

  /** Tells the other processes to drop these L1 keys; settles once handed to the transport. */
  publishDelete(l1Keys: readonly string[]): Promise<void> {
    return this.#publisher === undefined || l1Keys.length === 0 ? Promise.resolve() : this.#publisher.deleteKeys(l1Keys)
  }

  /** Sends a generation or clear message now. Never rejects. */
  publish(message: Invalidation): Promise<void> {
    return this.#publisher === undefined ? Promise.resolve() : this.#publisher.send(message)
  }

  /** A message goes out: through the publisher, or with a write's L2 changes (a round trip). */
  sent(): void {
    this.#p.telemetry.busMessagesSent++
  }

  /** Keeps a message that could not go (its round trip failed) for the next resend. */
  hold(message: Invalidation): void {
    this.#publisher?.hold(message)
  }

  /** Sends the messages the transport could not take before (it is back). */
  resendHeld(): void {
    void this.#publisher?.resend()
  }

  /** Messages waiting for the transport to come back. */
  get heldMessages(): number {
    return this.#publisher?.heldCount ?? 0
  }

  /** Hands the pending batch to the transport (on close). */
  flushOutgoing(): Promise<void> {
    const publisher = this.#publisher
    if (publisher === undefined) return Promise.resolve()
    // One last try for what is held, bounded: a transport that is gone must not hold close().
    const lastTry = () => Promise.race([publisher.resend(), new Promise<void>((resolve) => setTimeout(resolve, CLOSE_RESEND_MS).unref?.())])
    return publisher
      .flush()
      .then(lastTry)
      .finally(() => publisher.stop())
  }

  #clear(startup: boolean, generations: boolean): void {
    this.#p.local.clear()
    if (generations) {
      this.#p.generations.clear()
      this.#p.tags.reset()
    }
    this.#p.flights.invalidateAll(startup)
  }

  #applyCap(): void {
    const cap = this.#healthy ? Infinity : this.#p.unhealthyL1Cap
    this.#p.local.cap = cap
    this.#p.generations.cap = cap
    this.#p.tags.cap = cap
  }

  #onMessage(message: ReceivedInvalidation): void {
    const { life, telemetry, bus } = this.#p
    try {
      if (life.closed || message.source === bus?.instanceId) return
      let keys: readonly string[] = []
      switch (message.op) {
        case 'delete':
          keys = message.keys
          for (const key of keys) this.invalidateKey(key)
          break
        case 'generation':
          this.#p.generations.apply(message.name, message.value)
          break
        case 'tags':
          this.#p.tags.heard(message.tags, message.version)
          break
        case 'expire':
          keys = message.keys
          for (const key of keys) this.expireKey(key)
          break
        case 'clear':
          this.flush('clear', true)
          break
        default:
          return
      }
      telemetry.busMessagesApplied++
      telemetry.emit('bus:applied', { source: message.source, seq: message.seq, op: message.op, keys })
    } catch (error) {
      telemetry.background('bus message', error)
    }
  }

  #onHealth(healthy: boolean): void {
    const { life, telemetry, name } = this.#p
    try {
      if (life.closed || healthy === this.#healthy) return
      this.#healthy = healthy
      const wasEverHealthy = this.#everHealthy
      if (healthy && wasEverHealthy) this.flush('bus-recovered', true)
      else if (healthy) this.#clear(true, true)
      this.#everHealthy ||= healthy
      this.#applyCap()
      if (healthy) this.resendHeld()
      if (healthy && !wasEverHealthy) telemetry.logger.info({ healthy, cache: name }, 'tiercache bus subscribed')
      else telemetry.logger.warn({ healthy, cache: name }, `tiercache bus ${healthy ? 'healthy: L1 flushed' : 'unhealthy: L1 capped'}`)
      telemetry.emit('bus-health', { healthy })
    } catch (error) {
      telemetry.background('bus health', error)
    }
  }
}
