// Input an attacker or a careless caller controls, end to end through `createRedisCache` on a
// real Redis: keys with glob characters, CR/LF, NUL and prototype names, values built to pollute
// prototypes, and messages forged on the bus channel. None of it may reach outside its namespace,
// mix up two keys, change a prototype, or stop a node from serving.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { createRedisCache, type RedisCache } from '@tiercache/redis'
import { startRedis, uniqueNamespace, type RedisServer } from '@tiercache/testkit'

const HOSTILE_KEYS = [
  '*',
  '?',
  '[a-z]',
  'a*',
  'a?c',
  '\\*',
  'line\r\nFLUSHALL\r\n',
  'nul\u0000byte',
  '__proto__',
  'constructor',
  'prototype',
  '{hash}tag',
  '%2A',
  ':',
  '',
  ' ',
  'ünï©ødé',
  'k'.repeat(10 * 1024),
]

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(() => server?.stop())

async function openCache(namespace: string): Promise<RedisCache> {
  const cache = createRedisCache({ redis: server.url, namespace })
  onTestFinished(() => cache.close())
  await cache.ready({ timeout: '5s' })
  return cache
}

/** Every key of the server, read with SCAN (the test's own Redis holds nothing else). */
async function allKeys(): Promise<string[]> {
  const client = new Redis(server.url)
  try {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, page] = await client.scan(cursor, 'COUNT', 1000)
      cursor = next
      keys.push(...page)
    } while (cursor !== '0')
    return keys
  } finally {
    await client.quit()
  }
}

const prototypesClean = () => {
  const probe = {} as Record<string, unknown>
  return probe.polluted === undefined && (Object.prototype as Record<string, unknown>).polluted === undefined && ([] as unknown as Record<string, unknown>).polluted === undefined
}

describe('hostile keys', () => {
  it('stores each literally under its namespace, apart from every other, and deletes only itself', async () => {
    const namespace = uniqueNamespace('hostile')
    const writer = await openCache(namespace)
    const reader = await openCache(namespace)
    const other = uniqueNamespace('bystander')
    const bystander = await openCache(other)
    await bystander.set('ab', 'bystander')
    await writer.set('ab', 'neighbour')
    for (const [i, key] of HOSTILE_KEYS.entries()) await writer.set(key, { i })

    // Read from the other node: through L2, so every key made the round trip through Redis.
    for (const [i, key] of HOSTILE_KEYS.entries()) expect(await reader.get(key), JSON.stringify(key.slice(0, 20))).toEqual({ i })
    const keys = await allKeys()
    expect(keys.filter((k) => !k.startsWith(`${namespace}:`) && !k.startsWith(`${other}:`))).toEqual([])

    // A glob in a key is a literal: deleting "a*" leaves "ab" and "a?c"; "*" leaves everything else.
    await writer.delete('a*')
    await writer.delete('*')
    await writer.delete('[a-z]')
    expect(await reader.get('a*')).toBeUndefined()
    expect(await reader.get('*')).toBeUndefined()
    expect(await reader.get('ab')).toBe('neighbour')
    expect(await reader.get('a?c')).toEqual({ i: HOSTILE_KEYS.indexOf('a?c') })
    expect(await reader.get('__proto__')).toEqual({ i: HOSTILE_KEYS.indexOf('__proto__') })
    expect(await bystander.get('ab')).toBe('bystander')
    expect(prototypesClean()).toBe(true)
  })

  it('keeps a pattern deletion and clear() inside the namespace, whatever the pattern', async () => {
    const namespace = uniqueNamespace('hostile')
    const cache = await openCache(namespace)
    const bystander = await openCache(uniqueNamespace('bystander'))
    await bystander.set('x', 1)
    await cache.set('x', 1)
    for (const pattern of ['*', '*:*', '\\*', '[', '**']) await cache.deleteByPattern(pattern)
    await cache.clear()
    expect(await bystander.get('x')).toBe(1)
    expect((await allKeys()).filter((k) => k.startsWith(`${namespace}:`) && !k.includes(':gen') && !k.includes(':tag'))).toEqual([])
  })
})

describe('prototype-polluting values', () => {
  it('round-trips them as plain data through L2 and leaves every prototype alone', async () => {
    const namespace = uniqueNamespace('proto')
    const writer = await openCache(namespace)
    const reader = await openCache(namespace)
    const hostile = JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"nested":[{"__proto__":{"polluted":"yes"}}]}') as Record<string, unknown>
    await writer.set('v', hostile)
    const read = (await reader.get('v')) as Record<string, unknown>
    expect(prototypesClean()).toBe(true)
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype)
    expect((read as { polluted?: unknown }).polluted).toBeUndefined()
    // The decoder renames an own `__proto__` key to `__proto_` (documented in the redis README):
    // the data survives as a plain property, never as a prototype.
    expect(Object.keys(read).sort()).toEqual(['__proto_', 'constructor', 'nested'])
    expect(read.__proto_).toEqual({ polluted: 'yes' })
    expect(read.constructor).toEqual({ prototype: { polluted: 'yes' } })
    expect(Object.getPrototypeOf((read.nested as object[])[0])).toBe(Object.prototype)
  })
})

describe('forged bus messages', () => {
  it('are counted and dropped or applied as plain invalidations, and the node keeps serving', async () => {
    const namespace = uniqueNamespace('forged')
    const cache = await openCache(namespace)
    await cache.set('kept', 'value')
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled))
    const raw = new Redis(server.url)
    onTestFinished(() => void raw.quit())
    const channel = `${namespace}:bus`
    // msgpack by hand: fixarray [1, "f", 1, 0, [["d", ["__proto__", "constructor"]]]]
    const forgedDelete = Buffer.from([0x95, 0x01, 0xa1, 0x66, 0x01, 0x00, 0x91, 0x92, 0xa1, 0x64, 0x92, 0xa9, ...Buffer.from('__proto__'), 0xab, ...Buffer.from('constructor')])
    // fixmap {"__proto__": {"polluted": true}}
    const forgedMap = Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa8, ...Buffer.from('polluted'), 0xc3])
    const payloads: (string | Buffer)[] = [
      forgedMap,
      Buffer.alloc(1024 * 1024, 0xdc), // array16 headers claiming more than there is
      Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), // array32 of 4 billion elements
      '{"op":"clear"}',
      '',
      // Well-formed, from a source that does not exist: applied as the L1 deletes it names.
      forgedDelete,
    ]
    for (const payload of payloads) await raw.publish(channel, payload)
    // Delivered in order: once the last is applied, every one before it was handled.
    await expect.poll(() => cache.stats().busMessagesApplied).toBe(1)
    expect(cache.stats().busHealthy).toBe(true)
    await cache.set('after', 'still serving')
    expect(await cache.get('kept')).toBe('value')
    expect(await cache.get('after')).toBe('still serving')
    expect(prototypesClean()).toBe(true)
    expect(unhandled).toEqual([])
  })
})
