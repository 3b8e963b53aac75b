/**
 * The ports of the engine: small role interfaces with do-nothing or in-memory defaults, so that
 * the engine never checks whether a collaborator exists. Implementations live beside core
 * (`memoryStore()`, `memoryBus()` here; `redisStore()`, `redisBus()` in @tiercache/redis).
 */

/** Time source. Injected so TTL, grace and breaker behaviour can be tested with a fake clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

/** A pino-compatible logger: `(obj, msg?)` or `(msg)`. Silent by default. */
export interface Logger {
  debug(obj: object | string, msg?: string): void
  info(obj: object | string, msg?: string): void
  warn(obj: object | string, msg?: string): void
  error(obj: object | string, msg?: string): void
}

/**
 * Where an entry lives in the remote store. The store owns the namespace and the byte layout of
 * keys (`<namespace>:<family>:g<generation>:{<id>}`); the engine owns what the parts mean.
 */
export interface StoreKey {
  /** Family name with its version, `<name>@<version>`, e.g. `task:status@1`. */
  readonly family: string
  /**
   * Generation tag, '' when the key carries none. Bumping a generation gives every key of the
   * family (or group) a new tag, which invalidates them all in O(1).
   */
  readonly generation: string
  /** The key inside the family (the user's key). */
  readonly id: string
}

/** What the remote store keeps for a key. Times are epoch milliseconds. */
export interface RemoteEntry<T = unknown> {
  readonly value: T
  /** Logical expiry: fresh before it. */
  readonly expiresAt: number
  /** Stale copies may be served until here (fail-safe); `>= expiresAt`. The store's own TTL. */
  readonly graceUntil: number
  /** The entry's tags (`set` and `getOrSet` `tags`, a family's `tags()`); absent when it has none. */
  readonly tags?: readonly string[]
  /**
   * With `tags`: the tag sequence its writer knew when the write was made (or the load began). The
   * entry stands while none of its tags has a later version (`RemoteStore.invalidateTags`).
   */
  readonly tagVersion?: number
  /**
   * Expired early by `expire()`: until `graceUntil` a reader serves it at once while one reload
   * runs (through the lease), instead of waiting for the loader. Absent on entries as written.
   */
  readonly expired?: true
}

/** The answer to a lease request on a miss (Facebook memcache leases). */
export type LeaseGrant =
  /** This caller may load and fill; the fill lands only if the lease is still valid then. */
  | { readonly granted: true; readonly token: string }
  /** Another caller holds the lease: wait for its fill instead of loading too. */
  | { readonly granted: false }

/**
 * The L2 port. Every call may reject (network, timeouts); the engine wraps all of them in one
 * guard (timeout + circuit breaker) and never lets their errors reach a reader.
 */
