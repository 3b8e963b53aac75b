/**
 * The Redis invalidation bus: the `InvalidationBus` port of @tiercache/core over Redis pub/sub.
 *
 * Implementation notes
 *
 * - Connections. Messages are published on the data connection (the caller's client, or one the
 *   bus creates from a URL or options). Receiving needs a connection of its own in subscriber
 *   mode: the bus duplicates the data client for it (RESP2, because ioredis drops the RESP3
 *   `invalidate` push that tracking mode needs) and subscribes itself on every `ready` instead of
 *   relying on ioredis' automatic re-subscribe, so it knows exactly when a subscription is live.
 *   In cluster mode the channel is a sharded channel (SPUBLISH / SSUBSCRIBE): the subscriber is a
 *   plain connection to the master that owns the channel's slot, found through the cluster
 *   client's slot table and found again whenever the subscription stops working.
 * - Batching. `publish()` calls made within one tick go out as one message (`coalesce`): a burst
 *   of writes costs one PUBLISH and one receive per node. Every caller of the batch is resolved
 *   once Redis answered the PUBLISH.
 * - Health. Unhealthy as soon as the subscriber connection closes, errors or starts reconnecting,
 *   and when no message at all (own heartbeats included) was seen within `heartbeatTimeout`: a
 *   paused (SIGSTOP) or partitioned Redis keeps its sockets open and shows no disconnect. Every
 *   node publishes a heartbeat each `heartbeatInterval`, so a node always expects its own. The
 *   cost: each node receives every node's heartbeats (N nodes at the default 250 ms: 4·N
 *   messages a second, 29 bytes and ~1 µs each to decode).
 *   Healthy again only once the subscription is live again and a message was received on it
 *   after that. Detection takes at most `heartbeatTimeout + heartbeatInterval` (one interval more
 *   when this process's own event loop stalled, so that a busy node does not mistake its own
 *   backlog for a silent Redis).
 * - Handler. The hot path of the bus: decode (msgpack), validate by hand, drop own messages,
 *   hand each op to the engine. A malformed message is counted and dropped; nothing thrown by
 *   the engine's handler escapes into ioredis.
 * - Tracking mode. Adds Redis server-assisted client-side caching as a second source:
 *   `CLIENT TRACKING on REDIRECT <subscriber id> BCAST PREFIX <namespace>:` on a tracking
 *   connection of the bus, so every change of a key under the namespace — including writes made
 *   by other programs directly in Redis — reaches the subscriber on `__redis__:invalidate`. The
 *   Redis keys are mapped to L1 keys by `mapTrackedKey`; a null payload (FLUSHDB/FLUSHALL) is a
 *   `clear`. The bus messages still carry generations and clears between nodes. A node also
 *   hears of its own L2 writes this way (tracking has no source), so it drops its own fresh L1
 *   copy once and reads it back from L2: one extra L2 read per write is the price.
 */
import { randomBytes } from 'node:crypto'
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { z } from 'zod'
import { l1KeyOfStoreKey, parseDuration, silentLogger, type Invalidation, type InvalidationBus, type Logger, type ReceivedInvalidation } from '@tiercache/core'
import { coalesce, decodeBusMessage, encodeBusMessage, encodeHeartbeat } from './bus-message.js'
import { decodeId, slotOf } from './keys.js'
import { CLOSE_GRACE_MS, closeClient, createClient, firstConnection, isCluster, resolveConnection, type RedisConnectionOptions, type ResolvedConnection } from './connection.js'
import { InvalidOptionsError } from './errors.js'

