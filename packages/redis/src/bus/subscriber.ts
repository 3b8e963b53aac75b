/**
 * The subscriber connection. Receiving needs a connection of its own in subscriber mode: the data
 * client is duplicated for it (RESP2, because ioredis drops the RESP3 `invalidate` push that
 * tracking mode needs), and it subscribes itself on every `ready` instead of relying on ioredis'
 * automatic re-subscribe, so it knows exactly when a subscription is live. In cluster mode the
 * channel is a sharded channel (SSUBSCRIBE): the subscriber is a plain connection to the master
 * that owns the channel's slot, found through the cluster client's slot table, and found again
 * (the connection recycled) whenever the subscription stops working.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import type { Logger } from '@tiercache/core'
import { connectReady, isCluster, refreshSlots } from '../connection.js'
import { L2UnavailableError } from '../errors.js'
import { slotOf } from '../keys.js'
import type { BusCounters } from './counters.js'
import { Waiters } from './waiters.js'

/** A second source on the same connection (tracking mode): its channel, and where to redirect it. */
export interface SubscriptionExtra {
  readonly channel: string
  /** The subscriber connection's CLIENT ID, once subscribed; resolves when the source is on. */
  redirect(subscriberId: number): Promise<void>
  /** The subscriber connection was lost. */
  lost(): void
}

export interface SubscriberOptions {
  readonly data: Redis | Cluster
  readonly channel: string
  /** This node's heartbeat channel: in the channel's slot, subscribed with it in one command. */
  readonly heartbeatChannel: string
  readonly instanceId: string
  readonly connectTimeoutMs: number
  /** Bounds the pause before a recycled connection is reopened. */
  readonly heartbeatIntervalMs: number
  readonly counters: BusCounters
  readonly logger: Logger
  readonly extra: SubscriptionExtra | undefined
  /** Every message of the connection, as ioredis hands it over (channel and payload as Buffers). */
  readonly onMessage: (channel: Buffer, payload: unknown) => void
  readonly onSubscribed: () => void
  readonly onLost: () => void
}

export class Subscriber {
  readonly #o: SubscriberOptions
  readonly #cluster: boolean
  readonly #subscribedWaiters = new Waiters()
  #connection: Redis | undefined
  #subscribed = false
  #recycling = false
  #closed = false
  /** A shard connection was opened before: a reopen refreshes the slot table first. */
  #opened = false

  constructor(options: SubscriberOptions) {
    this.#o = options
    this.#cluster = isCluster(options.data)
  }

  get subscribed(): boolean {
    return this.#subscribed
  }