export interface RemoteStore {
  get(key: StoreKey): Promise<RemoteEntry | undefined>
  /** Same order as `keys`; `undefined` for misses. */
  getMany(keys: readonly StoreKey[]): Promise<(RemoteEntry | undefined)[]>
  /** Unconditional write; voids outstanding leases of the key (a newer value wins over a fill). */
  set(key: StoreKey, entry: RemoteEntry): Promise<void>
  setMany(entries: readonly { readonly key: StoreKey; readonly entry: RemoteEntry }[]): Promise<void>
  /** Deletes values and voids their leases. */
  delete(keys: readonly StoreKey[]): Promise<void>
  /** Deletes every key of the namespace (never FLUSHDB). */
  clear(): Promise<void>
  /**
   * Soft invalidation (`cache.expire()`): each present entry becomes `expired`, with its
   * `expiresAt` brought down to `at` when later, its value, grace, tags and the key's TTL kept;
   * absent keys are left alone. Voids the keys' leases, as a write does: a load that began
   * before may have read what changed. Optional: without it `expire()` deletes instead.
   */
  expire?(keys: readonly StoreKey[], at: number): Promise<void>
  /** Takes the lease of a missing key for `ttlMs`, or reports that someone else holds it. */
  acquireLease(key: StoreKey, ttlMs: number): Promise<LeaseGrant>
  /** Writes only if `token` is still the key's lease; releases it. Resolves whether it landed. */
  fillWithLease(key: StoreKey, token: string, entry: RemoteEntry): Promise<boolean>
  /** Current values of named generations (0 when never bumped). '' is the whole namespace. */
  getGenerations(names: readonly string[]): Promise<number[]>
  /** Increments a generation and resolves its new value. */
  bumpGeneration(name: string): Promise<number>
  /**
   * The namespace's tag sequence (the last version `invalidateTags` gave, 0 before the first) and
   * the current version of each of `tags` (0 for a tag never invalidated), in order. Optional:
   * without it and `invalidateTags`, tagged entries are refused (`TIERCACHE_INVALID_OPTIONS`).
   */
  getTagVersions?(tags: readonly string[]): Promise<TagVersions>
  /**
   * Moves the namespace's tag sequence one on and gives every tag of `tags` that version, at once;
   * resolves it. The sequence never goes back: `clear()` keeps it.
   */
  invalidateTags?(tags: readonly string[]): Promise<number>
  /**
   * Applies the L2 changes of one or more writes, then publishes `message` (made by the bus's
   * `prepare`, which checked that this store can carry it), in one round trip where it can: the
   * publish last, so that no process hears the message before L2 changed. Resolves the new
   * values of `changes.bumps`, in order. Rejects when nothing may be taken as done (the changes
   * and the message may have landed in part). Optional: without it (or without a bus that can
   * prepare), the engine makes the store's calls, then the bus's publish.
   */
  apply?(changes: StoreChanges, message: PreparedMessage | undefined): Promise<number[]>
  /**
   * Deletes the keys of the namespace whose part after `<namespace>:` matches `glob` (SCAN +
   * UNLINK in batches, every master in a cluster). Resolves the number deleted. Optional.
   */
  deleteByPattern?(glob: string): Promise<number>
  /**
   * Deletes the values of `family` (`<name>@<version>`) left by older generations: every one whose
   * generation is neither `keep` nor `keep.<group generation>`. Resolves the number deleted.
   * Scans this namespace alone. Optional: without it, such values simply expire.
   */
  purgeFamily?(family: string, keep: string): Promise<number>
  /**
   * Memory, key counts and connection state, for statistics. Counting keys scans the namespace:
   * with `{ keys: false }` the store skips the scan and reports `keysByFamily` empty. Optional.
   */
  info?(options?: StoreInfoOptions): Promise<StoreInfo>
  /**
   * Resolves true once the store can serve commands, false if it cannot within `timeoutMs`;
   * never rejects. Optional: a store without it is taken as always connected.
   */
  ready?(timeoutMs: number): Promise<boolean>
  /**
   * While the store's first connection is being made: a promise of its outcome (true: connected,
   * false: the attempt failed). Undefined once it ended. The guard holds the calls issued in that
   * window until it settles, within the L2 timeout, so that start-up is not taken for failure.
   * Optional: a store without it is taken as connected from the start.
   */
  connecting?(): Promise<boolean> | undefined
  /** Releases what the store created (never a client the caller passed in). */
  close(): Promise<void>
}

/** The L2 side of the writes made in one event-loop turn, applied together (`RemoteStore.apply`). */
export interface StoreChanges {
  /**
   * Unconditional writes, in the order they were made; each voids its key's lease. The engine
   * never puts a set of a key after a delete of it in one batch (the store applies sets first).
   */
  readonly sets: readonly { readonly key: StoreKey; readonly entry: RemoteEntry }[]
  /** Deletes, after the sets; each voids its key's lease. */
  readonly deletes: readonly StoreKey[]
  /** Generations to increment, after the deletes. */
  readonly bumps: readonly string[]
}

/**
 * A bus message encoded for a store to publish in the round trip of the changes it announces.
 * The bus and the store agree on its form; the engine only hands it from one to the other.
 */
export interface PreparedMessage {
  /** Where to publish it. */
  readonly channel: string
  /** Publish on the channel's shard (a cluster's SPUBLISH), not the whole server. */
  readonly sharded: boolean
  /**
   * The encoded message cut where the new values of the bumped generations go, in the order of
   * `StoreChanges.bumps`: one more part than bumps. Each value is written as a msgpack integer.
   */
  readonly parts: readonly Uint8Array[]
}

