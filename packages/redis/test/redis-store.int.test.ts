import { Redis } from 'ioredis'
import { InvalidOptionsError } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { redisStore } from '../src/index.js'
import { describeRedisStore } from './store-suite.js'

describeRedisStore('a single node', async () => {
  const { url } = sharedRedis()
  const admin = new Redis(url)
  return { redis: url, admin, stop: async () => void (await admin.quit()) }
})

const key = (id: string) => ({ family: 'task:status@1', generation: '', id })
const entry = (value: unknown) => ({ value, expiresAt: Date.now() + 30_000, graceUntil: Date.now() + 60_000 })

async function commandCalls(server: { command(...args: string[]): Promise<string> }, command: string): Promise<number> {
  const stats = await server.command('INFO', 'commandstats')
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)
  return match ? Number(match[1]) : 0
}

describe('redisStore on a single node', () => {
  it('sends the first get of a tick at once, and the gets that follow it as one MGET', async () => {
    await using server = await startRedis()
    const store = redisStore({ redis: { host: server.host, port: server.port }, namespace: uniqueNamespace() })
    onTestFinished(() => store.close())
    await store.ready()
    await store.setMany(Array.from({ length: 64 }, (_, i) => ({ key: key(`k${i}`), entry: entry(i) })))
    const before = { mget: await commandCalls(server, 'mget'), get: await commandCalls(server, 'get') }
    const values = await Promise.all(Array.from({ length: 64 }, (_, i) => store.get(key(`k${i}`)).then((e) => e?.value)))
    expect(values).toStrictEqual(Array.from({ length: 64 }, (_, i) => i))
    expect(await commandCalls(server, 'mget')).toBe(before.mget + 1)
    expect(await commandCalls(server, 'get')).toBe(before.get + 1)
    // A lone reader is not batched.
    expect((await store.get(key('k1')))?.value).toBe(1)
    expect(await commandCalls(server, 'get')).toBe(before.get + 2)
  })

  it('sends one GET per call when coalescing is off', async () => {
    await using server = await startRedis()
    const store = redisStore({ redis: server.url, namespace: uniqueNamespace(), coalesceGets: false })
    onTestFinished(() => store.close())
    await store.ready()
    await store.set(key('a'), entry('a'))
    const before = await commandCalls(server, 'get')
    await Promise.all([store.get(key('a')), store.get(key('a'))])
    expect(await commandCalls(server, 'get')).toBe(before + 2)
  })

  it('never quits a client the caller passed in, and quits the one it created', async () => {
    const { url } = sharedRedis()
    const client = new Redis(url)
    onTestFinished(() => void client.disconnect())
    const borrowed = redisStore({ redis: client, namespace: uniqueNamespace() })
    await borrowed.ready()
    await borrowed.close()
    expect(await client.ping()).toBe('PONG')

    const owned = redisStore({ redis: url, namespace: uniqueNamespace() })
    await owned.ready()
    const created = owned.client
    await owned.close()
    expect(created.status).toBe('end')
    expect((await owned.info()).connection).toBe('closed')
  })

  it('creates clients that fail fast while Redis is unreachable, without unhandled errors', async () => {
    await using server = await startRedis()
    const store = redisStore({ redis: { host: server.host, port: server.port }, namespace: uniqueNamespace() })
    onTestFinished(() => store.close())
    await store.ready()
    expect(store.client.options).toMatchObject({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 })
    await server.kill()
    await expect(store.get(key('a'))).rejects.toThrow()
    const info = await store.info()
    expect(info.connection).not.toBe('ready')
    expect(info.keysByFamily).toStrictEqual({})
    await server.restart()
    await store.ready(10_000)
    await store.set(key('a'), entry('back'))
    expect((await store.get(key('a')))?.value).toBe('back')
  })

  describe('options', () => {
    const { url } = { url: 'redis://127.0.0.1:1' }
    const invalid = (options: unknown, path: string, message: RegExp) => {
      let caught: unknown
      try {
        redisStore(options as Parameters<typeof redisStore>[0])
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(InvalidOptionsError)
      expect((caught as InvalidOptionsError).path).toBe(path)
      expect((caught as Error).message).toMatch(message)
    }

    it('refuses a stall probe faster than 100 ms, naming the option', () => {
      invalid({ redis: 'redis://127.0.0.1:1', namespace: 'n', stallProbeInterval: 5 }, 'stallProbeInterval', /at least 100/)
      invalid({ redis: 'redis://127.0.0.1:1', namespace: 'n', stallProbeInterval: true as never }, 'stallProbeInterval', /./)
    })

    it('refuses a client with keyPrefix', () => {
      const client = new Redis({ lazyConnect: true, keyPrefix: 'app:' })
      invalid({ redis: client, namespace: 'n' }, 'redis', /keyPrefix "app:"/)
    })

    it('names the option that is wrong', () => {
      invalid({ namespace: 'n' }, 'redis', /required/)
      invalid({ redis: 'http://x', namespace: 'n' }, 'redis', /redis:\/\//)
      invalid({ redis: { host: 'h', port: 70000 }, namespace: 'n' }, 'redis.port', /standalone/)
      invalid({ redis: { sentinels: [], name: 'm' }, namespace: 'n' }, 'redis.sentinels', /sentinel/)
      invalid({ redis: { cluster: [{ host: 'h' }] }, namespace: 'n' }, 'redis.cluster[0].port', /cluster/)
      invalid({ redis: url, namespace: '' }, 'namespace', /non-empty/)
      invalid({ redis: url, namespace: 'a:b' }, 'namespace', /":"/)
      invalid({ redis: url, namespace: 'n', maxValueBytes: -1 }, 'maxValueBytes', /got -1/)
      invalid({ redis: url, namespace: 'n', compressionTreshold: 5 }, '', /compressionTreshold/)
      invalid({ redis: url, namespace: 'n', logger: console.log }, 'logger', /pino-compatible/)
    })
  })
})
