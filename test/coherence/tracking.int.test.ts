import { Redis } from 'ioredis'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { PROCESS_TEST_TIMEOUT, startCacheNodes, type AppliedEvent } from './helpers.js'

describe('tracking mode (Redis client-side caching as an invalidation source)', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  it('a program writing directly in Redis invalidates the L1 of a node', async () => {
    const { url, namespace } = sharedRedis('track')
    const [node] = await startCacheNodes(1, { TC_REDIS_URL: url, TC_NAMESPACE: namespace, TC_BUS_MODE: 'tracking' })
    const raw = new Redis(url)
    onTestFinished(() => void raw.quit())
    const tracked = (n: number) =>
      expect.poll(() => node!.process.events.filter((e) => e.name === 'bus:applied' && (e.data as AppliedEvent).source === 'redis:tracking' && (e.data as AppliedEvent).keys.includes('task-1')).length).toBeGreaterThanOrEqual(n)

    // The node's own write comes back through tracking too (it drops its copy once).
    await node!.set('task-1', 'v1')
    await tracked(1)
    expect((await node!.get('task-1')).value).toBe('v1')
    expect(await node!.process.call('peek', { key: 'task-1' })).toBe('v1')

    // Another program deletes the Redis key: no bus message, yet the node's L1 copy goes.
    expect(await raw.del(`${namespace}:default@1:{task-1}`)).toBe(1)
    await tracked(2)
    expect(await node!.process.call('peek', { key: 'task-1' })).toBeNull()
    expect((await node!.get('task-1')).value).toBeNull()
  })
})
