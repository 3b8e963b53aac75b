import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedisSentinel, uniqueNamespace } from '@tiercache/testkit'
import { redisStore } from '../src/index.js'
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

describe('redisStore through Sentinel', () => {
  it('follows a failover to the promoted replica', async () => {
    const setup = await startRedisSentinel()
    onTestFinished(() => setup.stop())
    const store = redisStore({ redis: { sentinels: [...setup.sentinels], name: setup.name }, namespace: uniqueNamespace('failover') })
    onTestFinished(() => store.close())
    await store.ready()
    const key = { family: 'task:status@1', generation: '', id: 't1' }
    const entry = (value: unknown) => ({ value, expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 60_000 })
    await store.set(key, entry('before'))
    // The write must have reached the replica before the primary dies.
    expect(Number(await setup.primary.command('WAIT', 1, 5000))).toBe(1)

    await setup.primary.kill()
    const deadline = Date.now() + 45_000
    for (;;) {
      try {
        await store.set({ ...key, id: 't2' }, entry('after'))
        break
      } catch (error) {
        if (Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    expect((await setup.replica.command('ROLE')).split('\n')[0]).toBe('master')
    expect((await store.get(key))?.value).toBe('before')
    expect((await store.get({ ...key, id: 't2' }))?.value).toBe('after')
  })
})
