import { Cluster, Redis } from 'ioredis'
import type { ClusterOptions, RedisOptions } from 'ioredis'
import { z } from 'zod'
import type { Logger, StoreInfo } from '@tiercache/core'
import { InvalidOptionsError } from './errors.js'

const endpoint = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
})

const tls = z.union([z.boolean(), z.record(z.string(), z.unknown())])

const credentials = {
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  tls: tls.optional(),
}

const standaloneSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(6379),
  db: z.number().int().min(0).optional(),
  ...credentials,
})

const sentinelSchema = z.strictObject({
  sentinels: z.array(endpoint).min(1),
  /** The master group name the sentinels monitor. */
  name: z.string().min(1),
  sentinelUsername: z.string().min(1).optional(),
  sentinelPassword: z.string().optional(),
  /** TLS to the sentinels themselves (`tls` is for the primary they name). */
  sentinelTls: tls.optional(),
  db: z.number().int().min(0).optional(),
  ...credentials,
})

const clusterSchema = z.strictObject({
  cluster: z.array(endpoint).min(1),
  ...credentials,
})

const urlSchema = z.string().regex(/^rediss?:\/\/.+/, 'a redis:// or rediss:// URL')

/** Where the store connects when it makes its own client. */
export type RedisConnectionOptions =
  | string
  | z.input<typeof standaloneSchema>
  | z.input<typeof sentinelSchema>
  | z.input<typeof clusterSchema>

export type ResolvedConnection =
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'standalone'; readonly options: z.output<typeof standaloneSchema> }
  | { readonly kind: 'sentinel'; readonly options: z.output<typeof sentinelSchema> }
  | { readonly kind: 'cluster'; readonly options: z.output<typeof clusterSchema> }
  | { readonly kind: 'client'; readonly client: Redis | Cluster }

export type RedisClient = Redis | Cluster

/** A client the caller built: recognised by shape, so another copy of ioredis works too. */
export function isRedisClient(value: unknown): value is RedisClient {
  if (value instanceof Redis || value instanceof Cluster) return true
  if (typeof value !== 'object' || value === null) return false
  const candidate = value as Record<string, unknown>
  return typeof candidate.getBuffer === 'function' && typeof candidate.status === 'string' && typeof candidate.on === 'function'
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

function keyPrefixOf(client: RedisClient): string | undefined {
  const options = (client as { options?: { keyPrefix?: string; redisOptions?: { keyPrefix?: string } } }).options
  return options?.keyPrefix || options?.redisOptions?.keyPrefix || undefined
}

function zodPath(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('')
}

/** Validates `redis` (the option at `path`) into one of the connection kinds. */
export function resolveConnection(input: unknown, path = 'redis'): ResolvedConnection {
  if (isRedisClient(input)) {
    const prefix = keyPrefixOf(input)
    if (prefix) {
      throw new InvalidOptionsError(
        path,
        `the client has keyPrefix "${prefix}"; pass a client without keyPrefix and use the store's namespace instead ` +
          '(SCAN patterns are not prefixed by ioredis, so pattern deletion and clear() would miss or overreach)',
      )
    }
    return { kind: 'client', client: input }
  }
  if (typeof input === 'string') {
    const parsed = urlSchema.safeParse(input)
    if (!parsed.success) throw new InvalidOptionsError(path, `expected a redis:// or rediss:// URL (got "${input}")`)
    return { kind: 'url', url: parsed.data }
  }
  if (typeof input !== 'object' || input === null) {
    throw new InvalidOptionsError(
      path,
      `expected connection options ({ host, port }, { sentinels, name }, { cluster }), a redis:// URL, or an ioredis Redis/Cluster instance (got ${input === null ? 'null' : typeof input})`,
    )
  }
  const [kind, schema] =
    'cluster' in input
      ? (['cluster', clusterSchema] as const)
      : 'sentinels' in input
        ? (['sentinel', sentinelSchema] as const)
        : (['standalone', standaloneSchema] as const)
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new InvalidOptionsError(`${path}${zodPath(issue.path)}`, `${issue.message} (${kind} connection options)`)
  }
  return { kind, options: parsed.data } as ResolvedConnection
}

export interface ClientSettings {
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly maxRetriesPerRequest: number
}

/** Longest pause between two reconnect attempts of a client the store created. */
const RECONNECT_CAP_MS = 200

