import { z } from 'zod'
import type { Clock, Logger } from '@tiercache/core'
import type { Cluster, Redis } from 'ioredis'
import { CODEC_DEFAULTS } from './codec.js'
import { resolveConnection, stallProbeSchema, type RedisConnectionOptions, type ResolvedConnection } from './connection.js'
import { InvalidOptionsError } from './errors.js'

export interface RedisStoreOptions {
  /**
   * Where to connect: `{ host, port, password?, username?, db?, tls? }`, a `redis://` or
   * `rediss://` URL, `{ sentinels: [{ host, port }], name }`, `{ cluster: [{ host, port }] }`, or an
   * ioredis `Redis` / `Cluster` the caller owns (never quit by `close()`; no `keyPrefix`).
   */
  readonly redis: RedisConnectionOptions | Redis | Cluster
  /**
   * The only prefix of every key (`<namespace>:…`). No `:` (one namespace must never be the prefix
   * of another, or `clear()` of one would reach into the other), no whitespace.
   */
  readonly namespace: string
  /** Values of at least this many msgpack bytes are lz4-compressed when that shrinks them. @default 1024 */
  readonly compressionThreshold?: number
  /** Largest value accepted at write and at read (msgpack bytes, before compression). @default 8 MiB */
  readonly maxValueBytes?: number
  /** Per-command timeout of clients the store creates, in ms. @default 1000 */
  readonly commandTimeout?: number
  /**
   * How often a ready connection the store created is probed with a PING, in ms (at least 100),
   * or `false` for never: a PING that times out (`commandTimeout`) replaces a connection that
   * stopped answering without closing (half-open). Not for a cluster client. @default max(commandTimeout, 1000)
   */
  readonly stallProbeInterval?: number | false
  /** Connect timeout of clients the store creates, in ms. @default 5000 */
  readonly connectTimeout?: number
  /** Reconnect attempts a command of a created client waits through before failing. @default 1 */
  readonly maxRetriesPerRequest?: number
  /** Coalesce the single `get`s issued in the same tick into one MGET (per slot in a cluster). @default true */
  readonly coalesceGets?: boolean
  /** SCAN COUNT hint for pattern deletion, clear() and info(). @default 1000 */
  readonly scanCount?: number
  /** Values come out of `get`/`getMany` deep-frozen (see `CodecOptions.freeze`). @default false */
  readonly freezeValues?: boolean
  /** pino-compatible; silent by default. */
  readonly logger?: Logger
  /** Time source for the Redis TTLs (graceUntil − now). @default Date.now */
  readonly clock?: Clock
}

export const STORE_DEFAULTS = Object.freeze({
  compressionThreshold: CODEC_DEFAULTS.compressionThreshold,
  maxValueBytes: CODEC_DEFAULTS.maxValueBytes,
  commandTimeout: 1000,
  connectTimeout: 5000,
  maxRetriesPerRequest: 1,
  coalesceGets: true,
  scanCount: 1000,
  freezeValues: false,
})

export interface ResolvedRedisStoreOptions {
  readonly connection: ResolvedConnection
  readonly namespace: string
  readonly compressionThreshold: number
  readonly maxValueBytes: number
  readonly commandTimeout: number
  readonly stallProbeInterval: number | false
  readonly connectTimeout: number
  readonly maxRetriesPerRequest: number
  readonly coalesceGets: boolean
  readonly scanCount: number
  readonly freezeValues: boolean
  readonly logger: Logger
  readonly clock: Clock
}

const noop = () => {}
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop })
const systemClock: Clock = Object.freeze({ now: () => Date.now() })

// Redis strings hold at most 512 MiB, and the lz4 size prefix is 32 bits.
const MAX_VALUE_LIMIT = 512 * 1024 * 1024

const schema = z.strictObject({
  namespace: z
    .string()
    .min(1, 'must be a non-empty string')
    .max(256)
    .regex(/^[^:\s]+$/, 'must not contain ":" or whitespace (one namespace must never be the prefix of another)'),
  compressionThreshold: z.number().int().min(0).default(STORE_DEFAULTS.compressionThreshold),
  maxValueBytes: z.number().int().min(1).max(MAX_VALUE_LIMIT).default(STORE_DEFAULTS.maxValueBytes),
  commandTimeout: z.number().int().positive().default(STORE_DEFAULTS.commandTimeout),
  stallProbeInterval: stallProbeSchema.optional(),
  connectTimeout: z.number().int().positive().default(STORE_DEFAULTS.connectTimeout),
  maxRetriesPerRequest: z.number().int().min(0).max(20).default(STORE_DEFAULTS.maxRetriesPerRequest),
  coalesceGets: z.boolean().default(STORE_DEFAULTS.coalesceGets),
  scanCount: z.number().int().min(1).default(STORE_DEFAULTS.scanCount),
  freezeValues: z.boolean().default(STORE_DEFAULTS.freezeValues),
  logger: z
    .custom<Logger>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        ['debug', 'info', 'warn', 'error'].every((level) => typeof (value as Record<string, unknown>)[level] === 'function'),
      'must be a pino-compatible logger (debug, info, warn, error)',
    )
    .optional(),
  clock: z.custom<Clock>((value) => typeof value === 'object' && value !== null && typeof (value as Clock).now === 'function', 'must have now()').optional(),
})

/** The one resolver of `redisStore()` options: validated, defaulted, frozen. */
export function resolveRedisStoreOptions(input: RedisStoreOptions): ResolvedRedisStoreOptions {
  if (typeof input !== 'object' || input === null) throw new InvalidOptionsError('', 'redisStore() needs an options object')
  const { redis, ...rest } = input
  if (redis === undefined) throw new InvalidOptionsError('redis', 'is required: connection options, a redis:// URL, or an ioredis Redis/Cluster')
  const connection = resolveConnection(redis, 'redis')
  const parsed = schema.safeParse(rest)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const got = issue.path.reduce<unknown>((value, part) => (value as Record<PropertyKey, unknown> | undefined)?.[part], rest)
    throw new InvalidOptionsError(issue.path.map(String).join('.'), `${issue.message} (got ${JSON.stringify(got) ?? String(got)})`)
  }
  const { logger, clock, stallProbeInterval, ...values } = parsed.data
  return Object.freeze({
    connection,
    ...values,
    stallProbeInterval: stallProbeInterval ?? Math.max(values.commandTimeout, 1000),
    logger: logger ?? silentLogger,
    clock: clock ?? systemClock,
  })
}
