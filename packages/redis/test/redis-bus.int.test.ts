import { Cluster, Redis } from 'ioredis'
import { pack } from 'msgpackr'
import type { ReceivedInvalidation } from '@tiercache/core'
import { startRedis, startRedisCluster, uniqueNamespace, type RedisCluster, type RedisServer } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { heartbeatChannelOf, redisBus, type RedisBus, type RedisBusOptions } from '../src/redis-bus.js'
import { redisStore } from '../src/redis-store.js'
import { createRedisCache } from '../src/create-redis-cache.js'
import { slotOf } from '../src/keys.js'
import { encodeBusMessage, encodeHeartbeat } from '../src/bus-message.js'

/** A started bus that closes itself, with what it received and every health change. */
async function openBus(options: RedisBusOptions) {
  const bus = redisBus({ heartbeatInterval: 40, heartbeatTimeout: 200, ...options })
  const received: ReceivedInvalidation[] = []
  const health: boolean[] = []
  bus.onMessage((message) => received.push(message))
  bus.onHealthChange((healthy) => health.push(healthy))
  onTestFinished(() => bus.close())
  await bus.start()
  return { bus, received, health }
}

function rawClient(url: string): Redis {
  const client = new Redis(url)
  client.on('error', () => {}) // the test's own server may stop first
  onTestFinished(() => void client.quit().catch(() => client.disconnect()))
  return client
}

