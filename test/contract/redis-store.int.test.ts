import { afterAll } from 'vitest'
import { redisStore, type RedisStore, type RedisStoreOptions } from '@tiercache/redis'
import {
  defineRemoteStoreContract,
  startRedisCluster,
  startRedisSentinel,
  uniqueNamespace,
  type RedisCluster,
  type RedisSentinel,
} from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'

// The RemoteStore contract against redisStore on the three deployment shapes. Servers start once
// per file (a cluster or a sentinel takes seconds); every test gets fresh namespaces.

async function fixture(redis: RedisStoreOptions['redis']) {
  const open = async () => {
    const store = redisStore({ redis, namespace: uniqueNamespace('contract') })
    await store.ready()
    return store
  }
  const stores: RedisStore[] = [await open(), await open()]
  return {
    store: stores[0]!,
    sibling: stores[1]!,
    cleanup: async () => {
      for (const store of stores) {
        await store.clear()
        await store.close()
      }
    },
  }
}

let cluster: Promise<RedisCluster> | undefined
let sentinel: Promise<RedisSentinel> | undefined
afterAll(async () => {
  await Promise.all([cluster?.then((c) => c.stop()), sentinel?.then((s) => s.stop())])
})

defineRemoteStoreContract('redisStore, single node', () => fixture(sharedRedis().url))

defineRemoteStoreContract('redisStore, 3-master cluster', async () => {
  const { startupNodes } = await (cluster ??= startRedisCluster())
  return fixture({ cluster: [...startupNodes] })
})

defineRemoteStoreContract('redisStore, sentinel', async () => {
  const { sentinels, name } = await (sentinel ??= startRedisSentinel())
  return fixture({ sentinels: [...sentinels], name })
})
