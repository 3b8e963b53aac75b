/**
 * Health of the bus, and the heartbeat clock. Unhealthy as soon as a part of the bus reports a
 * loss, and when no message at all (own heartbeats included) was seen within `heartbeatTimeout`:
 * a paused (SIGSTOP) or partitioned Redis keeps its sockets open and shows no disconnect. Healthy
 * again only once a message is heard while the subscription is live (`mayTurnHealthy`).
 */
import type { Logger } from '@tiercache/core'
import type { BusCounters } from './counters.js'
import { Waiters } from './waiters.js'

export interface HealthOptions {
  readonly channel: string
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly logger: Logger
  readonly counters: BusCounters
  /** Asked when a message arrives while unhealthy: whether it proves a live subscription. */
  readonly mayTurnHealthy: () => boolean
  /** Runs every `heartbeatInterval`, after the deadline was judged, with the time since the last message. */
  readonly onBeat: (silentForMs: number) => void
}

export class Health {
  readonly #o: HealthOptions
  readonly #listeners: ((healthy: boolean) => void)[] = []
  readonly #heard = new Waiters()
  #healthy = false
  #lastSeen = 0
  #lastTick = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: HealthOptions) {
    this.#o = options
  }

  get healthy(): boolean {
    return this.#healthy
  }

  onChange(listener: (healthy: boolean) => void): void {
    this.#listeners.push(listener)
  }

  /** Starts the heartbeat clock. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#lastTick = Date.now()
    this.#timer = setInterval(this.#tick, this.#o.heartbeatIntervalMs)
    this.#timer.unref()
  }

  /** A message arrived on the subscription (the handler's hot path: one clock read when healthy). */
  seen(): void {
    this.#lastSeen = Date.now()
    if (this.#healthy) return
    // A message proves the subscription even before the SUBSCRIBE reply's continuation ran (both
    // can come in one socket read). Turning healthy here, before its ops reach the engine, makes
    // the engine's recovery flush come before anything received on a new subscription is applied.
    if (!this.#o.mayTurnHealthy()) return
    this.set(true)
    this.#heard.wake()
  }

  set(healthy: boolean): void {
    if (this.#healthy === healthy || this.#closed) return
    this.#healthy = healthy
    if (!healthy) this.#o.counters.unhealthyTransitions++
    this.#o.logger.info({ channel: this.#o.channel, healthy }, 'tiercache bus: health changed')
    for (const listener of this.#listeners) {
      try {
        listener(healthy)
      } catch (error) {
        this.#o.logger.error({ err: error }, 'tiercache bus: health listener threw')
      }
    }
  }

  /** Resolves once healthy (true), or false after `timeoutMs` or on close; never rejects. */
  async waitHealthy(timeoutMs: number): Promise<boolean> {
    await this.#heard.wait(() => this.#healthy, timeoutMs)
    return this.#healthy
  }

  readonly #tick = (): void => {
    if (this.#closed) return
    const now = Date.now()
    // After a stalled event loop, timers run before the socket data that piled up meanwhile:
    // judge the deadline at the next tick, once that data had its turn.
    const stalled = now - this.#lastTick > 2 * this.#o.heartbeatIntervalMs
    this.#lastTick = now
    const silentFor = now - this.#lastSeen
    if (this.#healthy && !stalled && silentFor > this.#o.heartbeatTimeoutMs) {
      this.#o.counters.heartbeatsMissed++
      this.#o.logger.warn({ channel: this.#o.channel, silentForMs: silentFor }, 'tiercache bus: heartbeat missed')
      this.set(false)
    }
    this.#o.onBeat(silentFor)
  }

  /** Unhealthy for good, without telling the listeners (they are closing too); wakes the waiters. */
  close(): void {
    this.#closed = true
    this.#healthy = false
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#heard.wake()
  }
}
