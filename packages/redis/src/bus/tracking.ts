/**
 * Tracking mode: Redis server-assisted client-side caching as a second source of invalidations.
 * `CLIENT TRACKING on REDIRECT <subscriber id> BCAST PREFIX <namespace>:` on a connection of its
 * own, so every change of a key under the namespace — including writes made by other programs
 * directly in Redis — reaches the subscriber on `__redis__:invalidate`. The Redis keys are mapped
 * to L1 keys by `mapTrackedKey`; a null payload (FLUSHDB/FLUSHALL) is a `clear`. Tracking has no
 * source, so a node also hears of its own L2 writes: it drops its own fresh L1 copy once and
 * reads it back from L2, one extra L2 read per write.
 *
 * Tracking only adds: the bus channel still carries every op, so an 'expire' published in this
 * mode reaches the other nodes as it does in pub/sub mode. The store's SETRANGE that marks the L2
 * entry expired is a key change too, reported here as a delete (nothing says the change was an
 * expire): every node in this mode, the sender included, drops its L1 copy, and its next read
 * takes the expired entry from L2, serves it within its grace and reloads, as the 'expire' op
 * would have. Deliberate: the cost is one L2 read per node, as for any write.
 */
import type { Redis, RedisOptions } from 'ioredis'
import type { Logger, ReceivedInvalidation } from '@tiercache/core'
import type { BusCounters } from './counters.js'

export const TRACKING_CHANNEL = '__redis__:invalidate'
const TRACKING_SOURCE = 'redis:tracking'

export interface TrackingOptions {
  /** The data connection (standalone Redis), duplicated for the tracking connection. */
  readonly data: Redis
  readonly namespace: string
  readonly instanceId: string
  readonly mapTrackedKey: (redisKey: string) => string | undefined
  readonly counters: BusCounters
  readonly logger: Logger
  /** Tracking stopped (its connection was lost): the bus is unhealthy until it is back. */
  readonly onOff: () => void
}

export class Tracking {
  /** The channel the subscriber must listen to as well. */
  readonly channel = TRACKING_CHANNEL
  readonly #o: TrackingOptions
  #tracker: Redis | undefined
  #subscriberId = -1
  #on = false
  #seq = 0

  constructor(options: TrackingOptions) {
    this.#o = options
  }

  /** True while invalidations are redirected to the current subscriber. */
  get on(): boolean {
    return this.#on
  }

  /** Opens the tracking connection; it turns tracking on whenever it (re)connects. */
  open(): void {
    const trackerOptions: RedisOptions = {
      protocol: 2,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectionName: `tiercache-bus-tracking:${this.#o.instanceId}`,
      retryStrategy: (times) => Math.min(20 * times, 500),
    }
    const tracker = this.#o.data.duplicate(trackerOptions)
    this.#tracker = tracker
    tracker.on('ready', () => {
      this.#enable().catch((error: unknown) => this.#o.logger.warn({ err: error }, 'tiercache bus: CLIENT TRACKING failed'))
    })
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      tracker.on(event, () => {
        if (!this.#on) return
        this.#on = false
        this.#o.onOff()
      })
    }
    tracker.on('error', (error: Error) => this.#o.logger.debug({ err: error }, 'tiercache bus: tracking connection error'))
    tracker.connect().catch(() => {})
  }

  /** Points tracking at a new subscriber connection (its CLIENT ID); resolves once it is on. */
  redirect(subscriberId: number): Promise<void> {
    this.#subscriberId = subscriberId
    return this.#enable()
  }

  /** The subscriber connection is gone: nothing to redirect to until the next `redirect()`. */
  lost(): void {
    this.#subscriberId = -1
  }

  /** Needed again after either connection reconnects. */
  async #enable(): Promise<void> {
    const tracker = this.#tracker
    const id = this.#subscriberId
    if (tracker === undefined || tracker.status !== 'ready' || id < 0) return
    await tracker.call('CLIENT', 'TRACKING', 'off')
    await tracker.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', id, 'BCAST', 'PREFIX', `${this.#o.namespace}:`)
    if (id === this.#subscriberId && tracker.status === 'ready') this.#on = true
  }

  /**
   * The invalidation of a `__redis__:invalidate` payload: the L1 keys of the changed Redis keys,
   * or a clear. Undefined when no key maps to an L1 key, or the payload is malformed (counted).
   */
  invalidation(payload: unknown): ReceivedInvalidation | undefined {
    let message: ReceivedInvalidation
    if (payload === null) {
      message = { op: 'clear', source: TRACKING_SOURCE, seq: ++this.#seq, ts: Date.now() }
    } else if (Array.isArray(payload)) {
      const keys: string[] = []
      for (const raw of payload as unknown[]) {
        const key = this.#o.mapTrackedKey(Buffer.isBuffer(raw) ? raw.toString() : String(raw))
        if (key !== undefined) keys.push(key)
      }
      if (keys.length === 0) return undefined
      message = { op: 'delete', keys, source: TRACKING_SOURCE, seq: ++this.#seq, ts: Date.now() }
    } else {
      this.#o.counters.malformed++
      return undefined
    }
    this.#o.counters.tracked++
    return message
  }

  /** Hands over the tracking connection for closing. */
  close(): Redis | undefined {
    const tracker = this.#tracker
    this.#tracker = undefined
    return tracker
  }
}