/**
 * Commands must fail fast while Redis is away (the engine's guard falls back to the loader), and a
 * command that timed out must never be replayed later: no offline queue, no resend on reconnect.
 */
function baseOptions(settings: ClientSettings): RedisOptions {
  return {
    // ioredis backs off up to 2 s between reconnects, so a Redis back after an outage of a few
    // seconds could wait most of that before it is used. A refused connect on a dead server is
    // cheap: retry at most every RECONNECT_CAP_MS, so L2 serves again about a second after it
    // returns (this plus the breaker's half-open probe).
    retryStrategy: (attempt: number) => Math.min(attempt * 50, RECONNECT_CAP_MS),
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: settings.maxRetriesPerRequest,
    commandTimeout: settings.commandTimeout,
    connectTimeout: settings.connectTimeout,
    connectionName: 'tiercache',
  }
}

function tlsOption(value: boolean | Record<string, unknown> | undefined): RedisOptions['tls'] {
  if (value === undefined || value === false) return undefined
  return (value === true ? {} : value) as RedisOptions['tls']
}

/** Builds the client for a connection the store owns. */
export function createClient(connection: Exclude<ResolvedConnection, { kind: 'client' }>, settings: ClientSettings): RedisClient {
  const base = baseOptions(settings)
  switch (connection.kind) {
    case 'url':
      return new Redis(connection.url, base)
    case 'standalone': {
      const { tls: tlsValue, ...rest } = connection.options
      return new Redis({ ...base, ...rest, tls: tlsOption(tlsValue) })
    }
    case 'sentinel': {
      // ioredis ignores `tls` through Sentinel unless `enableTLSForSentinelMode` is set: without
      // it, a caller asking for TLS would get plain text to the primary, password included.
      const { tls: tlsValue, sentinelTls, ...rest } = connection.options
      const dataTls = tlsOption(tlsValue)
      return new Redis({
        ...base,
        ...rest,
        tls: dataTls,
        ...(dataTls === undefined ? {} : { enableTLSForSentinelMode: true }),
        ...(sentinelTls === undefined || sentinelTls === false ? {} : { sentinelTLS: tlsOption(sentinelTls) }),
      })
    }
    case 'cluster': {
      const { cluster, tls: tlsValue, username, password } = connection.options
      const { enableOfflineQueue: _unused, ...redisOptions } = base
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        redisOptions: { ...redisOptions, username, password, tls: tlsOption(tlsValue) },
      }
      return new Cluster(cluster.map((node) => ({ ...node })), options)
    }
  }
}

/**
 * Follows a client's connection state for `info()`, and keeps its 'error' events from crashing
 * the host (an EventEmitter throws on 'error' without a listener). Errors are logged once per
 * episode: a Redis that is down emits one per reconnect attempt.
 */
export interface ConnectionMonitor {
  state(): StoreInfo['connection']
  /** Resolves true once the client is ready, false if it is not within `timeoutMs`; never rejects. */
  ready(timeoutMs: number): Promise<boolean>
  /** While the client's first connection is being made: its outcome (see `firstConnection`). */
  connecting(): Promise<boolean> | undefined
  detach(): void
}

/**
 * While a client's first connection is being made (status `connecting` or `connect`): a promise
 * that resolves once that attempt ends, true when the client became ready, false when it failed
 * (refused, timed out, closed). Undefined otherwise: ready, failed already, closed, or lazy
 * (`wait`). Commands issued in that window meet no offline queue and would fail although nothing
 * is wrong with Redis; callers wait on this instead.
 */
export function firstConnection(client: RedisClient): Promise<boolean> | undefined {
  const status = client.status
  if (status !== 'connecting' && status !== 'connect') return undefined
  return new Promise<boolean>((resolve) => {
    const settle = (ready: boolean) => () => {
      client.off('ready', onReady)
      client.off('close', onFailed)
      client.off('end', onFailed)
      client.off('reconnecting', onFailed)
      resolve(ready)
    }
    const onReady = settle(true)
    const onFailed = settle(false)
    client.once('ready', onReady)
    client.once('close', onFailed)
    client.once('end', onFailed)
    client.once('reconnecting', onFailed)
  })
}

/** Resolves true once the client is ready, false if it is not within `timeoutMs`; never rejects. */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', done)
      resolve(false)
    }, timeoutMs)
    timer.unref()
    const done = () => {
      clearTimeout(timer)
      resolve(true)
    }
    client.once('ready', done)
  })
}

