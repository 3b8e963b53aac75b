import { afterAll } from 'vitest'
import { redisBus, type RedisBusOptions } from '@tiercache/redis'
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

async function fixture(redis: RedisBusOptions['redis'], options: Partial<RedisBusOptions> = {}) {
  const namespace = uniqueNamespace('contract')
  const a = redisBus({ redis, namespace, ...options })
  const b = redisBus({ redis, namespace, ...options })
  return {
    a,
    b,
    cleanup: async () => {
      await Promise.all([a.close(), b.close()])
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
