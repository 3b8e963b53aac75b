/**
 * The Redis invalidation bus: the `InvalidationBus` port of @tiercache/core over Redis pub/sub.
 * This module holds the options and wires the parts, each in `bus/`:
 *
 * - Publishing (`publisher.ts`): on the data connection (the caller's client, or one the bus
 *   creates from a URL or options), one message per `publish()`; in a cluster with SPUBLISH. A
 *   store on the same connection publishes what `prepare()` made, after the changes it
 *   announces, in their round trip (`RemoteStore.apply`).
 * - Receiving (`subscriber.ts`): a subscriber connection of the bus's own, subscribed anew on
 *   every `ready`; in a cluster a connection to the master that owns the sharded channel's slot.
 * - The handler (`receiver.ts`): decode, validate, drop own messages, hand ops to the engine.
 * - Health (`health.ts`): lost with the subscriber connection, and when no message at all (own
 *   heartbeats included) was seen within `heartbeatTimeout`. Every node publishes a heartbeat
 *   each `heartbeatInterval` on a channel of its own that only it subscribes to
 *   (`heartbeatChannelOf`), on the same subscriber connection as the bus channel, so a node always
 *   expects its own and hears no other node's: at the default 250 ms each node receives 4
 *   heartbeats a second whatever the number of nodes, and Redis delivers 4·N, not 4·N². Detection takes at most `heartbeatTimeout + heartbeatInterval` (one
 *   interval more when this process's own event loop stalled, so that a busy node does not
 *   mistake its own backlog for a silent Redis).
 * - Tracking mode (`tracking.ts`; on a cluster `cluster-tracking.ts`, a connection per master):
 *   Redis client-side caching as a second source, so that direct writes by other programs count;
 *   bus messages still carry every op (deletes, expires, generations, tags, clears).
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { z } from 'zod'
import { l1KeyOfStoreKey, parseDuration, silentLogger, type Invalidation, type InvalidationBus, type Logger, type PreparedMessage, type ReceivedInvalidation, type RemoteStore } from '@tiercache/core'
import { newCounters, type BusCounters } from './bus/counters.js'
import { Health } from './bus/health.js'
import { BusPublisher } from './bus/publisher.js'
import { Receiver } from './bus/receiver.js'
import { Subscriber } from './bus/subscriber.js'
import { ClusterTracking } from './bus/cluster-tracking.js'
import { Tracking, type TrackingSource } from './bus/tracking.js'
import { CLOSE_GRACE_MS, closeClient, createClient, isCluster, resolveConnection, stallProbeSchema, watchStalls, type RedisConnectionOptions, type ResolvedConnection } from './connection.js'
import { BusClosedError, InvalidOptionsError, L2UnavailableError } from './errors.js'
import { parseValueKey, slotOf } from './keys.js'

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
  /**
   * How often the bus's own data connection (not one it borrows) is probed with a PING, in ms, or
   * `false` for never (see the store's option of the same name). @default 1000
   */
  readonly stallProbeInterval?: number | false
  /** This node's id, the `source` of what it publishes. @default 16 random hex characters */
  readonly instanceId?: string
  /**
   * `'pubsub'`: invalidations come from the other nodes' messages only. `'tracking'`: also from
   * Redis client-side caching, so direct writes by other programs count: on one server, or on a
   * cluster through one tracking connection per master, which follows failovers and new masters.
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
  /** Messages sent for them: one per invalidation (the engine batches before it publishes). */
  readonly messagesSent: number
  readonly publishErrors: number
  /**
   * Messages the subscriber connection delivered, of every channel it listens to (the bus
   * channel, this node's heartbeats, tracking's): what this node's subscription costs Redis.
   */
  readonly delivered: number
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
  /** This node's own heartbeat channel, which only it subscribes to (see `heartbeatChannelOf`). */
  readonly heartbeatChannel: string
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
  readonly stallProbeInterval: number | false
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
  stallProbeInterval: stallProbeSchema.optional(),
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
  const namespace = o.namespace
  return Object.freeze({
    connection,
    namespace,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    stallProbeInterval: o.stallProbeInterval ?? 1_000,
    instanceId: o.instanceId ?? randomBytes(8).toString('hex'),
    mode,
    mapTrackedKey: o.mapTrackedKey ?? defaultTrackedKeyMapper(namespace),
    connectTimeoutMs,
    logger: o.logger ?? silentLogger,
  })
}

/**
 * The default tracked-key mapping: a value key `<namespace>:<family>[:g<generation>]:{<id>}` back
 * to its store key (`parseValueKey`: this package owns the layout), and that to the engine's L1
 * key (`l1KeyOfStoreKey`: the engine owns what the parts mean). Leases change on every miss and generations arrive as bus messages with their
 * value: both are ignored, as is anything that is not a value key. A service that lays out keys
 * differently passes its own.
 */
