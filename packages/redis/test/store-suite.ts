import type { Cluster, Redis } from 'ioredis'
import type { StoreKey } from '@tiercache/core'
import { ValueTooLargeError } from '@tiercache/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { uniqueNamespace } from '@tiercache/testkit'
import { redisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'

export interface SuiteTarget {
  /** Connection for stores the suite creates (created clients are quit by close()). */
  readonly redis: RedisStoreOptions['redis']
  /** A client of the suite's own for raw checks. */
  readonly admin: Redis | Cluster
}

const key = (id: string, family = 'task:status@1', generation = ''): StoreKey => ({ family, generation, id })
const entry = (value: unknown, ttlMs = 60_000) => {
  const now = Date.now()
  return { value, expiresAt: now + ttlMs / 2, graceUntil: now + ttlMs }
}

/** Runs until `condition` holds (async side effects such as a background UNLINK). */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Behaviour every deployment shape (single node, cluster, sentinel) must show. */
export function describeRedisStore(label: string, connect: () => Promise<SuiteTarget & { stop(): Promise<void> }>): void {
  describe(`redisStore on ${label}`, () => {
    let target: SuiteTarget & { stop(): Promise<void> }
    const stores: RedisStore[] = []
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }

    const makeStore = async (extra: Partial<RedisStoreOptions> = {}) => {
      const store = redisStore({ redis: target.redis, namespace: uniqueNamespace('store'), logger, ...extra })
      stores.push(store)
      await store.ready()
      return store
    }

    beforeAll(async () => {
      target = await connect()
    })
    afterAll(async () => {
      await Promise.all(stores.map((store) => store.close()))
      await target?.stop()
    })

    it('reads back what it wrote, envelope included, and misses what it did not', async () => {
      const store = await makeStore()
      const written = entry({ status: 'running', at: new Date(1714558022495), hosts: new Map([['h1', 1]]) })
      expect(await store.get(key('missing'))).toBeUndefined()
      await store.set(key('t1'), written)
      expect(await store.get(key('t1'))).toStrictEqual(written)
    })

    it('lets Redis expire entries at graceUntil', async () => {
      const store = await makeStore()
      await store.set(key('t1'), entry('v', 30_000))
      const pttl = await target.admin.pttl(`${store.namespace}:task:status@1:{t1}`)
      expect(pttl).toBeGreaterThan(0)
      expect(pttl).toBeLessThanOrEqual(30_000)
    })

    it('does not write an entry whose grace already ended, and removes the older one', async () => {
      const store = await makeStore()
      await store.set(key('t1'), entry('old'))
      const now = Date.now()
      await store.set(key('t1'), { value: 'expired', expiresAt: now - 2000, graceUntil: now - 1000 })
      expect(await store.get(key('t1'))).toBeUndefined()
      await store.setMany([{ key: key('t2'), entry: { value: 'expired', expiresAt: now - 2000, graceUntil: now - 1000 } }])
      expect(await store.get(key('t2'))).toBeUndefined()
    })

    it('gets, sets and deletes many keys spread over slots, in order', async () => {
      const store = await makeStore()
      const ids = Array.from({ length: 50 }, (_, i) => `task-${i}`)
      await store.setMany(ids.filter((_, i) => i % 3 !== 0).map((id) => ({ key: key(id), entry: entry({ id }) })))
      const read = await store.getMany([...ids.map((id) => key(id)), key('absent')])
      expect(read.map((e) => (e?.value as { id?: string } | undefined)?.id)).toStrictEqual([
        ...ids.map((id, i) => (i % 3 !== 0 ? id : undefined)),
        undefined,
      ])
      await store.delete(ids.slice(0, 25).map((id) => key(id)))
      const after = await store.getMany(ids.map((id) => key(id)))
      expect(after.filter((e) => e !== undefined).length).toBe(ids.slice(25).filter((_, i) => (i + 25) % 3 !== 0).length)
      expect(await store.getMany([])).toStrictEqual([])
      await store.delete([])
      await store.setMany([])
    })

    it('answers concurrent single gets each with its own entry', async () => {
      const store = await makeStore()
      const ids = Array.from({ length: 64 }, (_, i) => `c-${i}`)
      await store.setMany(ids.filter((_, i) => i % 2 === 0).map((id) => ({ key: key(id), entry: entry(id) })))
      const results = await Promise.all([...ids, ids[0]!, ids[1]!].map((id) => store.get(key(id))))
      expect(results.map((e) => e?.value)).toStrictEqual([...ids, ids[0], ids[1]].map((id) => (Number(id!.slice(2)) % 2 === 0 ? id : undefined)))
    })

    it('keeps ids with braces, percent signs and the empty id apart', async () => {
      const store = await makeStore()
      const ids = ['', '{', '}', '{}', 'a{b}c', '%', '%7B', '}{', 'ünï 🚀']
      await store.setMany(ids.map((id) => ({ key: key(id), entry: entry(`v:${id}`) })))
      const read = await store.getMany(ids.map((id) => key(id)))
      expect(read.map((e) => e?.value)).toStrictEqual(ids.map((id) => `v:${id}`))
      const token = await store.acquireLease(key('a{b}c'), 5000)
      expect(token.granted).toBe(true)
      if (token.granted) expect(await store.fillWithLease(key('a{b}c'), token.token, entry('filled'))).toBe(true)
    })

    it('separates families, versions and generations', async () => {
      const store = await makeStore()
      await store.set(key('t1', 'task:status@1'), entry('v1'))
      await store.set(key('t1', 'task:status@2'), entry('v2'))
      await store.set(key('t1', 'task:list@1', '3'), entry('g3'))
      expect((await store.get(key('t1', 'task:status@2')))?.value).toBe('v2')
      expect((await store.get(key('t1', 'task:list@1', '3')))?.value).toBe('g3')
      expect(await store.get(key('t1', 'task:list@1', '4'))).toBeUndefined()
    })

    describe('leases', () => {
      it('grants a lease to one caller at a time', async () => {
        const store = await makeStore()
        const first = await store.acquireLease(key('t1'), 5000)
        const second = await store.acquireLease(key('t1'), 5000)
        expect(first.granted).toBe(true)
        expect(second.granted).toBe(false)
        // Leases are per family: another view of the same id has its own.
        expect((await store.acquireLease(key('t1', 'task:progress@1'), 5000)).granted).toBe(true)
      })

      it('lands a fill with the current token once, and releases the lease', async () => {
        const store = await makeStore()
        const grant = await store.acquireLease(key('t1'), 5000)
        if (!grant.granted) throw new Error('lease not granted')
        const filled = entry('loaded')
        expect(await store.fillWithLease(key('t1'), grant.token, filled)).toBe(true)
        expect(await store.get(key('t1'))).toStrictEqual(filled)
        expect(await store.fillWithLease(key('t1'), grant.token, entry('again'))).toBe(false)
        expect((await store.acquireLease(key('t1'), 5000)).granted).toBe(true)
      })

      it('refuses a fill after a set or a delete voided the lease', async () => {
        const store = await makeStore()
        const grant = await store.acquireLease(key('t1'), 5000)
        if (!grant.granted) throw new Error('lease not granted')
        await store.set(key('t1'), entry('newer'))
        expect(await store.fillWithLease(key('t1'), grant.token, entry('stale'))).toBe(false)
        expect((await store.get(key('t1')))?.value).toBe('newer')

        const again = await store.acquireLease(key('t2'), 5000)
        if (!again.granted) throw new Error('lease not granted')
        await store.delete([key('t2')])
        expect(await store.fillWithLease(key('t2'), again.token, entry('stale'))).toBe(false)
        expect(await store.get(key('t2'))).toBeUndefined()
      })

      it('refuses a fill with a foreign token or after the lease expired', async () => {
        const store = await makeStore()
        const grant = await store.acquireLease(key('t1'), 5000)
        expect(grant.granted).toBe(true)
        expect(await store.fillWithLease(key('t1'), 'not-the-token', entry('x'))).toBe(false)
        const short = await store.acquireLease(key('t2'), 1)
        if (!short.granted) throw new Error('lease not granted')
        await eventually(async () => (await target.admin.exists(`${store.namespace}:lease:task:status@1:{t2}`)) === 0, 'the lease to expire')
        expect(await store.fillWithLease(key('t2'), short.token, entry('late'))).toBe(false)
        expect(await store.get(key('t2'))).toBeUndefined()
      })
    })

    it('reads generations as 0 until bumped, and bumps them by one', async () => {
      const store = await makeStore()
      const names = ['', 'task:list@1', 'host:tasks@1:h-1', 'host:tasks@1:h-2']
      expect(await store.getGenerations(names)).toStrictEqual([0, 0, 0, 0])
      expect(await store.bumpGeneration('task:list@1')).toBe(1)
      expect(await store.bumpGeneration('task:list@1')).toBe(2)
      expect(await store.bumpGeneration('')).toBe(1)
      expect(await store.bumpGeneration('host:tasks@1:h-2')).toBe(1)
      expect(await store.getGenerations(names)).toStrictEqual([1, 2, 0, 1])
      expect(await store.getGenerations([])).toStrictEqual([])
    })

    it('deletes by pattern within its namespace only, glob-escaping the namespace', async () => {
      const store = await makeStore()
      const neighbour = await makeStore()
      const ids = Array.from({ length: 40 }, (_, i) => `t${i}`)
      for (const s of [store, neighbour]) {
        await s.setMany(ids.map((id) => ({ key: key(id), entry: entry(id) })))
        await s.setMany(ids.map((id) => ({ key: key(id, 'task:progress@1'), entry: entry(id) })))
      }
      expect(await store.deleteByPattern('task:status@1:*')).toBe(40)
      expect((await store.getMany(ids.map((id) => key(id)))).every((e) => e === undefined)).toBe(true)
      expect((await store.getMany(ids.map((id) => key(id, 'task:progress@1')))).every((e) => e !== undefined)).toBe(true)
      expect((await neighbour.getMany(ids.map((id) => key(id)))).every((e) => e !== undefined)).toBe(true)
      expect(await store.deleteByPattern('nothing:*')).toBe(0)
    })

    it('clears values, leases and generations of its namespace and nothing else', async () => {
      const store = await makeStore()
      const neighbour = await makeStore()
      const ids = Array.from({ length: 30 }, (_, i) => `t${i}`)
      for (const s of [store, neighbour]) {
        await s.setMany(ids.map((id) => ({ key: key(id), entry: entry(id) })))
        await s.acquireLease(key('leased'), 60_000)
        await s.bumpGeneration('task:list@1')
      }
      await store.clear()
      expect((await store.getMany(ids.map((id) => key(id)))).every((e) => e === undefined)).toBe(true)
      expect((await store.acquireLease(key('leased'), 60_000)).granted).toBe(true)
      expect(await store.getGenerations(['task:list@1'])).toStrictEqual([0])
      expect((await neighbour.getMany(ids.map((id) => key(id)))).every((e) => e !== undefined)).toBe(true)
      expect((await neighbour.acquireLease(key('leased'), 60_000)).granted).toBe(false)
      expect(await neighbour.getGenerations(['task:list@1'])).toStrictEqual([1])
    })

    describe('expire', () => {
      it('rewrites the header in place: the bytes of the expired entry, the TTL kept, the lease gone', async () => {
        const store = await makeStore()
        const written = { ...entry({ id: 't1', list: Array.from({ length: 200 }, (_, i) => `item-${i}`) }), tags: ['host:h1'], tagVersion: 3 }
        await store.set(key('t1'), written)
        await store.acquireLease(key('t1'), 60_000)
        const redisKey = `${store.namespace}:task:status@1:{t1}`
        const lease = `${store.namespace}:lease:task:status@1:{t1}`
        const before = await target.admin.pttl(redisKey)
        const at = Date.now()
        await store.expire([key('t1')], at)
        const after = await target.admin.pttl(redisKey)
        expect(after).toBeGreaterThan(0)
        expect(after).toBeLessThanOrEqual(before)
        expect(before - after).toBeLessThan(1_000)
        expect(await target.admin.exists(lease)).toBe(0)
        const bytes = await target.admin.getBuffer(redisKey)
        expect(bytes?.[1]).toBe(0b11) // lz4 and expired
        expect(bytes?.equals(store.codec.encode({ ...written, expiresAt: at, expired: true }))).toBe(true)
      })

      it('creates no key for an absent one, and leaves bytes it cannot read alone', async () => {
        const store = await makeStore()
        const short = `${store.namespace}:task:status@1:{short}`
        const future = `${store.namespace}:task:status@1:{future}`
        const unknown = Buffer.from(store.codec.encode(entry('v')))
        unknown[0] = 9
        await target.admin.set(short, Buffer.from([2, 0, 1, 2, 3]), 'PX', 60_000)
        await target.admin.set(future, unknown, 'PX', 60_000)
        await store.expire([key('absent'), key('short'), key('future')], Date.now())
        expect(await target.admin.exists(`${store.namespace}:task:status@1:{absent}`)).toBe(0)
        expect(await target.admin.getBuffer(short)).toStrictEqual(Buffer.from([2, 0, 1, 2, 3]))
        expect(await target.admin.getBuffer(future)).toStrictEqual(unknown)
      })

      it('refuses a NaN `at`, naming it, and writes nothing', async () => {
        const store = await makeStore()
        const written = entry('v')
        await store.set(key('t1'), written)
        await expect(store.expire([key('t1')], Number.NaN)).rejects.toThrow(/`at`.*NaN/)
        expect(await store.get(key('t1'))).toStrictEqual(written)
      })
    })

    it('reads corrupt bytes as a miss: counts, logs and removes them', async () => {
      const store = await makeStore()
      const redisKey = `${store.namespace}:task:status@1:{bad}`
      await target.admin.set(redisKey, Buffer.from([1, 0, 1, 2, 3]), 'PX', 60_000)
      logger.warn.mockClear()
      expect(await store.get(key('bad'))).toBeUndefined()
      expect(store.counters.corrupt).toBe(1)
      expect(logger.warn).toHaveBeenCalledTimes(1)
      await eventually(async () => (await target.admin.exists(redisKey)) === 0, 'the corrupt entry to be removed')
      // A forged lz4 size prefix on an otherwise valid header.
      const forged = Buffer.alloc(40)
      forged[0] = 1
      forged[1] = 1
      forged.writeUInt32LE(0xffffffff, 18)
      await target.admin.set(redisKey, forged, 'PX', 60_000)
      expect(await store.getMany([key('bad'), key('missing')])).toStrictEqual([undefined, undefined])
      expect(store.counters.corrupt).toBe(2)
    })

    it('refuses values above maxValueBytes at write, and writes nothing', async () => {
      const store = await makeStore({ maxValueBytes: 1024 })
      await expect(store.set(key('big'), entry('x'.repeat(5000)))).rejects.toBeInstanceOf(ValueTooLargeError)
      await expect(store.setMany([{ key: key('ok'), entry: entry('small') }, { key: key('big'), entry: entry('x'.repeat(5000)) }])).rejects.toThrow(/big/)
      expect(store.counters.tooLarge).toBe(2)
      expect(await store.getMany([key('big'), key('ok')])).toStrictEqual([undefined, undefined])
    })

    it('reports memory, keys per family and connection state', async () => {
      const store = await makeStore()
      await store.setMany(Array.from({ length: 7 }, (_, i) => ({ key: key(`s${i}`), entry: entry(i) })))
      await store.setMany(Array.from({ length: 3 }, (_, i) => ({ key: key(`l${i}`, 'task:list@1', '2'), entry: entry(i) })))
      await store.acquireLease(key('s0'), 60_000)
      await store.bumpGeneration('task:list@1')
      const info = await store.info()
      expect(info.keysByFamily).toStrictEqual({ 'task:status@1': 7, 'task:list@1': 3 })
      expect(info.usedMemoryBytes).toBeGreaterThan(0)
      expect(info.connection).toBe('ready')
      // Without the scan: memory and state, no key counts.
      const brief = await store.info({ keys: false })
      expect(brief.keysByFamily).toStrictEqual({})
      expect(brief.usedMemoryBytes).toBeGreaterThan(0)
      expect(brief.connection).toBe('ready')
    })
  })
}