export interface RedisBusOptions {
  /**
   * Where Redis is, as for `redisStore()`: `{ host, port, … }`, `{ sentinels, name }`,
   * `{ cluster: [...] }`, a `redis://` URL, or an ioredis `Redis` / `Cluster`. A client passed in
   * stays the caller's: `close()` never quits it (the subscriber connection is the bus's own, a
   * duplicate). A client with `keyPrefix` is refused (the namespace is the only prefix).
   */
  readonly redis: RedisConnectionOptions | Redis | Cluster
  /** Key namespace; the channel is `<namespace>:bus`. */
  readonly namespace: string
  /** How often this node publishes a heartbeat. @default '250ms' */
  readonly heartbeatInterval?: number | string
  /** No message seen for this long marks the bus unhealthy. @default '1s' */
  readonly heartbeatTimeout?: number | string
  /** This node's id, the `source` of what it publishes. @default 16 random hex characters */
  readonly instanceId?: string
  /**
   * `'pubsub'`: invalidations come from the other nodes' messages only. `'tracking'`: also from
   * Redis client-side caching (standalone Redis only), so direct writes by other programs count.
   * @default 'pubsub'
   */
  readonly mode?: 'pubsub' | 'tracking'
  /**
   * Tracking mode: maps a changed Redis key to the L1 key to drop, or `undefined` to ignore it.
   * @default `defaultTrackedKeyMapper(namespace)`: value keys to the engine's L1 keys
   */
  readonly mapTrackedKey?: (redisKey: string) => string | undefined
  /** How long `start()` waits for the first subscription before it rejects. @default '10s' */
  readonly connectTimeout?: number | string
  /** @default silent */
  readonly logger?: Logger
}

/** Counters of one bus, for statistics and tests. */
export interface RedisBusStats {
  /** Invalidations handed to `publish()`. */
  readonly published: number
  /** Messages sent for them (batching makes this smaller). */
  readonly messagesSent: number
  readonly publishErrors: number
  /** Messages from other nodes whose ops reached the handler. */
  readonly received: number
  /** Own messages seen and ignored. */
  readonly ownIgnored: number
  /** Messages that failed to decode or validate, dropped. */
  readonly malformed: number
  /** Invalidations that came from Redis tracking (tracking mode). */
  readonly tracked: number
  /** Times the bus became unhealthy because the heartbeat deadline passed. */
  readonly heartbeatsMissed: number
  /** Health changes to unhealthy, for any reason. */
  readonly unhealthyTransitions: number
  /** Successful (re-)subscriptions. */
  readonly subscriptions: number
}

/** The Redis bus: the port plus what it adds for operations and tests. */
export interface RedisBus extends InvalidationBus {
  /** The channel it publishes on and listens to. */
  readonly channel: string
  /** Sequence number of the last op published (0 before any). */
  readonly lastSeq: number
  /** A snapshot of the counters. */
  stats(): RedisBusStats
  /** True once healthy, false if not within `timeoutMs` (default `connectTimeout`); never rejects. */
  ready(timeoutMs?: number): Promise<boolean>
}

interface ResolvedBusOptions {
  readonly connection: ResolvedConnection
  readonly namespace: string
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly instanceId: string
  readonly mode: 'pubsub' | 'tracking'
  readonly mapTrackedKey: (redisKey: string) => string | undefined
  readonly connectTimeoutMs: number
  readonly logger: Logger
}

const DEFAULTS = Object.freeze({
  heartbeatInterval: '250ms',
  heartbeatTimeout: '1s',
  mode: 'pubsub',
  connectTimeout: '10s',
} as const)

const duration = z.union([z.number(), z.string()])
const schema = z.object({
  namespace: z.string().min(1, 'expected a non-empty string').regex(/^[^\s]+$/, 'expected no whitespace'),
  heartbeatInterval: duration.optional(),
  heartbeatTimeout: duration.optional(),
  instanceId: z.string().min(1).max(128).optional(),
  mode: z.enum(['pubsub', 'tracking']).optional(),
  mapTrackedKey: z.custom<(key: string) => string | undefined>((value) => typeof value === 'function', 'expected a function').optional(),
  connectTimeout: duration.optional(),
  logger: z
    .custom<Logger>(
      (value) => typeof value === 'object' && value !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function'),
      'expected a pino-compatible logger with debug, info, warn and error',
    )
    .optional(),
})