export function defaultTrackedKeyMapper(namespace: string): (redisKey: string) => string | undefined {
  const prefix = `${namespace}:`
  return (redisKey) => {
    const key = parseValueKey(prefix, redisKey)
    return key === undefined ? undefined : l1KeyOfStoreKey(key)
  }
}

/**
 * The heartbeat channel of node `instanceId`: `<namespace>:{<namespace>:bus}:hb:<instanceId>`. It
 * starts with `<namespace>:`, so the least-privilege ACL (`&<namespace>:*`) covers it, and its hash
 * tag is the bus channel's name, so on a cluster it lives in the bus channel's slot (sharded
 * pub/sub moves with the slot, and one SSUBSCRIBE on the slot's master holds both). A namespace
 * whose own braces would give the two channels different slots heartbeats on the bus channel
 * itself, as every node's heartbeat once did: correct, only not O(1) per node.
 */
export function heartbeatChannelOf(namespace: string, instanceId: string): string {
  const bus = `${namespace}:bus`
  const own = `${namespace}:{${bus}}:hb:${instanceId}`
  return slotOf(own) === slotOf(bus) ? own : bus
}

/** Creates a Redis invalidation bus. Call `start()` before use; `close()` when done. */
export function redisBus(options: RedisBusOptions): RedisBus {
  return new RedisPubSubBus(resolveRedisBusOptions(options))
}

class RedisPubSubBus implements RedisBus {
  readonly instanceId: string
  readonly channel: string
  readonly heartbeatChannel: string
  readonly #o: ResolvedBusOptions
  readonly #ownsData: boolean
  #stopStallWatch: () => void = () => {}
  readonly #data: Redis | Cluster
  readonly #counters: BusCounters = newCounters()
  readonly #publisher: BusPublisher
  readonly #tracking: TrackingSource | undefined
  readonly #health: Health
  readonly #receiver: Receiver
  readonly #subscriber: Subscriber
  #startPromise: Promise<void> | undefined
  #closed = false
  /** When the subscriber was last recycled for silence (see `#beat`). */
  #recycledAt = 0

