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
 *
 * On a cluster each master reports the keys it holds only, to a connection on the same server:
 * `cluster-tracking.ts` keeps one per master.
 */
import type { Redis, RedisOptions } from 'ioredis'
import type { Logger, ReceivedInvalidation } from '@tiercache/core'
import type { BusCounters } from './counters.js'

export const TRACKING_CHANNEL = '__redis__:invalidate'
const TRACKING_SOURCE = 'redis:tracking'

/** What the receiver and the bus need of tracking, on one server or on every master of a cluster. */
export interface TrackingSource {
  /** True while every server that holds keys of the namespace reports their changes. */
  readonly on: boolean
  /** The invalidations arrive on the bus's subscriber connection (and so prove it alive). */
  readonly onSubscriber: boolean
  /** Opens the tracking connections; they turn tracking on whenever they (re)connect. */
  open(): void
  /** On every heartbeat: a chance to follow a topology that changed (a cluster's masters). */
  check(): void
  /** The invalidation of a `__redis__:invalidate` payload, if it names an L1 key (see `TrackedKeys`). */
  invalidation(payload: unknown): ReceivedInvalidation | undefined
  /** Stops, and hands over the tracking connections for closing. */
  close(): Redis[]
}

/**
 * `__redis__:invalidate` payloads to invalidations: the L1 keys of the changed Redis keys, or a
 * clear (a null payload: FLUSHDB/FLUSHALL). Numbered in order of arrival, from whichever server.
 */
export class TrackedKeys {
  readonly #mapTrackedKey: (redisKey: string) => string | undefined
  readonly #counters: BusCounters
  #seq = 0

  constructor(mapTrackedKey: (redisKey: string) => string | undefined, counters: BusCounters) {
    this.#mapTrackedKey = mapTrackedKey
    this.#counters = counters
  }

  /** Undefined when no key maps to an L1 key, or the payload is malformed (counted). */
  invalidation(payload: unknown): ReceivedInvalidation | undefined {
    let message: ReceivedInvalidation
    if (payload === null) {
      message = { op: 'clear', source: TRACKING_SOURCE, seq: ++this.#seq, ts: Date.now() }
    } else if (Array.isArray(payload)) {
      const keys: string[] = []
      for (const raw of payload as unknown[]) {
        const key = this.#mapTrackedKey(Buffer.isBuffer(raw) ? raw.toString() : String(raw))
        if (key !== undefined) keys.push(key)
      }
      if (keys.length === 0) return undefined
      message = { op: 'delete', keys, source: TRACKING_SOURCE, seq: ++this.#seq, ts: Date.now() }
    } else {
      this.#counters.malformed++
      return undefined
    }
    this.#counters.tracked++
    return message
  }
}

/** The options of `CLIENT TRACKING` for a namespace: every key under it, sent to `redirectId`. */
export function trackingCommand(redirectId: number, namespace: string): (string | number)[] {
  return ['TRACKING', 'on', 'REDIRECT', redirectId, 'BCAST', 'PREFIX', `${namespace}:`]
}

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

/**
 * Tracking on a standalone Redis (or through Sentinel): a tracking connection of its own,
 * redirecting to the bus's subscriber connection, which listens to `__redis__:invalidate` too.
 */
export class Tracking implements TrackingSource {
  /** The channel the subscriber must listen to as well. */
  readonly channel = TRACKING_CHANNEL
  readonly onSubscriber = true
  readonly #o: TrackingOptions
  readonly #keys: TrackedKeys
  #tracker: Redis | undefined
  #subscriberId = -1
  #on = false

  constructor(options: TrackingOptions) {
    this.#o = options
    this.#keys = new TrackedKeys(options.mapTrackedKey, options.counters)
  }

  /** True while invalidations are redirected to the current subscriber. */
  get on(): boolean {
    return this.#on
  }

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
    await tracker.call('CLIENT', ...trackingCommand(id, this.#o.namespace))
    if (id === this.#subscriberId && tracker.status === 'ready') this.#on = true
  }

  /** Its connection reconnects on its own, and the subscriber's `redirect()` follows the subscriber. */
  check(): void {}

  invalidation(payload: unknown): ReceivedInvalidation | undefined {
    return this.#keys.invalidation(payload)
  }

  close(): Redis[] {
    const tracker = this.#tracker
    this.#tracker = undefined
    return tracker === undefined ? [] : [tracker]
  }
}