describe('redisBus: delivery', () => {
  it('delivers from one node to another with source, seq and ts, and ignores its own', async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const b = await openBus({ redis: url, namespace })
    expect(a.bus.healthy).toBe(true)
    expect(b.bus.healthy).toBe(true)
    expect(a.bus.instanceId).not.toBe(b.bus.instanceId)

    const before = Date.now()
    await a.bus.publish({ op: 'delete', keys: ['task:status@1:{t1}'] })
    await expect.poll(() => b.received.length).toBe(1)
    expect(b.received[0]).toEqual({ op: 'delete', keys: ['task:status@1:{t1}'], source: a.bus.instanceId, seq: 1, ts: expect.any(Number) })
    expect(b.received[0]!.ts).toBeGreaterThanOrEqual(before)
    expect(a.bus.lastSeq).toBe(1)

    await a.bus.publish({ op: 'generation', name: 'task:list', value: 7 })
    await a.bus.publish({ op: 'clear' })
    await expect.poll(() => b.received.length).toBe(3)
    expect(b.received.slice(1)).toEqual([
      { op: 'generation', name: 'task:list', value: 7, source: a.bus.instanceId, seq: 2, ts: expect.any(Number) },
      { op: 'clear', source: a.bus.instanceId, seq: 3, ts: expect.any(Number) },
    ])

    // A's own three messages came back to it and were dropped, never handed to its handler.
    await expect.poll(() => a.bus.stats().ownIgnored).toBe(3)
    expect(a.received).toEqual([])
    expect(b.bus.stats()).toMatchObject({ received: 3, malformed: 0 })
  })

  it('a node only hears its namespace', async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const other = await openBus({ redis: url, namespace: `${namespace}-other` })
    const b = await openBus({ redis: url, namespace })
    await a.bus.publish({ op: 'delete', keys: ['k'] })
    await expect.poll(() => b.received.length).toBe(1)
    // Same server, same moment: had `other` subscribed to the same channel, it would have it too.
    expect(other.received).toEqual([])
  })

  it('counts and drops malformed messages without throwing, and keeps delivering', async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const b = await openBus({ redis: url, namespace })
    const raw = rawClient(url)
    const channel = `${namespace}:bus`
    const garbage = [
      Buffer.from([0xc1, 0xff, 0x00]), // not msgpack
      'plain text',
      pack({ v: 1, source: 'x' }), // msgpack, wrong shape
      pack([2, 'x', 1, Date.now(), []]), // unknown version
      pack([1, '', 1, Date.now(), []]), // empty source
      pack([1, 'x', -1, Date.now(), []]), // negative seq
      pack([1, 'x', 1, Date.now(), [['d', 'not-an-array']]]),
      pack([1, 'x', 1, Date.now(), [['d', ['ok', 42]]]]),
      pack([1, 'x', 1, Date.now(), [['g', 'fam', -3]]]),
      pack([1, 'x', 1, Date.now(), [['z']]]),
    ]
    for (const payload of garbage) await raw.publish(channel, payload)
    await expect.poll(() => b.bus.stats().malformed).toBe(garbage.length)
    expect(b.received).toEqual([])

    await a.bus.publish({ op: 'delete', keys: ['still-works'] })
    await expect.poll(() => b.received.map((m) => m.op === 'delete' && m.keys[0])).toEqual(['still-works'])
    expect(b.bus.healthy).toBe(true)
  })

  it('a handler that throws does not stop the bus', async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const b = redisBus({ redis: url, namespace, heartbeatInterval: 40, heartbeatTimeout: 200 })
    onTestFinished(() => b.close())
    const seen: number[] = []
    b.onMessage((message) => {
      seen.push(message.seq)
      if (message.seq === 1) throw new Error('handler bug')
    })
    await b.start()
    await a.bus.publish({ op: 'delete', keys: ['one'] })
    await a.bus.publish({ op: 'delete', keys: ['two'] })
    await expect.poll(() => seen).toEqual([1, 2])
  })

  it('sends each publish as a message of its own, in order, one seq per op', async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const b = await openBus({ redis: url, namespace })
    // Published in one tick: the transport sends what it is handed (the engine batches before it).
    await Promise.all([
      a.bus.publish({ op: 'delete', keys: ['x'] }),
      a.bus.publish({ op: 'generation', name: 'g1', value: 1 }),
      a.bus.publish({ op: 'delete', keys: ['y'] }),
      a.bus.publish({ op: 'clear' }),
      a.bus.publish({ op: 'generation', name: 'g1', value: 2 }),
    ])
    expect(a.bus.stats()).toMatchObject({ published: 5, messagesSent: 5, publishErrors: 0 })
    await expect.poll(() => b.received.length).toBe(5)
    expect(b.received.map(({ ts: _ts, source: _source, ...rest }) => rest)).toEqual([
      { op: 'delete', keys: ['x'], seq: 1 },
      { op: 'generation', name: 'g1', value: 1, seq: 2 },
      { op: 'delete', keys: ['y'], seq: 3 },
      { op: 'clear', seq: 4 },
      { op: 'generation', name: 'g1', value: 2, seq: 5 },
    ])
    expect(b.bus.stats().received).toBe(5)
    expect(a.bus.lastSeq).toBe(5)
  })

  it('a publish made while its data connection is still being made goes out once it is, even when close() follows at once', async () => {
    const { url, namespace } = sharedRedis('bus')
    const b = await openBus({ redis: url, namespace })
    const a = redisBus({ redis: url, namespace })
    const sent = a.publish({ op: 'delete', keys: ['early'] })
    await a.close()
    await sent
    expect(a.stats()).toMatchObject({ published: 1, messagesSent: 1, publishErrors: 0 })
    await expect.poll(() => b.received.map((m) => m.op === 'delete' && m.keys[0])).toEqual(['early'])
  })

  it('never quits a client it was given, and quits the ones it made', async () => {
    const { url, namespace } = sharedRedis('bus')
    const client = rawClient(url)
    const bus = redisBus({ redis: client, namespace })
    await bus.start()
    const names = await client.client('LIST')
    expect(names).toContain(`tiercache-bus:${bus.instanceId}`)
    await bus.close()
    expect(client.status).toBe('ready')
    expect(await client.ping()).toBe('PONG')
    await expect.poll(async () => await client.client('LIST')).not.toContain(`tiercache-bus:${bus.instanceId}`)
    await expect(bus.publish({ op: 'clear' })).rejects.toThrow(/after close/)
    await expect(bus.publish({ op: 'clear' })).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})

