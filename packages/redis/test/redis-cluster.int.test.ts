import { Cluster } from 'ioredis'
import { InvalidOptionsError } from '@tiercache/core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startRedisCluster, uniqueNamespace, type RedisCluster } from '@tiercache/testkit'
import { keyBuilder, redisStore, slotOf } from '../src/index.js'
import { describeRedisStore } from './store-suite.js'

describeRedisStore('a 3-master cluster', async () => {
  const cluster = await startRedisCluster()
  const admin = new Cluster([...cluster.startupNodes])
  return {
    redis: { cluster: [...cluster.startupNodes] },
    admin,
    stop: async () => {
      await admin.quit()
      await cluster.stop()
    },
  }
})

const key = (id: string, family = 'task:status@1') => ({ family, generation: '', id })
const entry = (value: unknown) => ({ value, expiresAt: Date.now() + 30_000, graceUntil: Date.now() + 60_000 })

describe('redisStore on a cluster', () => {
  let cluster: RedisCluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(() => cluster?.stop())

  const open = async () => {
    const store = redisStore({ redis: { cluster: [...cluster.startupNodes] }, namespace: uniqueNamespace('cl') })
    onTestFinished(() => store.close())
    await store.ready()
    return store
  }

  /** Namespace keys per master, counted on each node itself. */
  const keysPerMaster = async (namespace: string) =>
    Promise.all(
      cluster.nodes.map(async (node) => {
        let cursor = '0'
        let count = 0
        do {
          const reply = (await node.command('SCAN', cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)).split('\n')
          cursor = reply[0]!
          count += reply.slice(1).filter(Boolean).length
        } while (cursor !== '0')
        return count
      }),
    )

  it('computes the same slots as CLUSTER KEYSLOT, hash tags and escaped ids included', async () => {
    const keys = keyBuilder('ns')
    const samples = ['foo', 'ns:gen', 'ns:gen:task:list@1', ...['t1', '', '{', 'a{b}c', '%7B', 'ünï'].map((id) => keys.value(key(id)))]
    for (const sample of samples) expect(slotOf(sample), sample).toBe(Number(await cluster.nodes[0]!.command('CLUSTER', 'KEYSLOT', sample)))
  })

  it('spreads one namespace over every master, and deleteByPattern and clear reach them all', async () => {
    const store = await open()
    const neighbour = await open()
    const ids = Array.from({ length: 60 }, (_, i) => `task-${i}`)
    for (const s of [store, neighbour]) {
      await s.setMany(ids.map((id) => ({ key: key(id), entry: entry(id) })))
      await s.setMany(ids.map((id) => ({ key: key(id, 'task:progress@1'), entry: entry(id) })))
      for (const id of ids.slice(0, 10)) await s.acquireLease(key(id, 'task:list@1'), 60_000)
      for (let i = 0; i < 10; i++) await s.bumpGeneration(`host:tasks@1:h-${i}`)
    }
    expect((await keysPerMaster(store.namespace)).every((count) => count > 0)).toBe(true)

    expect(await store.deleteByPattern('task:status@1:*')).toBe(60)
    expect((await store.getMany(ids.map((id) => key(id)))).every((e) => e === undefined)).toBe(true)
    expect((await store.getMany(ids.map((id) => key(id, 'task:progress@1')))).every((e) => e !== undefined)).toBe(true)

    await store.clear()
    expect(await keysPerMaster(store.namespace)).toStrictEqual([0, 0, 0])
    expect((await keysPerMaster(neighbour.namespace)).reduce((a, b) => a + b, 0)).toBe(60 + 60 + 10 + 10)
  })

  it('runs the fill script on keys of any slot', async () => {
    const store = await open()
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const grant = await store.acquireLease(key(id), 5000)
      if (!grant.granted) throw new Error('lease not granted')
      expect(await store.fillWithLease(key(id), grant.token, entry(id))).toBe(true)
    }
    expect((await store.getMany(['a', 'b', 'c', 'd', 'e', 'f'].map((id) => key(id)))).map((e) => e?.value)).toStrictEqual(['a', 'b', 'c', 'd', 'e', 'f'])
  })

  it('refuses a Cluster client with keyPrefix, and leaves a passed Cluster open', async () => {
    const prefixed = new Cluster([...cluster.startupNodes], { lazyConnect: true, keyPrefix: 'app:' })
    expect(() => redisStore({ redis: prefixed, namespace: 'n' })).toThrow(InvalidOptionsError)
    const client = new Cluster([...cluster.startupNodes])
    onTestFinished(() => void client.disconnect())
    const store = redisStore({ redis: client, namespace: uniqueNamespace() })
    await store.ready()
    await store.set(key('x'), entry('x'))
    await store.close()
    expect(await client.get('anything')).toBeNull()
  })
})

describe('redisStore on a cluster with replicas', () => {
  it('serves the slots of a killed master again from the replica promoted in its place', async () => {
    await using cluster = await startRedisCluster({ replicasPerMaster: 1 })
    const namespace = uniqueNamespace('fo')
    const store = redisStore({ redis: { cluster: [...cluster.startupNodes] }, namespace })
    onTestFinished(() => store.close())
    await store.ready()
    const keys = keyBuilder(namespace)
    await store.set(key('t1'), entry('before'))
    const slot = slotOf(keys.value(key('t1')))
    const owner = await cluster.ownerOf(slot)
    // The write must have reached the replica before the master dies.
    expect(Number(await owner.command('WAIT', 1, 5000))).toBe(1)

    await owner.kill()
    await expect.poll(async () => (await cluster.ownerOf(slot).catch(() => owner)) !== owner, { timeout: 30_000, interval: 100 }).toBe(true)
    expect(cluster.replicas).toContain(await cluster.ownerOf(slot))
    // Nothing tells the client of the promotion (the dead master never answers MOVED): its slot
    // table is refreshed on its own, and the same key is served again.
    await expect
      .poll(async () => (await store.get(key('t1')).catch(() => undefined))?.value, { timeout: 15_000, interval: 100 })
      .toBe('before')
    await store.set(key('t1'), entry('after'))
    expect((await store.get(key('t1')))?.value).toBe('after')
  })
})
