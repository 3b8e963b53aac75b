// The peers as subjects of the outage scenario: a cache-backed loader (`getOrSet`/`wrap`) over
// an L1 of 200 entries in front of Redis, with their defaults and with the settings that keep
// callers moving best when Redis fails (fail fast instead of queueing, breaker where offered).
import type { RedisEndpoint } from '../scenario.js'

export interface OutageSubject {
  read(key: string, load: () => Promise<unknown>): Promise<unknown>
  close(): Promise<void>
}

export type OutageSubjectFactory = (redis: RedisEndpoint, keyPrefix: string) => Promise<OutageSubject>

/** L1 capacity of every subject: the readers' 2,000 Zipf keys mostly miss L1 and use Redis. */
export const OUTAGE_L1_ENTRIES = 200
const TTL_MS = 60_000

async function bentocache(redis: RedisEndpoint, keyPrefix: string, tuned: boolean): Promise<OutageSubject> {
  const { BentoCache, bentostore } = await import('bentocache')
  const { memoryDriver } = await import('bentocache/drivers/memory')
  const { redisDriver } = await import('bentocache/drivers/redis')
  const connection = tuned
    ? // Fail fast while Redis is away instead of queueing commands until it returns.
      { host: redis.host, port: redis.port, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 50, connectTimeout: 200 }
    : { host: redis.host, port: redis.port }
  const bento = new BentoCache({
    default: 'tiered',
    prefix: keyPrefix,
    ...(tuned ? { l2CircuitBreakerDuration: '1s', timeout: '50ms' } : {}),
    stores: {
      tiered: bentostore().useL1Layer(memoryDriver({ maxItems: OUTAGE_L1_ENTRIES, serialize: false })).useL2Layer(redisDriver({ connection })),
    },
  })
  return {
    read: (key, load) => bento.getOrSet({ key, factory: load, ttl: TTL_MS }),
    close: () => bento.disconnectAll(),
  }
}

/** The @keyv/redis store that cacheable and cache-manager share: defaults, or fail-fast when tuned. */
async function keyvRedisStore(redis: RedisEndpoint, tuned: boolean) {
  const { default: KeyvRedis } = await import('@keyv/redis')
  return tuned
    ? new KeyvRedis(
        { url: redis.url, disableOfflineQueue: true, socket: { connectTimeout: 200, reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 200) } },
        { throwOnConnectError: false, connectionTimeout: 200 },
      )
    : new KeyvRedis(redis.url)
}

async function cacheable(redis: RedisEndpoint, keyPrefix: string, tuned: boolean): Promise<OutageSubject> {
  const { Cacheable, Keyv, createKeyv } = await import('cacheable')
  const store = await keyvRedisStore(redis, tuned)
  const cache = new Cacheable({
    primary: createKeyv({ useClone: false, lruSize: OUTAGE_L1_ENTRIES }),
    secondary: new Keyv({ store, namespace: keyPrefix }),
    ttl: TTL_MS,
    ...(tuned ? { nonBlocking: true } : {}),
  })
  return {
    read: (key, load) => cache.getOrSet(key, load),
    close: () => cache.disconnect(),
  }
}

async function cacheManager(redis: RedisEndpoint, keyPrefix: string, tuned: boolean): Promise<OutageSubject> {
  const { createCache } = await import('cache-manager')
  const { createKeyv } = await import('cacheable')
  const { Keyv } = await import('keyv')
  const store = await keyvRedisStore(redis, tuned)
  const cache = createCache({
    stores: [createKeyv({ useClone: false, lruSize: OUTAGE_L1_ENTRIES }), new Keyv({ store, namespace: keyPrefix })],
    ttl: TTL_MS,
    ...(tuned ? { nonBlocking: true } : {}),
  })
  return {
    read: (key, load) => cache.wrap(key, load),
    close: () => cache.disconnect(),
  }
}

async function tiercache(redis: RedisEndpoint, keyPrefix: string, tuned: boolean): Promise<OutageSubject> {
  const { createRedisCache } = await import('@tiercache/redis')
  const cache = createRedisCache({
    redis: { host: redis.host, port: redis.port },
    namespace: keyPrefix.replace(/[:\s]+/g, '-').replace(/-$/, ''),
    ttl: TTL_MS,
    l1: { maxEntries: OUTAGE_L1_ENTRIES },
    // The breaker probes Redis again after resetTimeout: shorter means L2 is back sooner.
    ...(tuned ? { breaker: { resetTimeout: '500ms' } } : {}),
  })
  await cache.store.ready()
  return {
    read: (key, load) => cache.getOrSet(key, load),
    close: () => cache.close(),
  }
}

export const OUTAGE_SUBJECTS: Record<string, { name: string; variant: string; create: OutageSubjectFactory }> = {
  'tiercache-defaults': { name: 'tiercache', variant: 'createRedisCache defaults (50 ms L2 timeout, breaker reset 1 s)', create: (r, p) => tiercache(r, p, false) },
  'tiercache-tuned': { name: 'tiercache', variant: 'breaker resetTimeout 500 ms', create: (r, p) => tiercache(r, p, true) },
  'bentocache-defaults': { name: 'bentocache', variant: 'defaults', create: (r, p) => bentocache(r, p, false) },
  'bentocache-tuned': {
    name: 'bentocache',
    variant: 'no offline queue, 50 ms command timeout, breaker 1 s',
    create: (r, p) => bentocache(r, p, true),
  },
  'cacheable-defaults': { name: 'cacheable', variant: 'defaults', create: (r, p) => cacheable(r, p, false) },
  'cacheable-tuned': { name: 'cacheable', variant: 'nonBlocking, no offline queue', create: (r, p) => cacheable(r, p, true) },
  'cache-manager-defaults': { name: 'cache-manager', variant: 'defaults', create: (r, p) => cacheManager(r, p, false) },
  'cache-manager-tuned': { name: 'cache-manager', variant: 'nonBlocking, no offline queue', create: (r, p) => cacheManager(r, p, true) },
}