/** `waitReady`, first connecting a lazy client (status `wait`), which would otherwise never be ready. */
export function connectReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'wait') client.connect().catch(() => {})
  return waitReady(client, timeoutMs)
}

const ignoreError = () => {}

export function monitorConnection(client: RedisClient, logger: Logger): ConnectionMonitor {
  let failing = false
  const onError = (error: Error) => {
    if (failing) return
    failing = true
    logger.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'tiercache redis: connection error')
  }
  const onReady = () => {
    if (failing) logger.info({}, 'tiercache redis: connection ready again')
    failing = false
  }
  client.on('error', onError)
  client.on('ready', onReady)
  let opening = firstConnection(client)
  void opening?.then(() => (opening = undefined))
  return {
    state() {
      const status = client.status
      switch (status) {
        case 'ready':
          return 'ready'
        case 'end':
        case 'close':
          return failing ? 'error' : 'closed'
        case 'reconnecting':
          return failing ? 'error' : 'reconnecting'
        default:
          return failing ? 'error' : 'connecting'
      }
    },
    ready: (timeoutMs) => waitReady(client, timeoutMs),
    connecting: () => opening,
    detach() {
      client.off('ready', onReady)
      // A client being closed may still emit late errors (a handshake cut mid-way): keep a
      // listener, or ioredis reports them as unhandled error events.
      client.off('error', onError)
      client.on('error', ignoreError)
    },
  }
}

/** `stallProbeInterval` of the store and the bus: ms between probes (at least 100), or `false`. */
export const stallProbeSchema = z.union([z.literal(false), z.number().int().min(100, 'must be at least 100 (ms), or false')])

/**
 * A connection can stop answering without closing: a peer or a middlebox gone without a FIN (a
 * half-open connection). ioredis then waits on it for good: every command times out
 * (`commandTimeout`), nothing closes, so nothing reconnects, and L2 never serves again. A client
 * the SDK created is probed instead: while it is ready, a PING every `intervalMs` (one at a time);
 * one that times out gives the connection up for a new one (`disconnect(true)`: ioredis
 * reconnects). A paused server is treated the same way; its new connection is ready once it
 * answers again. A cluster client's commands go to many nodes, each its own connection: it is not
 * probed here, nor when `intervalMs` is `false`. Returns the function that stops the probe.
 */
export function watchStalls(client: RedisClient, intervalMs: number | false, logger: Logger): () => void {
  if (intervalMs === false || isCluster(client)) return () => {}
  let probing = false
  const timer = setInterval(() => {
    if (probing || client.status !== 'ready') return
    probing = true
    client.ping().then(
      () => {
        probing = false
      },
      (error: Error) => {
        probing = false
        // Closed or reconnecting already, or refused for another reason: nothing is stalled.
        if (client.status !== 'ready' || !/timed out/i.test(error.message)) return
        logger.warn({ timeoutMs: intervalMs }, 'tiercache redis: the connection stopped answering (PING timed out); reconnecting')
        client.disconnect(true)
      },
    )
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * Refreshes a cluster client's slot table; resolves when done, failed or not (never rejects).
 * ioredis refreshes it itself on MOVED and on commands failing on a closed connection, but a
 * connection of the SDK's own to one node (the bus's shard subscriber) is not one of its commands.
 */
export function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()))
}

/** Longest close() waits for QUIT's reply and the socket's end before it cuts the connection. */
export const CLOSE_GRACE_MS = 500

/**
 * Closes a client the store created, in bounded time whatever the server does. Not ready (down,
 * reconnecting): nothing can be flushed and QUIT would wait for a server that may never return,
 * so disconnect at once. Ready: QUIT, so replies in flight arrive first, but a paused or
 * partitioned server never answers: after `graceMs` the connection is cut.
 */
export async function closeClient(client: RedisClient, graceMs: number): Promise<void> {
  if (client.status === 'end') return
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  let timer: ReturnType<typeof setTimeout> | undefined
  // QUIT's reply comes before the socket closes: wait for 'end' so close() leaves nothing open.
  let onEnd: (() => void) | undefined
  const ended = new Promise<void>((resolve) => client.once('end', (onEnd = resolve)))
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
  client.quit().catch(() => client.disconnect())
  await Promise.race([ended, deadline])
  clearTimeout(timer)
  client.off('end', onEnd as () => void)
  if ((client.status as string) !== 'end') client.disconnect()
}