  constructor(options: ResolvedBusOptions) {
    this.#o = options
    this.instanceId = options.instanceId
    this.channel = `${options.namespace}:bus`
    this.heartbeatChannel = heartbeatChannelOf(options.namespace, this.instanceId)
    const { connection, logger } = options
    if (connection.kind === 'client') {
      this.#data = connection.client
      this.#ownsData = false
    } else {
      // Like every client the SDK creates: no offline queue, no replay of unanswered commands.
      this.#data = createClient(connection, { commandTimeout: 1_000, connectTimeout: options.connectTimeoutMs, maxRetriesPerRequest: 1 })
      this.#data.on('error', (error: Error) => logger.debug({ err: error }, 'tiercache bus: data connection error'))
      this.#ownsData = true
    }
    if (this.#ownsData) this.#stopStallWatch = watchStalls(this.#data, options.stallProbeInterval, logger)
    const counters = this.#counters
    this.#publisher = new BusPublisher(this.#data, this.channel, this.heartbeatChannel, this.instanceId, counters, logger)
    const data = this.#data
    const onOff = () => this.#health.set(false)
    // One server: a tracking connection redirecting to the subscriber. A cluster: one per master.
    const standaloneTracking =
      options.mode === 'tracking' && !isCluster(data)
        ? new Tracking({ data, namespace: options.namespace, instanceId: this.instanceId, mapTrackedKey: options.mapTrackedKey, counters, logger, onOff })
        : undefined
    const tracking: TrackingSource | undefined =
      options.mode === 'tracking' && isCluster(data)
        ? new ClusterTracking({
            cluster: data,
            namespace: options.namespace,
            instanceId: this.instanceId,
            mapTrackedKey: options.mapTrackedKey,
            counters,
            logger,
            onMessage: (channel, payload) => this.#receiver.onMessage(channel, payload),
            onOff,
          })
        : standaloneTracking
    this.#tracking = tracking
    this.#health = new Health({
      channel: this.channel,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      logger,
      counters,
      mayTurnHealthy: () => this.#subscriber.confirm() && (tracking === undefined || tracking.on),
      onBeat: this.#beat,
    })
    this.#receiver = new Receiver(this.instanceId, this.channel, this.heartbeatChannel, counters, logger, this.#health, tracking)
    this.#subscriber = new Subscriber({
      data: this.#data,
      channel: this.channel,
      heartbeatChannel: this.heartbeatChannel,
      instanceId: this.instanceId,
      connectTimeoutMs: options.connectTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      counters,
      logger,
      extra: standaloneTracking,
      onMessage: this.#receiver.onMessage,
      // Prove the new subscription right away rather than at the next beat.
      onSubscribed: () => this.#publisher.heartbeat(),
      onLost: () => this.#health.set(false),
    })
  }

  get healthy(): boolean {
    return this.#health.healthy
  }

  get lastSeq(): number {
    return this.#publisher.lastSeq
  }

  stats(): RedisBusStats {
    return { ...this.#counters }
  }

  onMessage(handler: (message: ReceivedInvalidation) => void): void {
    this.#receiver.setHandler(handler)
  }

  onHealthChange(listener: (healthy: boolean) => void): void {
    this.#health.onChange(listener)
  }

  publish(message: Invalidation): Promise<void> {
    if (this.#closed) return Promise.reject(new BusClosedError(this.channel, 'publish()'))
    return this.#publisher.publish(message)
  }

  /**
   * A message for a store on this bus's data connection to publish after its changes, in one
   * round trip; undefined for any other store (its connection may lead elsewhere), and once closed.
   */
  prepare(messages: readonly Invalidation[], store: RemoteStore): PreparedMessage | undefined {
    if (this.#closed || typeof store.apply !== 'function' || (store as { readonly client?: unknown }).client !== this.#data) return undefined
    return this.#publisher.prepare(messages)
  }

  /**
   * Resolves true once the bus is healthy (subscribed and a message heard on it), false if it is
   * not within `timeoutMs` (default: `connectTimeout`); never rejects. It does not start the bus.
   */
  ready(timeoutMs: number = this.#o.connectTimeoutMs): Promise<boolean> {
    if (this.#health.healthy) return Promise.resolve(true)
    if (this.#closed) return Promise.resolve(false)
    return this.#health.waitHealthy(timeoutMs)
  }

  start(): Promise<void> {
    this.#startPromise ??= this.#start()
    return this.#startPromise
  }

  async #start(): Promise<void> {
    const timeoutMs = this.#o.connectTimeoutMs
    this.#tracking?.open()
    try {
      await this.#subscriber.open()
    } catch (error) {
      // Only a cluster can fail here (not ready, slot unknown): keep trying in the background.
      this.#o.logger.warn({ err: error }, 'tiercache bus: could not open the subscriber yet')
      this.#subscriber.recycle()
    }
    if (this.#closed) return
    this.#health.start()
    if (!(await this.#subscriber.waitSubscribed(timeoutMs))) {
      throw new L2UnavailableError(
        `redis bus: could not subscribe to "${this.channel}" within ${timeoutMs}ms (connectTimeout): check that Redis is reachable, or raise connectTimeout; the bus keeps trying`,
      )
    }
    // Publishing goes through the data connection, which has no offline queue: a bus that reports
    // started must be able to publish (through Sentinel the data connection can lag the subscriber).
    if (!this.#closed && !(await this.#publisher.ready(timeoutMs))) {
      throw new L2UnavailableError(
        `redis bus: the data connection of "${this.channel}" was not ready within ${timeoutMs}ms (connectTimeout; status ${this.#data.status}): check that Redis is reachable, or raise connectTimeout`,
      )
    }
    this.#publisher.heartbeat()
    // The first heartbeat makes the bus healthy; if it takes too long, health catches up later.
    await this.#health.waitHealthy(this.#o.heartbeatTimeoutMs)
  }

  readonly #beat = (silentForMs: number): void => {
    if (this.#closed) return
    // Nothing heard for 4 deadlines. Subscribed, yet nothing arrives and nothing closes: a
    // half-open connection, or (in a cluster) a sharded channel whose slot moved to another master.
    // In a cluster, also a connection that keeps reconnecting to a master that died while a replica
    // took its slots over. A new connection, to the slot's owner of now, finds out; at most once per
    // 4 deadlines, so that it has the time to subscribe.
    const stuckAfter = 4 * this.#o.heartbeatTimeoutMs
    const now = Date.now()
    if (silentForMs > stuckAfter && (this.#subscriber.subscribed || isCluster(this.#data)) && now - this.#recycledAt > stuckAfter) {
      this.#recycledAt = now
      this.#subscriber.recycle()
    }
    if (this.#subscriber.subscribed) this.#publisher.heartbeat()
    this.#tracking?.check()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    // Invalidations issued just before close still go out.
    await this.#publisher.settle()
    this.#closed = true
    this.#stopStallWatch()
    this.#health.close()
    const own: (Redis | Cluster | undefined)[] = [this.#subscriber.close(), ...(this.#tracking?.close() ?? []), this.#ownsData ? this.#data : undefined]
    await Promise.all(own.map((client) => (client === undefined ? undefined : closeClient(client, CLOSE_GRACE_MS))))
  }
}
