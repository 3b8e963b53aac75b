// Writers are never held by a paused Redis (SIGSTOP: no disconnect, every call hangs): a write
// resolves while Redis is still paused, bounded by l2Timeout; once Redis resumes, every process
// converges on the written value (the held bus message and the queued L2 delete go out).
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace } from '@tiercache/testkit'
import { createRedisCache } from '@tiercache/redis'

describe('writes while Redis is paused', () => {
  it('resolve while it is still paused; after it resumes, every process reads the written value', async () => {
    await using server = await startRedis()
    const namespace = uniqueNamespace('paused')
    const open = () => {
      const cache = createRedisCache({
        redis: server.url,
        namespace,
        ttl: '10m',
        l2Timeout: '50ms',
        bus: { heartbeatInterval: 40, heartbeatTimeout: 200 },
      })
      onTestFinished(() => cache.close())
      return cache
    }
    const writer = open()
    const reader = open()
    expect(await writer.ready()).toStrictEqual({ l2: true, bus: true })
    expect(await reader.ready()).toStrictEqual({ l2: true, bus: true })
    // The database, as the loaders see it.
    let database = 'v1'
    const load = async () => database

    await writer.set('k', 'v1')
    expect(await reader.getOrSet('k', load)).toBe('v1')

    // Paused for a few seconds: longer than six writes bounded by l2Timeout take, far shorter
    // than six writes waiting on the client's own 1 s command timeout.
    server.pause()
    let paused = true
    const resume = setTimeout(() => {
      paused = false
      server.resume()
    }, 3_000)
    try {
      database = 'v2'
      const settled: boolean[] = []
      for (let i = 0; i < 3; i++) {
        await writer.set('k', 'v2')
        settled.push(paused)
        await writer.delete(`other-${i}`)
        settled.push(paused)
      }
      // Every write resolved while the server was still stopped.
      expect(settled).toEqual([true, true, true, true, true, true])
      expect(writer.peek('k')).toBe('v2')
    } finally {
      clearTimeout(resume)
      if (paused) server.resume()
      paused = false
    }

    // Converges: the reader's copy of v1 is dropped (its bus noticed the pause and flushed on
    // recovery, or the held message arrives), and what it reads next is the written value.
    await expect.poll(() => reader.getOrSet('k', load), { timeout: 15_000 }).toBe('v2')
    await expect.poll(() => writer.getOrSet('k', load), { timeout: 15_000 }).toBe('v2')
    const late = open()
    expect(await late.getOrSet('k', load)).toBe('v2')
  })
})
