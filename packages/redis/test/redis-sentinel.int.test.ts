import { Redis } from 'ioredis'
import { startRedisSentinel } from '@tiercache/testkit'
import { describeRedisStore } from './store-suite.js'

describeRedisStore('a primary found through Sentinel', async () => {
  const setup = await startRedisSentinel()
  const admin = new Redis({ sentinels: [...setup.sentinels], name: setup.name })
  return {
    redis: { sentinels: [...setup.sentinels], name: setup.name },
    admin,
    stop: async () => {
      await admin.quit()
      await setup.stop()
    },
  }
})
