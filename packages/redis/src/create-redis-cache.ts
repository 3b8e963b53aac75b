import { createTieredCache, InvalidOptionsError, type TieredCache, type TieredCacheOptions } from '@tiercache/core'
import { redisBus, type RedisBus, type RedisBusOptions } from './redis-bus.js'
import { redisStore, type RedisStore, type RedisStoreOptions } from './redis-store.js'

export interface RedisCacheOptions extends Omit<TieredCacheOptions, 'l2' | 'bus'> {
  /** Where Redis is: connection options, a `redis://` URL, or an ioredis `Redis` / `Cluster` (see `redisStore`). */
  readonly redis: RedisStoreOptions['redis']
  /** Prefix of every key and of the bus channel. */
  readonly namespace: string
  /** Store settings beyond the connection (compression, size limit, timeouts). */
  readonly store?: Omit<RedisStoreOptions, 'redis' | 'namespace' | 'logger' | 'clock' | 'freezeValues'>
  /**
   * Bus settings, or `false` for a cache without a bus (one process, or L1s that may lag until
   * their TTL). @default {}
   */
  readonly bus?: false | Omit<RedisBusOptions, 'redis' | 'namespace' | 'logger'>
}

export interface RedisCache extends TieredCache {
  readonly store: RedisStore
  readonly bus: RedisBus | undefined
}

/**
 * One call for the common setup: a Redis store and a Redis bus on one data connection, wired into
 * `createTieredCache`. When `redis` is connection options, the store creates the data client and
 * the bus borrows it (plus a subscriber connection of its own), so a node holds two connections,
 * not three; `close()` closes the cache, the bus and the store, which quits what it created.
 */
export function createRedisCache(options: RedisCacheOptions): RedisCache {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('', 'createRedisCache() needs an options object')
  const { redis, namespace, store: storeOptions, bus: busOptions, ...cacheOptions } = options
  const store = redisStore({
    ...storeOptions,
    redis,
    namespace,
    // The engine deep-freezes every L2 value it keeps (immutability 'freeze', the default): let the
    // decoder build them frozen, so deepFreeze finds a frozen root and does not walk them again.
    freezeValues: (cacheOptions.l1?.immutability ?? 'freeze') === 'freeze',
    ...(cacheOptions.logger ? { logger: cacheOptions.logger } : {}),
    ...(cacheOptions.clock ? { clock: cacheOptions.clock } : {}),
  })
  let bus: RedisBus | undefined
  try {
    bus =
      busOptions === false
        ? undefined
        : redisBus({ ...busOptions, redis: store.client, namespace, ...(cacheOptions.logger ? { logger: cacheOptions.logger } : {}) })
    const cache = createTieredCache({ ...cacheOptions, l2: store, ...(bus ? { bus } : {}) })
    return Object.assign(cache, { store, bus })
  } catch (error) {
    void bus?.close().catch(() => {})
    void store.close().catch(() => {})
    throw error
  }
}