  /** True (and subscribed from now on) when a message arrived on a ready connection. */
  confirm(): boolean {
    if (!this.#subscribed && this.#connection?.status !== 'ready') return false
    this.#subscribed = true
    return true
  }

  /** Resolves true once subscribed (or woken by close), false if not within `timeoutMs`. */
  waitSubscribed(timeoutMs: number): Promise<boolean> {
    return this.#subscribedWaiters.wait(() => this.#subscribed, timeoutMs)
  }

  /** Opens the connection; it subscribes on every `ready`. Rejects only in a cluster (not ready, slot unserved). */
  async open(): Promise<void> {
    const options: RedisOptions = {
      // RESP2: ioredis 6 drops the RESP3 push that carries tracking invalidations.
      protocol: 2,
      autoResubscribe: false,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      lazyConnect: true,
      connectionName: `tiercache-bus:${this.#o.instanceId}`,
      // Reconnect quickly and for ever: the node is unhealthy (L1 capped) until it is back.
      retryStrategy: (times) => Math.min(20 * times, 500),
      maxRetriesPerRequest: null,
    }
    const data = this.#o.data
    const connection = isCluster(data) ? await this.#shardConnection(data, options) : data.duplicate(options)
    if (this.#closed) {
      // close() ran while the cluster client was getting ready.
      connection.disconnect()
      return
    }
    this.#connection = connection
    connection.on('ready', () => this.#subscribe(connection))
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      connection.on(event, () => this.#lost(connection, event))
    }
    connection.on('error', (error: Error) => {
      this.#o.logger.debug({ err: error }, 'tiercache bus: subscriber error')
      this.#lost(connection, 'error')
    })
    connection.on(this.#cluster ? 'smessageBuffer' : 'messageBuffer', this.#o.onMessage)
    connection.connect().catch((error: unknown) => {
      // ioredis keeps retrying by its retryStrategy; `start()` times out if it never succeeds.
      this.#o.logger.warn({ err: error }, 'tiercache bus: subscriber could not connect yet')
    })
  }

  /** A plain connection to the master serving the channel's slot: sharded pub/sub lives there. */
  async #shardConnection(cluster: Cluster, options: RedisOptions): Promise<Redis> {
    const channel = this.#o.channel
    if (!(await connectReady(cluster, this.#o.connectTimeoutMs))) {
      throw new L2UnavailableError(
        `redis bus: the cluster was not ready within ${this.#o.connectTimeoutMs}ms (connectTimeout; status ${cluster.status}), so no shard subscriber for "${channel}": check the startup nodes, or raise connectTimeout`,
      )
    }
    // Reopened: the slot may have a new owner (a failover) that the client's table does not show yet.
    if (this.#opened) await refreshSlots(cluster)
    this.#opened = true
    const slot = slotOf(channel)
    const nodeKey = cluster.slots[slot]?.[0]
    if (nodeKey === undefined) {
      throw new L2UnavailableError(`redis bus: no cluster node serves slot ${slot} of "${channel}": assign every slot of the cluster (CLUSTER ADDSLOTS)`)
    }
    const separator = nodeKey.lastIndexOf(':')
    return new Redis({
      ...cluster.options.redisOptions,
      ...options,
      host: nodeKey.slice(0, separator),
      port: Number(nodeKey.slice(separator + 1)),
    })
  }

  #subscribe(connection: Redis): void {
    if (this.#closed || connection !== this.#connection) return
    this.#subscribeOn(connection).then(
      () => {
        if (this.#closed || connection !== this.#connection || connection.status !== 'ready') return
        this.#subscribed = true
        this.#o.counters.subscriptions++
        this.#subscribedWaiters.wake()
        this.#o.onSubscribed()
      },
      (error: unknown) => {
        this.#o.logger.warn({ err: error }, 'tiercache bus: subscribe failed')
        // A moved slot (cluster) or a refused command: start over on a fresh connection.
        this.recycle()
      },
    )
  }

  async #subscribeOn(connection: Redis): Promise<void> {
    const extra = this.#o.extra
    if (extra !== undefined) {
      const id = await connection.client('ID')
      await connection.subscribe(...this.#channels(), extra.channel)
      await extra.redirect(Number(id))
    } else if (this.#cluster) {
      await connection.ssubscribe(...this.#channels())
    } else {
      await connection.subscribe(...this.#channels())
    }
  }

  /** The bus channel, and the heartbeat channel unless the heartbeats go on the bus channel. */
  #channels(): string[] {
    const { channel, heartbeatChannel } = this.#o
    return heartbeatChannel === channel ? [channel] : [channel, heartbeatChannel]
  }

  #lost(connection: Redis, reason: string): void {
    if (connection !== this.#connection) return
    if (this.#subscribed) this.#o.logger.warn({ reason, channel: this.#o.channel }, 'tiercache bus: subscriber lost')
    this.#subscribed = false
    this.#o.extra?.lost()
    this.#o.onLost()
  }

  /** Drops the connection and opens a new one (after the slot moved, say). */
  recycle(): void {
    if (this.#recycling || this.#closed) return
    this.#recycling = true
    const old = this.#connection
    this.#connection = undefined
    this.#subscribed = false
    this.#o.extra?.lost()
    this.#o.onLost()
    old?.disconnect()
    const timer = setTimeout(() => {
      this.#recycling = false
      if (this.#closed) return
      this.open().catch((error: unknown) => {
        this.#o.logger.warn({ err: error }, 'tiercache bus: could not reopen the subscriber')
        this.recycle()
      })
    }, Math.min(this.#o.heartbeatIntervalMs, 200))
    timer.unref()
  }

  /** Stops for good, wakes `waitSubscribed`, and hands over the connection for closing. */
  close(): Redis | undefined {
    this.#closed = true
    this.#subscribedWaiters.wake()
    const connection = this.#connection
    this.#connection = undefined
    return connection
  }
}
