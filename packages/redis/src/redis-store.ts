/*
 * The Redis implementation of the core `RemoteStore` port.
 *
 * Read path: the first `get` of a tick is sent at once as GET; the gets issued after it in the
 * same tick (any promise depth: the flush runs on process.nextTick, after the microtask queue
 * drained) are sent together as one MGET, or one per slot in a cluster. A lone reader pays no
 * batching delay; under concurrency N request/reply round trips become two, which is how many
 * readers in flight beat N bare GETs.
 * Bytes are decoded by the codec; anything that does not decode is a miss: the key is removed
 * (only if it still holds those bytes), counted in `counters.corrupt`, and logged once.
 *
 * Write path: `set` is DEL lease, then SET value PX (graceUntil − now), in one pipeline. The
 * order matters without MULTI: a fill script running between the two finds no lease and does not
 * land, and a fill after the SET finds no lease either, so a fill never overwrites a newer set.
 * Fills are the FILL_WITH_LEASE script: value and lease share a hash tag, so it is single-slot.
 *
 * apply(): the changes of a round trip and its bus message in one script (`APPLY`): sets, deletes
 * and generation INCRs in order, then the PUBLISH with the new values written in, so a receiver
 * never hears of a change before it is in Redis. In a cluster, one pipeline per slot, then the
 * SPUBLISH.
 *
 * expire(): soft invalidation, one SOFT_EXPIRE script per key (value and lease share a slot, so
 * each goes to its slot's master; issued together they are in flight at once on each connection).
 * The script sets the codec's expired flag and lowers expiresAt in place (SETRANGE of the header),
 * so the entry's value, grace, tags and TTL stay, and voids the lease as a write does. It is not
 * part of apply(): the engine makes it a store call of its own, then publishes its 'expire' op.
 *
 * Cluster: every multi-key command is grouped by hash slot (CROSSSLOT otherwise); SCAN runs on
 * every master. Generation keys carry no hash tag and are grouped like any other key.
 *
 * Tags: one hash per namespace, `<ns>:tags` — field '' is the tag sequence, one field per tag
 * holds the version its last invalidation gave it. `invalidateTags` is one script (HINCRBY of
 * the sequence, HSET of the tags), `getTagVersions` one HMGET. Its fields never expire: one per
 * tag ever invalidated stays (a few tens of bytes each). Neither clear(), deleteByPattern() nor
 * purgeFamily() touches it: entries written later, or left in some L1, carry versions that must
 * keep meaning the same, so the sequence never goes back.
 *
 * clear(): SCAN + UNLINK of `<ns>:*` — values, leases and generation counters. It frees the
 * namespace's memory now, which a namespace-generation bump would not (old entries would sit
 * until their TTL). Resetting generation counters is safe because the values they tagged are
 * removed in the same sweep; a write racing the sweep may survive it, as with any clear. The
 * engine publishes a 'clear' on the bus so that every L1 drops its entries and cached generations.
 *
 * purgeFamily(): the same sweep over `<ns>:<family>:*`, unlinking only the value keys of exactly
 * that family (the glob also matches `<family>:…` names that merely start alike) whose generation
 * is not the one kept or one of its groups. Leases and generation keys never parse as values.
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { pack } from 'msgpackr'
import type { LeaseGrant, PreparedMessage, RemoteEntry, RemoteStore, StoreChanges, StoreInfo, StoreInfoOptions, StoreKey, TagVersions } from '@tiercache/core'
import { createCodec, type Codec, type CorruptReason } from './codec.js'
import { CLOSE_GRACE_MS, closeClient, createClient, isCluster, monitorConnection, watchStalls, type RedisClient } from './connection.js'
import { SerializationError, ValueTooLargeError } from './errors.js'
import { bySlot, familyGlob, keyBuilder, namespacePrefix, parseValueKey } from './keys.js'
import { resolveRedisStoreOptions, type RedisStoreOptions } from './options.js'
import { APPLY, FILL_WITH_LEASE, INVALIDATE_TAGS, luaScript, SOFT_EXPIRE } from './scripts.js'

export type { RedisStoreOptions } from './options.js'

/** What the store counts about itself (monotonic since creation). */
export interface RedisStoreCounters {
  /** Entries that failed to decode and were removed (read as misses). */
  readonly corrupt: number
  /** Writes refused because the value exceeded `maxValueBytes`. */
  readonly tooLarge: number
}