/** Validates and completes the options of `redisBus()`. */
export function resolveRedisBusOptions(options: RedisBusOptions): ResolvedBusOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('', 'expected an options object')
  const connection = resolveConnection(options.redis, 'redis')
  const parsed = schema.safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new InvalidOptionsError(issue.path.map(String).join('.'), issue.message)
  }
  const o = parsed.data
  const heartbeatIntervalMs = parseDuration(o.heartbeatInterval ?? DEFAULTS.heartbeatInterval, 'heartbeatInterval')
  const heartbeatTimeoutMs = parseDuration(o.heartbeatTimeout ?? DEFAULTS.heartbeatTimeout, 'heartbeatTimeout')
  const connectTimeoutMs = parseDuration(o.connectTimeout ?? DEFAULTS.connectTimeout, 'connectTimeout')
  if (heartbeatIntervalMs < 1) throw new InvalidOptionsError('heartbeatInterval', `expected at least 1ms (got ${heartbeatIntervalMs})`)
  if (heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw new InvalidOptionsError(
      'heartbeatTimeout',
      `must be longer than heartbeatInterval (${heartbeatIntervalMs}ms), or every node would look unhealthy between two heartbeats (got ${heartbeatTimeoutMs}ms)`,
    )
  }
  const mode = o.mode ?? DEFAULTS.mode
  const clustered = connection.kind === 'cluster' || (connection.kind === 'client' && isCluster(connection.client))
  if (mode === 'tracking' && clustered) {
    throw new InvalidOptionsError('mode', "'tracking' needs a standalone Redis: a cluster would need one tracking redirect per master")
  }
  const namespace = o.namespace
  return Object.freeze({
    connection,
    namespace,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    instanceId: o.instanceId ?? randomBytes(8).toString('hex'),
    mode,
    mapTrackedKey: o.mapTrackedKey ?? defaultTrackedKeyMapper(namespace),
    connectTimeoutMs,
    logger: o.logger ?? silentLogger,
  })
}

// `<family>[:g<generation>]:{<id>}` after the namespace; a family is `<name>@<version>`.
const VALUE_KEY = /^(.+@\d+)(?::g([^{}]*))?:\{([^{}]*)\}$/

/**
 * The default tracked-key mapping: a value key `<namespace>:<family>[:g<generation>]:{<id>}` back
 * to its store key, and that to the engine's L1 key (`l1KeyOfStoreKey`: the engine owns what the
 * parts mean). Leases change on every miss and generations arrive as bus messages with their
 * value: both are ignored, as is anything that is not a value key. A service that lays out keys
 * differently passes its own.
 */
export function defaultTrackedKeyMapper(namespace: string): (redisKey: string) => string | undefined {
  const prefix = `${namespace}:`
  const lease = `${prefix}lease:`
  const generation = `${prefix}gen`
  return (redisKey) => {
    if (!redisKey.startsWith(prefix) || redisKey.startsWith(lease)) return undefined
    if (redisKey.startsWith(generation) && (redisKey.length === generation.length || redisKey[generation.length] === ':')) return undefined
    const match = VALUE_KEY.exec(redisKey.slice(prefix.length))
    if (match === null) return undefined
    return l1KeyOfStoreKey({ family: decodeId(match[1]!), generation: decodeId(match[2] ?? ''), id: decodeId(match[3]!) })
  }
}

/** Creates a Redis invalidation bus. Call `start()` before use; `close()` when done. */
export function redisBus(options: RedisBusOptions): RedisBus {
  return new RedisPubSubBus(resolveRedisBusOptions(options))
}

const TRACKING_CHANNEL = '__redis__:invalidate'
const TRACKING_SOURCE = 'redis:tracking'
/** Heartbeats not yet answered by Redis; more would only pile up behind a paused server. */
const MAX_HEARTBEATS_IN_FLIGHT = 4
const NOOP_HANDLER = (_message: ReceivedInvalidation): void => {}

interface Batch {
  readonly ops: Invalidation[]
  readonly promise: Promise<void>
  resolve(): void
  reject(error: unknown): void
}

