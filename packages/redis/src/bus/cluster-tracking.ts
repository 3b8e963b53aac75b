/**
 * Tracking mode on a Redis Cluster. A master reports changes of the keys it holds, and only to a
 * connection on the same server: so one connection per master, which turns tracking on with
 * `REDIRECT` to its own CLIENT ID and then subscribes to `__redis__:invalidate` (RESP2 delivers
 * the invalidations there, as pub/sub messages). `BCAST PREFIX <namespace>:` follows no slot: a
 * slot that moves to another master is reported by that master's connection from then on.
 *
 * The set of masters follows the cluster client's slot table: each refresh of it (after a MOVED,
 * or asked for here on the heartbeat, every 10 s, or every second while a master is untracked) opens a tracker for a new master and closes the
 * tracker of a node that no longer is one. While a master has no tracker on, `on` is false and the
 * bus unhealthy (its L1 capped), as when standalone tracking loses its connection: changes made
 * then on that master go unreported, and the cap bounds how long a copy can miss them. A master
 * that dies leaves its tracker reconnecting in vain; the heartbeat's `check()` refreshes the slot
 * table then, which names the replica promoted in its place.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import type { Logger, ReceivedInvalidation } from '@tiercache/core'
import { refreshSlots } from '../connection.js'
import type { BusCounters } from './counters.js'
import { TRACKING_CHANNEL, TrackedKeys, trackingCommand, type TrackingSource } from './tracking.js'

/** Shortest time between two slot-table refreshes asked for by `check()` while a master is untracked. */
const CHECK_INTERVAL_MS = 1_000
/**
 * And while every master is tracked: a master added to the cluster would otherwise be seen only
 * when this process's client happens to get a MOVED, which L1 hits never cause.
 */
const HEALTHY_CHECK_INTERVAL_MS = 10_000

export interface ClusterTrackingOptions {
  readonly cluster: Cluster
  readonly namespace: string
  readonly instanceId: string
  readonly mapTrackedKey: (redisKey: string) => string | undefined
  readonly counters: BusCounters
  readonly logger: Logger
  /** Every message of a tracker connection, as ioredis hands it over. */
  readonly onMessage: (channel: Buffer, payload: unknown) => void
  /** A master's tracker went off: the bus is unhealthy until every master's is on again. */
  readonly onOff: () => void
}

/** The tracker connection of one master. */
class MasterTracker {
  readonly connection: Redis
  /** Tracking on and `__redis__:invalidate` subscribed, on the current connection. */
  on = false
  #closed = false

  constructor(nodeKey: string, o: ClusterTrackingOptions) {
    const separator = nodeKey.lastIndexOf(':')
    const options: RedisOptions = {
      ...o.cluster.options.redisOptions,
      host: nodeKey.slice(0, separator),
      port: Number(nodeKey.slice(separator + 1)),
      // RESP2: ioredis drops the RESP3 push that carries invalidations.
      protocol: 2,
      autoResubscribe: false,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      lazyConnect: true,
      connectionName: `tiercache-bus-tracking:${o.instanceId}`,
      retryStrategy: (times) => Math.min(20 * times, 500),
      maxRetriesPerRequest: null,
    }
    const connection = new Redis(options)
    this.connection = connection
    // Tracking is a property of the connection: turned on again on every new one.
    connection.on('ready', () => {
      this.#enable(o.namespace).catch((error: unknown) => {
        o.logger.warn({ err: error, node: nodeKey }, 'tiercache bus: CLIENT TRACKING failed on a master; reconnecting to try again')
        // A new connection starts over: no tracking, no subscription half set up.
        if (!this.#closed) connection.disconnect(true)
      })
    })
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      connection.on(event, () => {
        if (!this.on) return
        this.on = false
        if (!this.#closed) o.onOff()
      })
    }
    connection.on('error', (error: Error) => o.logger.debug({ err: error, node: nodeKey }, 'tiercache bus: tracking connection error'))
    connection.on('messageBuffer', o.onMessage)
    connection.connect().catch(() => {})
  }

  async #enable(namespace: string): Promise<void> {
    const connection = this.connection
    const id = Number(await connection.client('ID'))
    await connection.call('CLIENT', ...trackingCommand(id, namespace))
    await connection.subscribe(TRACKING_CHANNEL)
    if (!this.#closed && connection.status === 'ready') this.on = true
  }

  close(): Redis {
    this.#closed = true
    this.on = false
    return this.connection
  }
}

export class ClusterTracking implements TrackingSource {
  readonly onSubscriber = false
  readonly #o: ClusterTrackingOptions
  readonly #keys: TrackedKeys
  /** By node key (`host:port`), one per master of the slot table. */
  readonly #masters = new Map<string, MasterTracker>()
  #syncing: Promise<void> | undefined
  #checkedAt = 0
  #closed = false

  constructor(options: ClusterTrackingOptions) {
    this.#o = options
    this.#keys = new TrackedKeys(options.mapTrackedKey, options.counters)
  }

  /** True while every master of the slot table has its tracker on. */
  get on(): boolean {
    if (this.#masters.size === 0) return false
    for (const tracker of this.#masters.values()) if (!tracker.on) return false
    return true
  }

  /** The masters tracked now (`host:port`). */
  get masters(): string[] {
    return [...this.#masters.keys()]
  }

  open(): void {
    if (this.#closed) return
    this.#o.cluster.on('refresh', this.#follow)
    this.#follow()
  }

  /**
   * Asks the cluster for its slot table, at most once a second while a master is untracked (it may
   * have failed over) and once every 10 s otherwise (a master may have been added).
   */
  check(): void {
    const now = Date.now()
    const interval = this.on ? HEALTHY_CHECK_INTERVAL_MS : CHECK_INTERVAL_MS
    if (this.#closed || this.#syncing !== undefined || now - this.#checkedAt < interval) return
    this.#checkedAt = now
    this.#syncing = refreshSlots(this.#o.cluster)
      .then(() => this.#sync())
      .catch((error: unknown) => this.#o.logger.debug({ err: error }, 'tiercache bus: slot table refresh for tracking failed'))
      .finally(() => {
        this.#syncing = undefined
      })
  }

  invalidation(payload: unknown): ReceivedInvalidation | undefined {
    return this.#keys.invalidation(payload)
  }

  close(): Redis[] {
    this.#closed = true
    this.#o.cluster.off('refresh', this.#follow)
    const connections = [...this.#masters.values()].map((tracker) => tracker.close())
    this.#masters.clear()
    return connections
  }

  readonly #follow = (): void => {
    this.#sync()
  }

  /** Opens a tracker for each master of the slot table without one, and drops those of former masters. */
  #sync(): void {
    if (this.#closed) return
    const masters = new Set<string>()
    for (const owners of this.#o.cluster.slots) {
      const master = owners?.[0]
      if (master !== undefined) masters.add(master)
    }
    // An empty table (a client not ready yet): nothing to follow, keep what there is.
    if (masters.size === 0) return
    let added = false
    for (const master of masters) {
      if (this.#masters.has(master)) continue
      this.#masters.set(master, new MasterTracker(master, this.#o))
      added = true
    }
    // A new master's changes go unreported until its tracker is on: unhealthy until then.
    if (added) this.#o.onOff()
    for (const [node, tracker] of this.#masters) {
      if (masters.has(node)) continue
      this.#masters.delete(node)
      // No longer a master (failed over, or removed): nothing to wait for on it.
      tracker.close().disconnect()
    }
  }
}