export interface RedisStore extends RemoteStore {
  readonly namespace: string
  /** The client in use (the caller's, or the one the store created). */
  readonly client: Redis | Cluster
  readonly counters: RedisStoreCounters
  readonly codec: Codec
  expire(keys: readonly StoreKey[], at: number): Promise<void>
  /**
   * Resolves true once the connection is ready, false if it is not within `timeoutMs` (default:
   * `connectTimeout`); never rejects. Commands issued before need not wait for it: those issued
   * while the first connection is being made wait for it (see `connecting`).
   */
  ready(timeoutMs?: number): Promise<boolean>
  connecting(): Promise<boolean> | undefined
  apply(changes: StoreChanges, message: PreparedMessage | undefined): Promise<number[]>
  deleteByPattern(glob: string): Promise<number>
  purgeFamily(family: string, keep: string): Promise<number>
  info(options?: StoreInfoOptions): Promise<StoreInfo>
}

// Removes a corrupt entry only if it still holds the bytes that failed, so a fresh value written
// since the read is never lost.
const UNLINK_IF_EQUAL = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('UNLINK', KEYS[1]) end
return 0
`)

interface PendingGet {
  readonly key: string
  resolve(entry: RemoteEntry | undefined): void
  reject(error: unknown): void
}

const UNLINK_BATCH = 500

const sum = (counts: readonly number[]): number => counts.reduce((total, count) => total + count, 0)

export function redisStore(options: RedisStoreOptions): RedisStore {
  const resolved = resolveRedisStoreOptions(options)
  const { logger, clock, scanCount } = resolved
  const owned = resolved.connection.kind !== 'client'
  const client: RedisClient =
    resolved.connection.kind === 'client'
      ? resolved.connection.client
      : createClient(resolved.connection, {
          commandTimeout: resolved.commandTimeout,
          connectTimeout: resolved.connectTimeout,
          maxRetriesPerRequest: resolved.maxRetriesPerRequest,
        })
  const cluster = isCluster(client)
  const monitor = monitorConnection(client, logger)
  const stopStallWatch = owned ? watchStalls(client, resolved.stallProbeInterval, logger) : () => {}
  const keys = keyBuilder(resolved.namespace)
  const prefix = namespacePrefix(resolved.namespace)
  const codec = createCodec({ compressionThreshold: resolved.compressionThreshold, maxValueBytes: resolved.maxValueBytes, freeze: resolved.freezeValues })
  const counters = { corrupt: 0, tooLarge: 0 }

  const decodeReply = (redisKey: string, bytes: Buffer | null | undefined): RemoteEntry | undefined => {
    if (bytes === null || bytes === undefined) return undefined
    const result = codec.decode(bytes)
    if (result.ok) return result.entry
    onCorrupt(redisKey, bytes, result.reason, result.error)
    return undefined
  }

  const onCorrupt = (redisKey: string, bytes: Buffer, reason: CorruptReason, error: unknown) => {
    counters.corrupt += 1
    logger.warn(
      { key: redisKey, reason, bytes: bytes.length, err: error instanceof Error ? error.message : undefined },
      'tiercache redis: corrupt entry dropped',
    )
    UNLINK_IF_EQUAL.run(client, [redisKey], [bytes]).catch((unlinkError: unknown) => {
      logger.debug({ key: redisKey, err: (unlinkError as Error).message }, 'tiercache redis: could not remove a corrupt entry')
    })
  }

  const encode = (redisKey: string, entry: RemoteEntry): Buffer => {
    try {
      return codec.encode(entry, redisKey)
    } catch (error) {
      if (error instanceof ValueTooLargeError) counters.tooLarge += 1
      throw error
    }
  }

  const ttlOf = (entry: RemoteEntry): number => Math.ceil(entry.graceUntil - clock.now())

  // ---- reads -------------------------------------------------------------------------------

  /** A cluster's MGET: one per slot, the replies put back in input order. */
  const mgetBySlot = async <T>(redisKeys: readonly string[], mget: (slotKeys: readonly string[]) => Promise<(T | null)[]>): Promise<(T | null)[]> => {
    const out = new Array<T | null>(redisKeys.length)
    await bySlot(redisKeys, async (slotKeys, indexes) => {
      const replies = await mget(slotKeys)
      for (let j = 0; j < indexes.length; j++) out[indexes[j]!] = replies[j] ?? null
    })
    return out
  }
  const mgetBuffers = (slotKeys: readonly string[]) => client.mgetBuffer(...slotKeys)
  const mgetStrings = (slotKeys: readonly string[]) => client.mget(...slotKeys)

  /** MGET of raw bytes in input order, one command per slot in a cluster. */
  const mgetBytes = async (redisKeys: readonly string[]): Promise<(Buffer | null)[]> => {
    if (redisKeys.length === 1) return [await client.getBuffer(redisKeys[0]!)]
    return cluster ? mgetBySlot(redisKeys, mgetBuffers) : client.mgetBuffer(...redisKeys)
  }

  const directGet = async (key: StoreKey): Promise<RemoteEntry | undefined> => {
    const redisKey = keys.value(key)
    return decodeReply(redisKey, await client.getBuffer(redisKey))
  }

  // The first get of a tick goes out at once as a GET (a lone reader pays no batching delay);
  // the gets that follow it in the same tick wait for process.nextTick and go out together.
  let windowOpen = false
  let pending: PendingGet[] | undefined

  const flushGets = () => {
    windowOpen = false
    const batch = pending
    if (batch === undefined) return
    pending = undefined
    if (batch.length === 1) {
      const only = batch[0]!
      client.getBuffer(only.key).then(
        (bytes) => only.resolve(decodeReply(only.key, bytes)),
        (error: unknown) => only.reject(error),
      )
      return
    }
    mgetBytes(batch.map((get) => get.key)).then(
      (replies) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(decodeReply(batch[i]!.key, replies[i]))
      },
      (error: unknown) => {
        for (const get of batch) get.reject(error)
      },
    )
  }

  const coalescedGet = (key: StoreKey): Promise<RemoteEntry | undefined> => {
    if (!windowOpen) {
      windowOpen = true
      process.nextTick(flushGets)
      return directGet(key)
    }
    return new Promise((resolve, reject) => {
      ;(pending ??= []).push({ key: keys.value(key), resolve, reject })
    })
  }

  const getMany = async (storeKeys: readonly StoreKey[]): Promise<(RemoteEntry | undefined)[]> => {
    if (storeKeys.length === 0) return []
    const redisKeys = storeKeys.map((key) => keys.value(key))
    const replies = await mgetBytes(redisKeys)
    return replies.map((bytes, i) => decodeReply(redisKeys[i]!, bytes))
  }

  // ---- writes ------------------------------------------------------------------------------

  const unlinkGrouped = async (redisKeys: readonly string[]): Promise<number> => {
    if (redisKeys.length === 0) return 0
    if (!cluster) return client.unlink(...redisKeys)
    return sum(await bySlot(redisKeys, (slotKeys) => client.unlink(...slotKeys)))
  }

  const execChecked = async (pipeline: ReturnType<RedisClient['pipeline']>): Promise<void> => {
    const results = await pipeline.exec()
    for (const [error] of results ?? []) if (error) throw error
  }

  const set = async (key: StoreKey, entry: RemoteEntry): Promise<void> => {
    const ttl = ttlOf(entry)
    if (ttl <= 0) {
      await unlinkGrouped([keys.value(key), keys.lease(key)])
      return
    }
    const redisKey = keys.value(key)
    const bytes = encode(redisKey, entry)
    await execChecked(client.pipeline().del(keys.lease(key)).set(redisKey, bytes, 'PX', ttl))
  }

  interface Encoded {
    readonly redisKey: string
    readonly lease: string
    readonly ttl: number
    /** Undefined when the entry has expired already: the key is removed instead. */
    readonly bytes: Buffer | undefined
  }

  /** Encodes every write first: a value that cannot be written fails the call before anything is sent. */
  const encodeSets = (sets: StoreChanges['sets']): Encoded[] =>
    sets.map(({ key, entry }) => {
      const redisKey = keys.value(key)
      const ttl = ttlOf(entry)
      return { redisKey, lease: keys.lease(key), ttl, bytes: ttl > 0 ? encode(redisKey, entry) : undefined }
    })

  /** One write in a pipeline: lease voided, then the value set (or removed, when it expired). */
  const pipeSet = (pipeline: ReturnType<RedisClient['pipeline']>, write: Encoded): void => {
    if (write.bytes === undefined) pipeline.unlink(write.redisKey, write.lease)
    else pipeline.del(write.lease).set(write.redisKey, write.bytes, 'PX', write.ttl)
  }

  const setMany = async (entries: StoreChanges['sets']): Promise<void> => {
    if (entries.length === 0) return
    const writes = encodeSets(entries)
    const send = (indexes: Iterable<number>): Promise<void> => {
      const pipeline = client.pipeline()
      for (const i of indexes) pipeSet(pipeline, writes[i]!)
      return execChecked(pipeline)
    }
    if (!cluster) return send(writes.keys())
    await bySlot(
      writes.map((write) => write.redisKey),
      (_slotKeys, indexes) => send(indexes),
    )
  }

  const deleteKeys = async (storeKeys: readonly StoreKey[]): Promise<void> => {
    if (storeKeys.length === 0) return
    const redisKeys: string[] = []
    for (const key of storeKeys) redisKeys.push(keys.value(key), keys.lease(key))
    await unlinkGrouped(redisKeys)
  }

  const expire = async (storeKeys: readonly StoreKey[], at: number): Promise<void> => {
    // Lua compares NaN false and would keep the later expiresAt without a word.
    if (typeof at !== 'number' || Number.isNaN(at)) throw new TypeError(`redis store: expire() needs \`at\` as epoch ms (got ${String(at)})`)
    if (storeKeys.length === 0) return
    await Promise.all(storeKeys.map((key) => SOFT_EXPIRE.run(client, [keys.value(key), keys.lease(key)], [at])))
  }

  // ---- round trips -------------------------------------------------------------------------

  /** The message with the bumped values written in: what `APPLY` builds in Lua, built here. */
  const messageBytes = (message: PreparedMessage, values: readonly number[]): Buffer => {
    const chunks: Uint8Array[] = [message.parts[0]!]
    for (let i = 0; i < values.length; i++) chunks.push(pack(values[i]), message.parts[i + 1]!)
    return Buffer.concat(chunks)
  }

  const apply = async (changes: StoreChanges, message: PreparedMessage | undefined): Promise<number[]> => {
    if (message !== undefined && message.parts.length !== changes.bumps.length + 1) {
      throw new SerializationError(
        `redis store: a prepared message must have one part more than the ${changes.bumps.length} bumps it carries (got ${message.parts.length})`,
      )
    }
    const sets = encodeSets(changes.sets)
    if (cluster) return applyBySlot(sets, changes, message)
    const redisKeys: string[] = []
    const args: (string | Buffer | number)[] = [sets.length, changes.deletes.length, changes.bumps.length, message?.channel ?? '', message?.sharded ? '1' : '0']
    for (const set of sets) {
      redisKeys.push(set.redisKey, set.lease)
      args.push(set.bytes ?? '', set.ttl)
    }
    for (const key of changes.deletes) redisKeys.push(keys.value(key), keys.lease(key))
    for (const name of changes.bumps) redisKeys.push(keys.generation(name))
    if (message !== undefined) for (const part of message.parts) args.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength))
    return (await APPLY.run(client, redisKeys, args)) as number[]
  }

  /**
   * A cluster's round trip: a script's keys must share a slot, so the changes go as one pipeline
   * per slot (in parallel; the order of one key's changes is kept), and the message after all of
   * them, on the channel's shard.
   */
  const applyBySlot = async (sets: readonly Encoded[], changes: StoreChanges, message: PreparedMessage | undefined): Promise<number[]> => {
    type Step = (pipeline: ReturnType<RedisClient['pipeline']>) => void
    const steps: { key: string; add: Step; bump: number }[] = []
    for (const set of sets) steps.push({ key: set.redisKey, bump: -1, add: (p) => pipeSet(p, set) })
    for (const key of changes.deletes) {
      const redisKey = keys.value(key)
      const lease = keys.lease(key)
      steps.push({ key: redisKey, bump: -1, add: (p) => p.unlink(redisKey, lease) })
    }
    changes.bumps.forEach((name, i) => {
      const redisKey = keys.generation(name)
      steps.push({ key: redisKey, bump: i, add: (p) => p.incr(redisKey) })
    })
    const values = new Array<number>(changes.bumps.length).fill(0)
    await bySlot(
      steps.map((step) => step.key),
      async (_slotKeys, indexes) => {
        const pipeline = client.pipeline()
        const bumpAt: [number, number][] = []
        for (const i of indexes) {
          const step = steps[i]!
          step.add(pipeline)
          if (step.bump >= 0) bumpAt.push([pipeline.length - 1, step.bump])
        }
        const results = (await pipeline.exec()) ?? []
        for (const [error] of results) if (error) throw error
        for (const [at, bump] of bumpAt) values[bump] = Number(results[at]?.[1])
      },
    )
    if (message !== undefined) {
      const bytes = messageBytes(message, values)
      await (message.sharded ? client.spublish(message.channel, bytes) : client.publish(message.channel, bytes))
    }
    return values
  }

  // ---- leases ------------------------------------------------------------------------------

  const acquireLease = async (key: StoreKey, ttlMs: number): Promise<LeaseGrant> => {
    const token = randomBytes(12).toString('base64url')
    const reply = await client.set(keys.lease(key), token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')
    return reply === 'OK' ? { granted: true, token } : { granted: false }
  }

  const fillWithLease = async (key: StoreKey, token: string, entry: RemoteEntry): Promise<boolean> => {
    const redisKey = keys.value(key)
    const ttl = ttlOf(entry)
    const bytes = ttl > 0 ? encode(redisKey, entry) : Buffer.alloc(0)
    const landed = await FILL_WITH_LEASE.run(client, [redisKey, keys.lease(key)], [token, bytes, ttl])
    return landed === 1
  }

  // ---- generations -------------------------------------------------------------------------

  const getGenerations = async (names: readonly string[]): Promise<number[]> => {
    if (names.length === 0) return []
    const redisKeys = names.map((name) => keys.generation(name))
    const replies = cluster ? await mgetBySlot(redisKeys, mgetStrings) : await client.mget(...redisKeys)
    return replies.map((value) => {
      const parsed = value === null ? 0 : Number(value)
      return Number.isFinite(parsed) ? parsed : 0
    })
  }

  const bumpGeneration = (name: string): Promise<number> => client.incr(keys.generation(name))

  // ---- tags --------------------------------------------------------------------------------

  const getTagVersions = async (tags: readonly string[]): Promise<TagVersions> => {
    const replies = await client.hmget(keys.tags, '', ...tags)
    const versionOf = (value: string | null | undefined): number => {
      const parsed = value === null || value === undefined ? 0 : Number(value)
      return Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : 0
    }
    return { sequence: versionOf(replies[0]), versions: tags.map((_, i) => versionOf(replies[i + 1])) }
  }

  const invalidateTags = async (tags: readonly string[]): Promise<number> => {
    const version = Number(await INVALIDATE_TAGS.run(client, [keys.tags], tags))
    if (!Number.isSafeInteger(version)) throw new Error(`invalidateTags: the store answered ${String(version)}, not a version`)
    return version
  }

  // ---- namespace-wide ----------------------------------------------------------------------

  const masters = (): Redis[] => (cluster ? (client as Cluster).nodes('master') : [client as Redis])

  /** Calls `onKeys` for each SCAN page of `pattern` on every master. */
  const scanAll = async (pattern: string, onKeys: (node: Redis, page: string[]) => Promise<void> | void): Promise<void> => {
    await Promise.all(
      masters().map(async (node) => {
        let cursor = '0'
        do {
          const [next, page] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', scanCount)
          cursor = next
          if (page.length > 0) await onKeys(node, page)
        } while (cursor !== '0')
      }),
    )
  }

  const unlinkInBatches = async (node: Redis, redisKeys: readonly string[]): Promise<number> => {
    let removed = 0
    for (let i = 0; i < redisKeys.length; i += UNLINK_BATCH) removed += await node.unlink(...redisKeys.slice(i, i + UNLINK_BATCH))
    return removed
  }

  const unlinkOnNode = async (node: Redis, redisKeys: readonly string[]): Promise<number> => {
    if (redisKeys.length === 0) return 0
    if (!cluster) return unlinkInBatches(node, redisKeys)
    return sum(await bySlot(redisKeys, (slotKeys) => unlinkInBatches(node, slotKeys)))
  }

  /** UNLINKs the keys of `pattern` (those `select` accepts, when given) on every master; resolves how many went. */
  const unlinkScanned = async (pattern: string, select?: (redisKey: string) => boolean): Promise<number> => {
    let removed = 0
    await scanAll(pattern, async (node, page) => {
      // Not `removed += await …`: that reads `removed` before the await, and masters run concurrently.
      const count = await unlinkOnNode(node, select === undefined ? page : page.filter(select))
      removed += count
    })
    return removed
  }

  // The tag hash matches `*` like any key: it stays (see the top of this file).
  const notTags = (redisKey: string): boolean => redisKey !== keys.tags
  const deleteByPattern = (glob: string): Promise<number> => unlinkScanned(keys.pattern(glob), notTags)

  const purgeFamily = (family: string, keep: string): Promise<number> => {
    const groupOfKept = `${keep}.`
    return unlinkScanned(keys.pattern(familyGlob(family)), (redisKey) => {
      const key = parseValueKey(prefix, redisKey)
      return key !== undefined && key.family === family && key.generation !== keep && !key.generation.startsWith(groupOfKept)
    })
  }

  const info = async (options?: StoreInfoOptions): Promise<StoreInfo> => {
    const keysByFamily: Record<string, number> = {}
    // Statistics must still say why L2 is missing: no commands while the connection is down.
    const connection = monitor.state()
    if (connection !== 'ready') return { keysByFamily, connection }
    let usedMemoryBytes = 0
    const nodes = masters()
    await Promise.all(
      nodes.map(async (node) => {
        const text = await node.info('memory')
        const match = /used_memory:(\d+)/.exec(text)
        if (match) usedMemoryBytes += Number(match[1])
      }),
    )
    if (options?.keys === false) return { usedMemoryBytes, keysByFamily, connection: monitor.state() }
    await scanAll(keys.pattern('*'), (_node, page) => {
      for (const redisKey of page) {
        const family = keys.familyOf(redisKey)
        if (family !== undefined) keysByFamily[family] = (keysByFamily[family] ?? 0) + 1
      }
    })
    return { usedMemoryBytes, keysByFamily, connection: monitor.state() }
  }

  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    stopStallWatch()
    if (owned) await closeClient(client, Math.min(resolved.commandTimeout, CLOSE_GRACE_MS))
    monitor.detach()
  }

  return {
    namespace: resolved.namespace,
    client,
    counters,
    codec,
    get: resolved.coalesceGets ? coalescedGet : directGet,
    getMany,
    set,
    setMany,
    delete: deleteKeys,
    expire,
    clear: async () => {
      await deleteByPattern('*')
    },
    acquireLease,
    fillWithLease,
    getGenerations,
    bumpGeneration,
    getTagVersions,
    invalidateTags,
    apply,
    deleteByPattern,
    purgeFamily,
    info,
    close,
    ready: (timeoutMs = resolved.connectTimeout) => monitor.ready(timeoutMs),
    connecting: () => monitor.connecting(),
  }
}