describe('redisBus: health', () => {
  it('goes unhealthy when its subscriber is killed, healthy again once re-subscribed and heard', async () => {
    await using server = await startRedis()
    const namespace = uniqueNamespace('bus')
    const a = await openBus({ redis: server.url, namespace })
    const b = await openBus({ redis: server.url, namespace })
    expect(b.bus.healthy).toBe(true)

    await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await expect.poll(() => b.health.includes(false)).toBe(true)
    await expect.poll(() => b.bus.healthy, { timeout: 10_000 }).toBe(true)
    expect(b.health.slice(-2)).toEqual([false, true])
    expect(b.bus.stats().subscriptions).toBeGreaterThanOrEqual(2)

    await a.bus.publish({ op: 'delete', keys: ['after-reconnect'] })
    await expect.poll(() => b.received.some((m) => m.op === 'delete' && m.keys.includes('after-reconnect'))).toBe(true)
  })

  it('goes unhealthy on a paused (SIGSTOP) server, which shows no disconnect, and recovers after SIGCONT', async () => {
    await using server = await startRedis()
    const namespace = uniqueNamespace('bus')
    // Slower heartbeats than the file's 40/200 ms: on a loaded machine one of those can come late
    // before the pause, and the recycled subscriber would count a second subscription.
    const timing = { heartbeatInterval: 100, heartbeatTimeout: 1_000 }
    const a = await openBus({ redis: server.url, namespace, ...timing })
    const b = await openBus({ redis: server.url, namespace, ...timing })
    server.pause()
    try {
      await expect.poll(() => b.bus.healthy, { timeout: 10_000 }).toBe(false)
      await expect.poll(() => a.bus.healthy, { timeout: 10_000 }).toBe(false)
      expect(b.bus.stats().heartbeatsMissed).toBeGreaterThanOrEqual(1)
      // Nothing closed: the heartbeat deadline is what noticed.
      expect(b.bus.stats().subscriptions).toBe(1)
    } finally {
      server.resume()
    }
    await expect.poll(() => b.bus.healthy, { timeout: 10_000 }).toBe(true)
    await expect.poll(() => a.bus.healthy, { timeout: 10_000 }).toBe(true)
    expect(b.health).toEqual([true, false, true])
  })

  it('start() rejects when Redis cannot be reached in time, keeps trying, and turns healthy once Redis is there', async () => {
    await using server = await startRedis()
    await server.kill()
    const bus = redisBus({ redis: { host: '127.0.0.1', port: server.port }, namespace: uniqueNamespace('bus'), connectTimeout: 300, heartbeatInterval: 40, heartbeatTimeout: 200 })
    onTestFinished(() => bus.close())
    const health: boolean[] = []
    bus.onHealthChange((healthy) => health.push(healthy))
    const started = bus.start()
    await expect(started).rejects.toThrow(/could not subscribe/)
    await expect(started).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' })
    expect(bus.healthy).toBe(false)
    await server.restart()
    await expect.poll(() => bus.healthy, { timeout: 10_000 }).toBe(true)
    expect(health).toEqual([true])
  })
})

