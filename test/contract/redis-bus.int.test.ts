import { afterAll } from 'vitest'
import { redisBus, redisStore, type RedisBusOptions, type RedisStoreOptions } from '@tiercache/redis'
import {
  defineInvalidationBusContract,
  startRedisCluster,
  startRedisSentinel,
  uniqueNamespace,
  type RedisCluster,
  type RedisSentinel,
} from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'

// The InvalidationBus contract against redisBus: pub/sub and tracking mode on a single node,
// sharded pub/sub on a 3-master cluster, and through Sentinel. Servers start once per file.

// Bus a publishes on the connection of a store (as createRedisCache sets them up), so that the
// suite can check that the store publishes what a prepared; the stranger has a connection of its own.
async function fixture(redis: RedisBusOptions['redis'], options: Partial<RedisBusOptions> = {}) {
  const namespace = uniqueNamespace('contract')
  const store = redisStore({ redis: redis as RedisStoreOptions['redis'], namespace })
  const stranger = redisStore({ redis: redis as RedisStoreOptions['redis'], namespace })
  const a = redisBus({ redis: store.client, namespace, ...options })
  const b = redisBus({ redis, namespace, ...options })
  return {
    a,
    b,
    sharing: { store, stranger },
    cleanup: async () => {
      await Promise.all([a.close(), b.close()])
      await store.clear()
      await Promise.all([store.close(), stranger.close()])
    },
  }
}

let cluster: Promise<RedisCluster> | undefined
let sentinel: Promise<RedisSentinel> | undefined
afterAll(async () => {
  await Promise.all([cluster?.then((c) => c.stop()), sentinel?.then((s) => s.stop())])
})

defineInvalidationBusContract('redisBus, single node', () => fixture(sharedRedis().url))

defineInvalidationBusContract('redisBus, single node, tracking mode', () => fixture(sharedRedis().url, { mode: 'tracking' }))

defineInvalidationBusContract('redisBus, 3-master cluster (sharded pub/sub)', async () => {
  const { startupNodes } = await (cluster ??= startRedisCluster())
  return fixture({ cluster: [...startupNodes] })
})

defineInvalidationBusContract('redisBus, sentinel', async () => {
  const { sentinels, name } = await (sentinel ??= startRedisSentinel())
  return fixture({ sentinels: [...sentinels], name })
})