/** What `RemoteStore.getTagVersions` answers. */
export interface TagVersions {
  /** The last version given to any tag of the namespace; 0 before the first invalidation. */
  readonly sequence: number
  /** Each asked tag's version, in order; 0 for a tag never invalidated. */
  readonly versions: readonly number[]
}

/** What `info()` is to report. */
export interface StoreInfoOptions {
  /** Count the namespace's keys per family (a SCAN of the namespace). @default true */
  readonly keys?: boolean
}

/** What a store reports about itself. */
export interface StoreInfo {
  /** Bytes the server uses (Redis `used_memory`), summed over masters. */
  readonly usedMemoryBytes?: number
  /** Keys of this namespace per family (`<name>@<version>`); empty when asked with `{ keys: false }`. */
  readonly keysByFamily: Readonly<Record<string, number>>
  readonly connection: 'ready' | 'connecting' | 'reconnecting' | 'closed' | 'error'
}

/** What the engine publishes on the bus. */
export type Invalidation =
  /** Drop these L1 entries (the value changed or was deleted in L2). Keys are L1 keys. */
  | { readonly op: 'delete'; readonly keys: readonly string[] }
  /** A generation moved to `value`: entries tagged with an older one are gone. */
  | { readonly op: 'generation'; readonly name: string; readonly value: number }
  /**
   * Entries tagged with any of `tags` and written before `version` are gone (the version the
   * store's `invalidateTags` gave them).
   */
  | { readonly op: 'tags'; readonly tags: readonly string[]; readonly version: number }
  /**
   * These L1 entries are stale, not gone (`expire()`): each is served within its grace while one
   * reload runs. Keys are L1 keys.
   */
  | { readonly op: 'expire'; readonly keys: readonly string[] }
  /** Drop the whole L1. */
  | { readonly op: 'clear' }

/** An invalidation as received, with the sender's identity and order. */
export type ReceivedInvalidation = Invalidation & {
  /** Instance id of the sender. */
  readonly source: string
  /** Sender's sequence number, increasing per sender. */
  readonly seq: number
  /** Sender's clock when it published (epoch ms). */
  readonly ts: number
}

/**
 * The coherence port. The bus stamps messages with its instance id and sequence and drops its
 * own on receipt. It reports its health: unhealthy on disconnect, error or a missed heartbeat.
 */
export interface InvalidationBus {
  /** This node's instance id (the `source` of what it publishes). */
  readonly instanceId: string
  /** Whether invalidations are known to arrive now. */
  readonly healthy: boolean
  /** Hands a message to the transport; resolves once the transport accepted it. */
  publish(message: Invalidation): Promise<void>
  /**
   * Encodes `messages` (stamped like a publish) for `store` to publish after its changes, in one
   * round trip (`RemoteStore.apply`); or undefined when that store cannot reach this bus's
   * listeners the same way (another connection, another server, no `apply`), and the engine
   * publishes itself. The values of the `generation` messages are placeholders: the store writes
   * the bumped values in their place, in order. Optional.
   */
  prepare?(messages: readonly Invalidation[], store: RemoteStore): PreparedMessage | undefined
  /** Registers the one handler for messages from other nodes. Handlers must not throw. */
  onMessage(handler: (message: ReceivedInvalidation) => void): void
  /** Called on every change of health. */
  onHealthChange(listener: (healthy: boolean) => void): void
  /** Subscribes; resolves when messages can arrive. */
  start(): Promise<void>
  /**
   * Resolves true once the bus is healthy (subscribed and heard), false if it is not within
   * `timeoutMs`; never rejects. Optional: without it, `healthy` is read as it is.
   */
  ready?(timeoutMs: number): Promise<boolean>
  close(): Promise<void>
}

/** A counter and timing sink for metrics systems. Do-nothing by default. */
export interface StatsSink {
  increment(metric: string, family: string, by?: number): void
  timing(metric: string, family: string, ms: number): void
}