describe('redisBus: heartbeats, O(1) per node', () => {
  it("each node heartbeats on a channel only it subscribes to; the bus channel carries none, and no node hears another's", async () => {
    const { url, namespace } = sharedRedis('bus')
    const nodes = await Promise.all([1, 2, 3].map(() => openBus({ redis: url, namespace })))
    const channel = `${namespace}:bus`
    for (const { bus } of nodes) {
      expect(bus.heartbeatChannel).toBe(`${namespace}:{${channel}}:hb:${bus.instanceId}`)
      // The least-privilege ACL (`&<namespace>:*`) covers it.
      expect(bus.heartbeatChannel.startsWith(`${namespace}:`)).toBe(true)
    }
    const admin = rawClient(url)
    const numsub = async (...channels: string[]) => ((await admin.call('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[]).filter((_, i) => i % 2 === 1).map(Number)
    // Three subscribers on the bus channel; exactly one (its node) on each heartbeat channel.
    expect(await numsub(channel, ...nodes.map(({ bus }) => bus.heartbeatChannel))).toEqual([3, 1, 1, 1])

    // Listen in on everything the namespace carries while the nodes idle.
    const listener = rawClient(url)
    const heard = new Map<string, number>()
    listener.on('pmessage', (_pattern: string, from: string) => heard.set(from, (heard.get(from) ?? 0) + 1))
    await listener.psubscribe(`${namespace}:*`)
    const statsBefore = nodes.map(({ bus }) => bus.stats())
    await expect.poll(() => nodes.every(({ bus }) => (heard.get(bus.heartbeatChannel) ?? 0) >= 5), { timeout: 10_000 }).toBe(true)
    expect(heard.get(channel)).toBeUndefined()
    expect([...heard.keys()].sort()).toEqual(nodes.map(({ bus }) => bus.heartbeatChannel).sort())
    for (const [i, { bus, health, received }] of nodes.entries()) {
      expect(bus.healthy).toBe(true)
      expect(health).toEqual([true])
      expect(received).toEqual([])
      // Nothing arrived on the bus channel: neither its own heartbeats nor the others'.
      expect(bus.stats()).toMatchObject({ received: 0, ownIgnored: 0, malformed: 0, heartbeatsMissed: statsBefore[i]!.heartbeatsMissed })
    }
    // Invalidations still go one message per publish on the shared channel.
    await nodes[0]!.bus.publish({ op: 'delete', keys: ['k1'] })
    await expect.poll(() => nodes.slice(1).every(({ received }) => received.length === 1)).toBe(true)
    expect(heard.get(channel)).toBe(1)
  })

  it("takes a heartbeat on the bus channel (a node of an earlier version) as a heartbeat, not as an invalidation", async () => {
    const { url, namespace } = sharedRedis('bus')
    const a = await openBus({ redis: url, namespace })
    const raw = rawClient(url)
    await raw.publish(`${namespace}:bus`, encodeHeartbeat('older-node', 1, Date.now()))
    // A malformed message after it: once that is counted, the heartbeat was handled before it.
    await raw.publish(`${namespace}:bus`, Buffer.from('not msgpack'))
    await expect.poll(() => a.bus.stats().malformed).toBe(1)
    expect(a.received).toEqual([])
    expect(a.bus.stats()).toMatchObject({ received: 0, ownIgnored: 0 })
    expect(a.bus.healthy).toBe(true)
  })

  it('counts every message its subscriber connection delivers (delivered): heartbeats, invalidations and malformed ones alike', async () => {
    const { url, namespace } = sharedRedis('bus')
    // Heartbeats far apart: after start() (which waits for the first one) none arrives during the test.
    const a = await openBus({ redis: url, namespace, heartbeatInterval: 60_000, heartbeatTimeout: 120_000 })
    expect(a.bus.stats().delivered).toBeGreaterThanOrEqual(1)
    const raw = rawClient(url)
    // start() returns on the first heartbeat; the one of the subscription may still be on its way.
    // A malformed message published now arrives after both: count from there.
    await raw.publish(`${namespace}:bus`, Buffer.from('not msgpack'))
    await expect.poll(() => a.bus.stats().malformed).toBe(1)
    const before = a.bus.stats()
    await raw.publish(a.bus.heartbeatChannel, encodeHeartbeat(a.bus.instanceId, 1, Date.now()))
    await raw.publish(a.bus.heartbeatChannel, encodeHeartbeat(a.bus.instanceId, 1, Date.now()))
    for (let seq = 1; seq <= 3; seq++) await raw.publish(`${namespace}:bus`, encodeBusMessage('other-node', seq, Date.now(), [{ op: 'delete', keys: [`k${seq}`] }]))
    // Another node's heartbeat channel is no subscription of this one: never delivered here.
    await raw.publish(heartbeatChannelOf(namespace, 'other-node'), encodeHeartbeat('other-node', 1, Date.now()))
    await raw.publish(`${namespace}:bus`, Buffer.from('not msgpack'))
    // One connection delivers in order: once the last one is counted, every earlier one was.
    await expect.poll(() => a.bus.stats().malformed).toBe(2)
    expect(a.received.map((m) => m.op === 'delete' && m.keys[0])).toEqual(['k1', 'k2', 'k3'])
    expect(a.bus.stats().delivered - before.delivered).toBe(6)
  })

  it('the heartbeat channel shares the bus channel slot for any namespace, or falls back to the bus channel', () => {
    for (const namespace of ['jobs', 'a:b', 'tenant-{7}', 'x{', 'y}', '{}', 'ns{a}b{c}']) {
      const channel = heartbeatChannelOf(namespace, 'node-1')
      expect(slotOf(channel), namespace).toBe(slotOf(`${namespace}:bus`))
      expect(channel.startsWith(`${namespace}:`), namespace).toBe(true)
    }
    expect(heartbeatChannelOf('jobs', 'node-1')).toBe('jobs:{jobs:bus}:hb:node-1')
    // A lone '{' in the namespace would make the two hash tags differ: the bus channel it is.
    expect(heartbeatChannelOf('x{', 'node-1')).toBe('x{:bus')
  })
})

describe('redisBus: cluster (sharded pub/sub)', () => {
  it('delivers over SPUBLISH/SSUBSCRIBE on the master that owns the channel slot, and recovers from a killed subscriber', async () => {
    await using cluster = await startRedisCluster()
    const client = new Cluster([...cluster.startupNodes])
    client.on('error', () => {})
    onTestFinished(() => void client.quit().catch(() => client.disconnect()))
    const namespace = uniqueNamespace('bus')
    const a = await openBus({ redis: client, namespace })
    const b = await openBus({ redis: { cluster: [...cluster.startupNodes] }, namespace })

    const channel = `${namespace}:bus`
    const slot = slotOf(channel)
    expect(Number(await client.call('CLUSTER', 'KEYSLOT', channel))).toBe(slot)
    const counts = await Promise.all(cluster.nodes.map((node) => node.command('PUBSUB', 'SHARDNUMSUB', channel)))
    // The two subscribers sit on exactly one master (the slot owner), as shard channel subscribers.
    expect(counts.map((reply) => Number(reply.split('\n')[1]))).toContain(2)
    expect(counts.map((reply) => Number(reply.split('\n')[1])).reduce((x, y) => x + y, 0)).toBe(2)

    // Each node's heartbeat channel: one subscriber (its node), on the same master.
    for (const { bus } of [a, b]) {
      expect(slotOf(bus.heartbeatChannel)).toBe(slot)
      const own = await Promise.all(cluster.nodes.map((node) => node.command('PUBSUB', 'SHARDNUMSUB', bus.heartbeatChannel)))
      expect(own.map((reply) => Number(reply.split('\n')[1]))).toEqual(counts.map((reply) => Number(reply.split('\n')[1]) / 2))
    }

    await a.bus.publish({ op: 'delete', keys: ['k1'] })
    await expect.poll(() => b.received.map((m) => m.op)).toEqual(['delete'])
    expect(a.received).toEqual([])

    await Promise.all(cluster.nodes.map((node) => node.command('CLIENT', 'KILL', 'TYPE', 'pubsub')))
    await expect.poll(() => b.health.includes(false)).toBe(true)
    await expect.poll(() => b.bus.healthy, { timeout: 10_000 }).toBe(true)
    await a.bus.publish({ op: 'generation', name: 'fam', value: 3 })
    await expect.poll(() => b.received.map((m) => m.op)).toEqual(['delete', 'generation'])
  })
})

describe('redisBus: cluster failover', () => {
  it('resubscribes to the replica promoted in place of the master that owned the channel slot', async () => {
    await using cluster = await startRedisCluster({ replicasPerMaster: 1 })
    const namespace = uniqueNamespace('bus')
    const a = await openBus({ redis: { cluster: [...cluster.startupNodes] }, namespace })
    const b = await openBus({ redis: { cluster: [...cluster.startupNodes] }, namespace })
    const channel = `${namespace}:bus`
    const owner = await cluster.ownerOf(slotOf(channel))
    await a.bus.publish({ op: 'delete', keys: ['k1'] })
    await expect.poll(() => b.received.map((m) => m.op)).toEqual(['delete'])

    await owner.kill()
    await expect.poll(() => b.health.includes(false), { timeout: 10_000 }).toBe(true)
    await expect.poll(async () => (await cluster.ownerOf(slotOf(channel)).catch(() => owner)) !== owner, { timeout: 30_000, interval: 100 }).toBe(true)
    const promoted = await cluster.ownerOf(slotOf(channel))
    expect(cluster.replicas).toContain(promoted)
    await expect.poll(() => a.bus.healthy && b.bus.healthy, { timeout: 20_000 }).toBe(true)
    // Both subscribers moved to the new owner of the slot.
    await expect.poll(async () => Number((await promoted.command('PUBSUB', 'SHARDNUMSUB', channel)).split('\n')[1]), { timeout: 10_000 }).toBe(2)
    await a.bus.publish({ op: 'generation', name: 'fam', value: 3 })
    await expect.poll(() => b.received.map((m) => m.op)).toEqual(['delete', 'generation'])
  })
})

describe('redisBus: tracking mode', () => {
  it('turns a direct write by another program into an invalidation of the mapped L1 key', async () => {
    await using server = await startRedis()
    const namespace = uniqueNamespace('bus')
    const b = await openBus({ redis: server.url, namespace, mode: 'tracking' })
    const a = await openBus({ redis: server.url, namespace })
    expect(b.bus.healthy).toBe(true)
    const raw = rawClient(server.url)

    await raw.set(`${namespace}:lease:task:status@1:{t1}`, 'token') // leases are noise: ignored
    await raw.set(`${namespace}:task:status@1:{t1}`, 'written by another program')
    await expect.poll(() => b.received.filter((m) => m.source === 'redis:tracking')).toEqual([
      { op: 'delete', keys: ['\u0001task:status@1\u0001\u0001t1'], source: 'redis:tracking', seq: 1, ts: expect.any(Number) },
    ])
    expect(b.bus.stats().tracked).toBe(1)
    await raw.set(`other-namespace:task:status@1:{t1}`, 'x')

    // Bus messages still flow next to tracking.
    await a.bus.publish({ op: 'generation', name: 'task:list', value: 2 })
    await expect.poll(() => b.received.some((m) => m.op === 'generation')).toBe(true)
    expect(b.received.filter((m) => m.source === 'redis:tracking')).toHaveLength(1)

    // After its connections are killed, tracking is re-enabled against the new subscriber.
    await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await expect.poll(() => b.health.includes(false)).toBe(true)
    await expect.poll(() => b.bus.healthy, { timeout: 10_000 }).toBe(true)
    await raw.del(`${namespace}:task:status@1:{t1}`)
    await expect.poll(() => b.received.filter((m) => m.source === 'redis:tracking').length).toBe(2)
  })

  it("hears a store's expire as the key's change, and the 'expire' op on the channel next to it", async () => {
    const { url, namespace } = sharedRedis('bus')
    const store = redisStore({ redis: url, namespace })
    onTestFinished(() => store.close())
    const b = await openBus({ redis: url, namespace, mode: 'tracking' })
    const a = await openBus({ redis: url, namespace })
    const key = { family: 'task:status@1', generation: '', id: 't1' }
    const l1Key = '\u0001task:status@1\u0001\u0001t1'
    await store.set(key, { value: 'v', expiresAt: Date.now() + 30_000, graceUntil: Date.now() + 60_000 })
    await expect.poll(() => b.received.length).toBe(1)
    // As the engine does it: the store call, then the publish.
    await store.expire([key], Date.now())
    await a.bus.publish({ op: 'expire', keys: [l1Key] })
    await expect.poll(() => b.received.slice(1).map((m) => [m.source, m.op])).toEqual([
      ['redis:tracking', 'delete'],
      [a.bus.instanceId, 'expire'],
    ])
    expect(b.received.slice(1).map((m) => (m.op === 'delete' || m.op === 'expire' ? m.keys : []))).toEqual([[l1Key], [l1Key]])
  })

  it('maps keys with a custom function', async () => {
    const { url, namespace } = sharedRedis('bus')
    const b = await openBus({ redis: url, namespace, mode: 'tracking', mapTrackedKey: (key) => (key.endsWith('{t9}') ? 'L1:t9' : undefined) })
    const raw = rawClient(url)
    await raw.set(`${namespace}:x:{t8}`, '1')
    await raw.set(`${namespace}:x:{t9}`, '1')
    await expect.poll(() => b.received.map((m) => m.op === 'delete' && m.keys)).toEqual([['L1:t9']])
  })
})

/** Ids whose Redis keys (`keyOf`) lie one on each master of the cluster (by port). */
async function idsOnEveryMaster(cluster: RedisCluster, keyOf: (id: string) => string): Promise<Map<number, string>> {
  const byMaster = new Map<number, string>()
  for (let i = 1; byMaster.size < cluster.masters.length; i++) {
    const owner = await cluster.ownerOf(slotOf(keyOf(`t${i}`)))
    if (!byMaster.has(owner.port)) byMaster.set(owner.port, `t${i}`)
  }
  return byMaster
}

const l1KeyOf = (id: string) => `\u0001task:status@1\u0001\u0001${id}`
const trackedKeys = (received: ReceivedInvalidation[]) => received.flatMap((m) => (m.source === 'redis:tracking' && m.op === 'delete' ? m.keys : [])).sort()

/** The tracking connections of a bus on a server: each one's CLIENT ID and where it redirects. */
async function trackers(server: RedisServer, instanceId: string): Promise<{ id: string; redir: string }[]> {
  const lines = (await server.command('CLIENT', 'LIST')).split('\n').filter((line) => line.includes(`name=tiercache-bus-tracking:${instanceId} `))
  return lines.map((line) => ({ id: /\bid=(\d+)/.exec(line)![1]!, redir: /\bredir=(-?\d+)/.exec(line)![1]! }))
}

describe('redisBus: tracking mode on a cluster', () => {
  it('tracks every master through a connection of its own, and a direct write on any master drops the L1 copies of every node', async () => {
    await using cluster = await startRedisCluster()
    const namespace = uniqueNamespace('trk')
    const redis = { cluster: [...cluster.startupNodes] }
    const b = await openBus({ redis, namespace, mode: 'tracking' })
    expect(b.bus.healthy).toBe(true)
    // One tracking connection per master, redirecting to itself.
    for (const master of cluster.masters) {
      const found = await trackers(master, b.bus.instanceId)
      expect(found).toHaveLength(1)
      expect(found[0]!.redir).toBe(found[0]!.id)
    }

    const ids = await idsOnEveryMaster(cluster, (id) => `${namespace}:task:status@1:{${id}}`)
    const raw = new Cluster([...cluster.startupNodes])
    raw.on('error', () => {})
    onTestFinished(() => void raw.quit().catch(() => raw.disconnect()))
    for (const id of ids.values()) await raw.set(`${namespace}:task:status@1:{${id}}`, 'written by another program')
    await raw.set(`other-namespace:task:status@1:{t1}`, 'x')
    await expect.poll(() => trackedKeys(b.received)).toEqual([...ids.values()].map(l1KeyOf).sort())

    // End to end: two caches hold a copy of a key on each master; direct writes drop them all.
    const caches = [1, 2].map(() => createRedisCache({ redis, namespace: `${namespace}-c`, ttl: '1h', bus: { mode: 'tracking', heartbeatInterval: 40, heartbeatTimeout: 200 } }))
    onTestFinished(async () => {
      await Promise.all(caches.map((cache) => cache.close()))
    })
    // The default family's value keys.
    const cacheKey = (id: string) => `${namespace}-c:default@1:{${id}}`
    const cacheIds = await idsOnEveryMaster(cluster, cacheKey)
    await Promise.all(caches.map((cache) => cache.bus!.start()))
    for (const cache of caches) {
      for (const id of cacheIds.values()) expect(await cache.getOrSet(id, () => `loaded ${id}`)).toBe(`loaded ${id}`)
    }
    // Tracking has no source: each cache also hears of the L2 writes of those loads and drops its
    // copy once. Read back from L2 until every copy is in L1 on both.
    const held = async () => {
      for (const cache of caches) for (const id of cacheIds.values()) if (cache.peek(id) === undefined) await cache.get(id)
      return caches.every((cache) => [...cacheIds.values()].every((id) => cache.peek(id) === `loaded ${id}`))
    }
    await expect.poll(held).toBe(true)
    for (const id of cacheIds.values()) expect(await raw.del(cacheKey(id))).toBe(1)
    await expect.poll(() => caches.map((cache) => [...cacheIds.values()].map((id) => cache.peek(id)))).toEqual([
      [undefined, undefined, undefined],
      [undefined, undefined, undefined],
    ])
  })

  it('follows a failover: the replica promoted in place of a killed master gets a tracker, and its writes are reported', async () => {
    await using cluster = await startRedisCluster({ replicasPerMaster: 1 })
    const namespace = uniqueNamespace('trkfo')
    const b = await openBus({ redis: { cluster: [...cluster.startupNodes] }, namespace, mode: 'tracking' })
    const ids = await idsOnEveryMaster(cluster, (id) => `${namespace}:task:status@1:{${id}}`)
    const [victimPort, victimId] = [...ids.entries()][0]!
    const victim = cluster.masters.find((master) => master.port === victimPort)!
    const slot = slotOf(`${namespace}:task:status@1:{${victimId}}`)

    await victim.kill()
    await expect.poll(() => b.health.includes(false), { timeout: 10_000 }).toBe(true)
    await expect.poll(async () => (await cluster.ownerOf(slot).catch(() => victim)) !== victim, { timeout: 30_000, interval: 100 }).toBe(true)
    const promoted = await cluster.ownerOf(slot)
    expect(cluster.replicas).toContain(promoted)
    await expect.poll(() => b.bus.healthy, { timeout: 20_000 }).toBe(true)
    await expect.poll(async () => (await trackers(promoted, b.bus.instanceId)).length, { timeout: 10_000 }).toBe(1)

    // A write on the promoted master, and one on each other master, all reported.
    const direct = rawClient(promoted.url)
    await direct.set(`${namespace}:task:status@1:{${victimId}}`, 'after the failover')
    for (const [port, id] of ids) {
      if (port !== victimPort) await rawClient(`redis://127.0.0.1:${port}`).set(`${namespace}:task:status@1:{${id}}`, 'x')
    }
    await expect.poll(() => trackedKeys(b.received), { timeout: 10_000 }).toEqual([...ids.values()].map(l1KeyOf).sort())
  })
})

describe('redisBus: options', () => {
  it.each<[string, Partial<RedisBusOptions>, RegExp]>([
    ['namespace', { namespace: '' }, /^namespace: /],
    ['heartbeatInterval', { heartbeatInterval: 'soon' }, /^heartbeatInterval: /],
    ['heartbeatTimeout', { heartbeatInterval: '1s', heartbeatTimeout: '500ms' }, /^heartbeatTimeout: must be longer/],
    ['mode', { mode: 'psubscribe' as never }, /^mode: /],
    ['redis', { redis: 42 as never }, /^redis: /],
  ])('rejects a bad %s', (_name, override, message) => {
    expect(() => redisBus({ redis: 'redis://127.0.0.1:1', namespace: 'ns', ...override })).toThrow(message)
  })

  it('refuses a client with keyPrefix', () => {
    const prefixed = new Redis({ lazyConnect: true, keyPrefix: 'p:' })
    expect(() => redisBus({ redis: prefixed, namespace: 'ns' })).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTIONS', path: 'redis' }))
  })
})

export type { RedisBus }