class RedisPubSubBus implements RedisBus {
  readonly instanceId: string
  readonly channel: string
  readonly #o: ResolvedBusOptions
  readonly #channelBuffer: Buffer
  readonly #ownsData: boolean
  readonly #data: Redis | Cluster
  readonly #cluster: boolean
  #subscriber: Redis | undefined
  #tracker: Redis | undefined
  #handler: (message: ReceivedInvalidation) => void = NOOP_HANDLER
  readonly #healthListeners: ((healthy: boolean) => void)[] = []
  #healthy = false
  #subscribed = false
  #trackingOn = false
  #lastSeen = 0
  #lastTick = 0
  #nextSeq = 1
  #trackingSeq = 0
  #heartbeatsInFlight = 0
  #batch: Batch | undefined
  #timer: NodeJS.Timeout | undefined
  #startPromise: Promise<void> | undefined
  #closed = false
  #subscribedWaiters: (() => void)[] = []
  #seenWaiters: (() => void)[] = []
  /** The data connection's first connection, while it is being made. */
  #dataOpening: Promise<boolean> | undefined
  #recycling = false
  readonly #counters = {
    published: 0,
    messagesSent: 0,
    publishErrors: 0,
    received: 0,
    ownIgnored: 0,
    malformed: 0,
    tracked: 0,
    heartbeatsMissed: 0,
    unhealthyTransitions: 0,
    subscriptions: 0,
  }

  constructor(options: ResolvedBusOptions) {
    this.#o = options
    this.instanceId = options.instanceId
    this.channel = `${options.namespace}:bus`
    this.#channelBuffer = Buffer.from(this.channel)
    const connection = options.connection
    if (connection.kind === 'client') {
      this.#data = connection.client
      this.#ownsData = false
    } else {
      // Like every client the SDK creates: no offline queue, no replay of unanswered commands.
      this.#data = createClient(connection, { commandTimeout: 1_000, connectTimeout: options.connectTimeoutMs, maxRetriesPerRequest: 1 })
      this.#data.on('error', (error: Error) => this.#o.logger.debug({ err: error }, 'tiercache bus: data connection error'))
      this.#ownsData = true
    }
    this.#cluster = isCluster(this.#data)
    this.#dataOpening = firstConnection(this.#data)
    void this.#dataOpening?.then(() => (this.#dataOpening = undefined))
  }

  get healthy(): boolean {
    return this.#healthy
  }

  get lastSeq(): number {
    return this.#nextSeq - 1
  }

  stats(): RedisBusStats {
    return { ...this.#counters }
  }

  onMessage(handler: (message: ReceivedInvalidation) => void): void {
    this.#handler = handler
  }

  onHealthChange(listener: (healthy: boolean) => void): void {
    this.#healthListeners.push(listener)
  }

  publish(message: Invalidation): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('tiercache bus: publish after close()'))
    this.#counters.published++
    let batch = this.#batch
    if (batch === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      batch = { ops: [], promise, resolve, reject }
      this.#batch = batch
      process.nextTick(this.#flush)
    }
    batch.ops.push(message)
    return batch.promise
  }

  readonly #flush = (): void => {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    const ops = coalesce(batch.ops)
    const seq = this.#nextSeq
    this.#nextSeq += ops.length
    let payload: Buffer
    try {
      payload = encodeBusMessage(this.instanceId, seq, Date.now(), ops)
    } catch (error) {
      this.#counters.publishErrors++
      batch.reject(error)
      return
    }
    this.#counters.messagesSent++
    this.#send(payload).then(batch.resolve, (error: unknown) => {
      this.#counters.publishErrors++
      batch.reject(error)
    })
  }

  #send(payload: Buffer): Promise<unknown> {
    // Connecting is not failing: a message handed over while the data connection is still being
    // made for the first time goes out once it is (that attempt always ends: connectTimeout).
    const opening = this.#dataOpening
    if (opening !== undefined) return opening.then(() => this.#send(payload))
    return this.#cluster ? this.#data.spublish(this.channel, payload) : this.#data.publish(this.channel, payload)
  }

  /**
   * Resolves true once the bus is healthy (subscribed and a message heard on it), false if it is
   * not within `timeoutMs` (default: `connectTimeout`); never rejects. It does not start the bus.
   */
  ready(timeoutMs: number = this.#o.connectTimeoutMs): Promise<boolean> {
    if (this.#healthy) return Promise.resolve(true)
    if (this.#closed) return Promise.resolve(false)
    return this.#waitFor(this.#seenWaiters, () => this.#healthy, timeoutMs, undefined).then(() => this.#healthy)
  }

  start(): Promise<void> {
    this.#startPromise ??= this.#start()
    return this.#startPromise
  }

  async #start(): Promise<void> {
    if (this.#o.mode === 'tracking') this.#openTracker()
    try {
      await this.#openSubscriber()
    } catch (error) {
      // Only a cluster can fail here (not ready, slot unknown): keep trying in the background.
      this.#o.logger.warn({ err: error }, 'tiercache bus: could not open the subscriber yet')
      this.#recycleSubscriber()
    }
    if (this.#closed) return
    this.#lastTick = Date.now()
    this.#timer = setInterval(this.#tick, this.#o.heartbeatIntervalMs)
    this.#timer.unref()
    await this.#waitFor(this.#subscribedWaiters, () => this.#subscribed, this.#o.connectTimeoutMs, 'subscribe to')
    // Publishing goes through the data connection, which has no offline queue: a bus that reports
    // started must be able to publish (through Sentinel the data connection can lag the subscriber).
    await this.#dataReady()
    this.#heartbeat()
    // The first heartbeat makes the bus healthy; if it takes too long, health catches up later.
    await this.#waitFor(this.#seenWaiters, () => this.#healthy, this.#o.heartbeatTimeoutMs, undefined)
  }

  async #dataReady(): Promise<void> {
    if (this.#closed || this.#data.status === 'ready') return
    if (this.#data.status === 'wait') this.#data.connect().catch(() => {})
    await waitReady(this.#data, this.#o.connectTimeoutMs)
  }

  #waitFor(waiters: (() => void)[], done: () => boolean, timeoutMs: number, failure: string | undefined): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = waiters.indexOf(wake)
        if (index >= 0) waiters.splice(index, 1)
        if (failure === undefined) resolve()
        else reject(new Error(`tiercache bus: could not ${failure} ${this.channel} within ${timeoutMs}ms`))
      }, timeoutMs)
      timer.unref()
      const wake = () => {
        clearTimeout(timer)
        resolve()
      }
      waiters.push(wake)
    })
  }

  #wake(waiters: (() => void)[]): void {
    if (waiters.length === 0) return
    for (const wake of waiters.splice(0)) wake()
  }

  async #openSubscriber(): Promise<void> {
    const subscriberOptions: RedisOptions = {
      // RESP2: ioredis 6 drops the RESP3 push that carries tracking invalidations.
      protocol: 2,
      autoResubscribe: false,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      lazyConnect: true,
      connectionName: `tiercache-bus:${this.instanceId}`,
      // Reconnect quickly and for ever: the node is unhealthy (L1 capped) until it is back.
      retryStrategy: (times) => Math.min(20 * times, 500),
      maxRetriesPerRequest: null,
    }
    let subscriber: Redis
    if (isCluster(this.#data)) {
      subscriber = await this.#clusterSubscriber(this.#data, subscriberOptions)
    } else {
      subscriber = this.#data.duplicate(subscriberOptions)
    }
    if (this.#closed) {
      // close() ran while the cluster client was getting ready.
      subscriber.disconnect()
      return
    }
    this.#subscriber = subscriber
    subscriber.on('ready', () => this.#subscribe(subscriber))
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      subscriber.on(event, () => this.#lost(subscriber, event))
    }
    subscriber.on('error', (error: Error) => {
      this.#o.logger.debug({ err: error }, 'tiercache bus: subscriber error')
      this.#lost(subscriber, 'error')
    })
    subscriber.on(this.#cluster ? 'smessageBuffer' : 'messageBuffer', this.#onMessage)
    subscriber.connect().catch((error: unknown) => {
      // ioredis keeps retrying by its retryStrategy; `start()` times out if it never succeeds.
      this.#o.logger.warn({ err: error }, 'tiercache bus: subscriber could not connect yet')
    })
  }

  /** A plain connection to the master serving the channel's slot: sharded pub/sub lives there. */
  async #clusterSubscriber(cluster: Cluster, options: RedisOptions): Promise<Redis> {
    if (cluster.status !== 'ready') {
      if (cluster.status === 'wait') cluster.connect().catch(() => {})
      await waitReady(cluster, this.#o.connectTimeoutMs)
    }
    const slot = slotOf(this.channel)
    const nodeKey = cluster.slots[slot]?.[0]
    if (nodeKey === undefined) throw new Error(`tiercache bus: no cluster node serves slot ${slot} of ${this.channel}`)
    const separator = nodeKey.lastIndexOf(':')
    return new Redis({
      ...cluster.options.redisOptions,
      ...options,
      host: nodeKey.slice(0, separator),
      port: Number(nodeKey.slice(separator + 1)),
    })
  }

  #subscribe(subscriber: Redis): void {
    if (this.#closed || subscriber !== this.#subscriber) return
    const subscribing = this.#o.mode === 'tracking' ? this.#subscribeTracking(subscriber) : this.#subscribeChannel(subscriber)
    subscribing.then(
      () => {
        if (this.#closed || subscriber !== this.#subscriber || subscriber.status !== 'ready') return
        this.#subscribed = true
        this.#counters.subscriptions++
        this.#wake(this.#subscribedWaiters)
        // Prove the new subscription right away rather than at the next tick.
        this.#heartbeat()
      },
      (error: unknown) => {
        this.#o.logger.warn({ err: error }, 'tiercache bus: subscribe failed')
        // A moved slot (cluster) or a refused command: start over on a fresh connection.
        this.#recycleSubscriber()
      },
    )
  }

  async #subscribeChannel(subscriber: Redis): Promise<void> {
    if (this.#cluster) await subscriber.ssubscribe(this.channel)
    else await subscriber.subscribe(this.channel)
  }

  async #subscribeTracking(subscriber: Redis): Promise<void> {
    const id = await subscriber.client('ID')
    await subscriber.subscribe(this.channel, TRACKING_CHANNEL)
    this.#subscriberId = Number(id)
    await this.#enableTracking()
  }

  #subscriberId = -1

  #openTracker(): void {
    const trackerOptions: RedisOptions = {
      protocol: 2,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectionName: `tiercache-bus-tracking:${this.instanceId}`,
      retryStrategy: (times) => Math.min(20 * times, 500),
    }
    const tracker = (this.#data as Redis).duplicate(trackerOptions)
    this.#tracker = tracker
    tracker.on('ready', () => {
      this.#enableTracking().catch((error: unknown) => this.#o.logger.warn({ err: error }, 'tiercache bus: CLIENT TRACKING failed'))
    })
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      tracker.on(event, () => {
        if (this.#trackingOn) {
          this.#trackingOn = false
          this.#setHealthy(false)
        }
      })
    }
    tracker.on('error', (error: Error) => this.#o.logger.debug({ err: error }, 'tiercache bus: tracking connection error'))
    tracker.connect().catch(() => {})
  }

  /** Points the tracking connection at the current subscriber; needed again after either reconnects. */
  async #enableTracking(): Promise<void> {
    const tracker = this.#tracker
    const id = this.#subscriberId
    if (tracker === undefined || tracker.status !== 'ready' || id < 0) return
    await tracker.call('CLIENT', 'TRACKING', 'off')
    await tracker.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', id, 'BCAST', 'PREFIX', `${this.#o.namespace}:`)
    if (id === this.#subscriberId && tracker.status === 'ready') this.#trackingOn = true
  }

  #lost(subscriber: Redis, reason: string): void {
    if (subscriber !== this.#subscriber) return
    if (this.#subscribed) this.#o.logger.warn({ reason, channel: this.channel }, 'tiercache bus: subscriber lost')
    this.#subscribed = false
    this.#subscriberId = -1
    this.#setHealthy(false)
  }

  /** Drops the subscriber connection and opens a new one (after the slot moved, say). */
  #recycleSubscriber(): void {
    if (this.#recycling || this.#closed) return
    this.#recycling = true
    const old = this.#subscriber
    this.#subscriber = undefined
    this.#subscribed = false
    this.#setHealthy(false)
    old?.disconnect()
    const timer = setTimeout(() => {
      this.#recycling = false
      if (this.#closed) return
      this.#openSubscriber().catch((error: unknown) => {
        this.#o.logger.warn({ err: error }, 'tiercache bus: could not reopen the subscriber')
        this.#recycleSubscriber()
      })
    }, Math.min(this.#o.heartbeatIntervalMs, 200))
    timer.unref()
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
      this.#counters.heartbeatsMissed++
      this.#o.logger.warn({ channel: this.channel, silentForMs: silentFor }, 'tiercache bus: heartbeat missed')
      this.#setHealthy(false)
    }
    // A sharded channel's slot may have moved to another master: nothing arrives, nothing closes.
    if (this.#cluster && this.#subscribed && silentFor > 4 * this.#o.heartbeatTimeoutMs) this.#recycleSubscriber()
    if (this.#subscribed) this.#heartbeat()
  }

  #heartbeat(): void {
    if (this.#heartbeatsInFlight >= MAX_HEARTBEATS_IN_FLIGHT) return
    this.#heartbeatsInFlight++
    let payload: Buffer
    try {
      payload = encodeHeartbeat(this.instanceId, this.#nextSeq, Date.now())
    } catch {
      this.#heartbeatsInFlight--
      return
    }
    this.#send(payload).then(
      () => {
        this.#heartbeatsInFlight--
      },
      (error: unknown) => {
        this.#heartbeatsInFlight--
        this.#o.logger.debug({ err: error }, 'tiercache bus: heartbeat publish failed')
      },
    )
  }

  readonly #onMessage = (channel: Buffer, payload: unknown): void => {
    try {
      if (channel.length === this.#channelBuffer.length && channel.equals(this.#channelBuffer)) {
        this.#onBusMessage(payload as Buffer)
      } else if (this.#o.mode === 'tracking') {
        this.#onTracked(payload)
      }
    } catch (error) {
      // The handler must never throw into ioredis' parser.
      this.#o.logger.error({ err: error }, 'tiercache bus: invalidation handler threw')
    }
  }

  #onBusMessage(payload: Buffer): void {
    const decoded = decodeBusMessage(payload)
    if (!decoded.ok) {
      this.#counters.malformed++
      this.#o.logger.debug({ reason: decoded.reason, bytes: payload.length }, 'tiercache bus: malformed message dropped')
      return
    }
    this.#seen()
    const { source, seq, ts, ops } = decoded.message
    if (source === this.instanceId) {
      if (ops.length > 0) this.#counters.ownIgnored++
      return
    }
    if (ops.length === 0) return
    this.#counters.received++
    const handler = this.#handler
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      const received: ReceivedInvalidation =
        op.op === 'delete'
          ? { op: 'delete', keys: op.keys, source, seq: seq + i, ts }
          : op.op === 'generation'
            ? { op: 'generation', name: op.name, value: op.value, source, seq: seq + i, ts }
            : { op: 'clear', source, seq: seq + i, ts }
      handler(received)
    }
  }

  #onTracked(payload: unknown): void {
    this.#seen()
    let message: ReceivedInvalidation
    if (payload === null) {
      message = { op: 'clear', source: TRACKING_SOURCE, seq: ++this.#trackingSeq, ts: Date.now() }
    } else if (Array.isArray(payload)) {
      const keys: string[] = []
      for (const raw of payload as unknown[]) {
        const key = this.#o.mapTrackedKey(Buffer.isBuffer(raw) ? raw.toString() : String(raw))
        if (key !== undefined) keys.push(key)
      }
      if (keys.length === 0) return
      message = { op: 'delete', keys, source: TRACKING_SOURCE, seq: ++this.#trackingSeq, ts: Date.now() }
    } else {
      this.#counters.malformed++
      return
    }
    this.#counters.tracked++
    this.#handler(message)
  }

  #seen(): void {
    this.#lastSeen = Date.now()
    if (this.#healthy) return
    // A message proves the subscription even before the SUBSCRIBE reply's continuation ran (both
    // can come in one socket read). Turning healthy here, before its ops reach the engine, makes
    // the engine's recovery flush come before anything received on a new subscription is applied.
    if (!this.#subscribed && this.#subscriber?.status !== 'ready') return
    this.#subscribed = true
    if (this.#o.mode === 'tracking' && !this.#trackingOn) return
    this.#setHealthy(true)
    this.#wake(this.#seenWaiters)
  }

  #setHealthy(healthy: boolean): void {
    if (this.#healthy === healthy || this.#closed) return
    this.#healthy = healthy
    if (!healthy) this.#counters.unhealthyTransitions++
    this.#o.logger.info({ channel: this.channel, healthy }, 'tiercache bus: health changed')
    for (const listener of this.#healthListeners) {
      try {
        listener(healthy)
      } catch (error) {
        this.#o.logger.error({ err: error }, 'tiercache bus: health listener threw')
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    // Invalidations issued just before close still go out.
    if (this.#batch !== undefined) {
      const pending = this.#batch.promise
      this.#flush()
      await pending.catch(() => {})
    }
    this.#closed = true
    this.#healthy = false
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#wake(this.#subscribedWaiters)
    this.#wake(this.#seenWaiters)
    const own: (Redis | Cluster | undefined)[] = [this.#subscriber, this.#tracker, this.#ownsData ? this.#data : undefined]
    this.#subscriber = undefined
    this.#tracker = undefined
    await Promise.all(own.map((client) => (client === undefined ? undefined : closeClient(client, CLOSE_GRACE_MS))))
  }
}

function waitReady(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', done)
      reject(new Error(`tiercache bus: redis did not become ready within ${timeoutMs}ms (status ${client.status})`))
    }, timeoutMs)
    timer.unref()
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    client.once('ready', done)
  })
}
