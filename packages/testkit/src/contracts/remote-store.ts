import type { LeaseGrant, RemoteEntry, RemoteStore, StoreKey } from '@tiercache/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

/** What a remote-store contract run needs from the implementation under test. */
export interface RemoteStoreFixture {
  /** A store on an empty namespace. */
  readonly store: RemoteStore
  /**
   * Optional: a store over the same backend with another namespace. When given, the suite checks
   * that `clear()` and generations stay inside their namespace.
   */
  readonly sibling?: RemoteStore
  /** Stops servers and closes clients. */
  cleanup(): Promise<void>
}

const key = (id: string, family = 'contract@1', generation = ''): StoreKey => ({ family, generation, id })

function entry<T>(value: T, ttlMs = 60_000, graceMs = 0): RemoteEntry<T> {
  const expiresAt = Date.now() + ttlMs
  return { value, expiresAt, graceUntil: expiresAt + graceMs }
}

/** The grant, asserted granted (a refusal fails the test here, with the grant shown). */
function granted(grant: LeaseGrant): { granted: true; token: string } {
  expect(grant).toMatchObject({ granted: true })
  return grant as { granted: true; token: string }
}

const VALUES: readonly [string, unknown][] = [
  ['object', { id: 'task-1', status: 'running', progress: 0.42, tags: ['a', 'b'], nested: { deep: { ok: true } } }],
  ['array', [1, 'two', { three: 3 }, [4], null]],
  ['null', null],
  ['unicode string', 'héllo wörld — 日本語 🚀 \u0000 nul'],
  ['empty string', ''],
  ['integer', 42],
  ['negative float', -12.5],
  ['large integer', Number.MAX_SAFE_INTEGER],
  ['zero', 0],
  ['boolean', false],
  ['long string', 'x'.repeat(64 * 1024)],
  ['array of objects', Array.from({ length: 100 }, (_, i) => ({ i, name: `item-${i}` }))],
]

/**
 * Registers the `RemoteStore` contract as vitest tests. Every L2 store (memory, Redis standalone,
 * cluster, a third party's) must pass it for the engine's guarantees to hold.
 */
export function defineRemoteStoreContract(name: string, factory: () => Promise<RemoteStoreFixture>): void {
  describe(`RemoteStore contract: ${name}`, () => {
    let fixture: RemoteStoreFixture
    let store: RemoteStore

    beforeEach(async () => {
      fixture = await factory()
      store = fixture.store
    })
    afterEach(async () => {
      await fixture.cleanup()
    })

    describe('values', () => {
      it.each(VALUES)('round-trips %s with its envelope', async (_label, value) => {
        const written = entry(value, 60_000, 30_000)
        await store.set(key('v'), written)
        const read = await store.get(key('v'))
        expect(read).toEqual(written)
      })

      it('misses an unknown key', async () => {
        expect(await store.get(key('never-written'))).toBeUndefined()
      })

      it('overwrites with set', async () => {
        await store.set(key('k'), entry('one'))
        await store.set(key('k'), entry('two'))
        expect((await store.get(key('k')))?.value).toBe('two')
      })

      it('keeps families, generations and ids apart', async () => {
        await store.set(key('k', 'a@1'), entry('a1'))
        await store.set(key('k', 'a@2'), entry('a2'))
        await store.set(key('k', 'a@1', '3'), entry('a1g3'))
        await store.set(key('k2', 'a@1'), entry('other id'))
        expect((await store.get(key('k', 'a@1')))?.value).toBe('a1')
        expect((await store.get(key('k', 'a@2')))?.value).toBe('a2')
        expect((await store.get(key('k', 'a@1', '3')))?.value).toBe('a1g3')
        expect((await store.get(key('k2', 'a@1')))?.value).toBe('other id')
      })

      it('getMany answers in the order asked, undefined for misses', async () => {
        await store.setMany([
          { key: key('m1'), entry: entry(1) },
          { key: key('m2', 'other@1'), entry: entry({ two: 2 }) },
          { key: key('m3'), entry: entry('three') },
        ])
        const read = await store.getMany([key('m3'), key('missing'), key('m1'), key('m2', 'other@1')])
        expect(read.map((e) => e?.value)).toEqual(['three', undefined, 1, { two: 2 }])
        expect(await store.getMany([])).toEqual([])
      })

      it('delete removes the given keys only', async () => {
        await store.setMany([
          { key: key('d1'), entry: entry(1) },
          { key: key('d2'), entry: entry(2) },
          { key: key('d3'), entry: entry(3) },
        ])
        await store.delete([key('d1'), key('d3'), key('never')])
        expect((await store.getMany([key('d1'), key('d2'), key('d3')])).map((e) => e?.value)).toEqual([undefined, 2, undefined])
        await store.delete([])
      })
    })

    describe('ttl', () => {
      it('does not return an entry whose grace deadline has passed', async () => {
        const past = Date.now() - 1_000
        await store.set(key('gone'), { value: 'x', expiresAt: past - 1_000, graceUntil: past })
        expect(await store.get(key('gone'))).toBeUndefined()
      })

      it('returns an expired entry while it is within grace, with its envelope', async () => {
        const now = Date.now()
        const stale = { value: 's', expiresAt: now - 1_000, graceUntil: now + 60_000 }
        await store.set(key('stale'), stale)
        expect(await store.get(key('stale'))).toEqual(stale)
      })

      it('drops the entry once its grace deadline passes (real time)', async () => {
        await store.set(key('short'), { value: 'x', expiresAt: Date.now() + 50, graceUntil: Date.now() + 100 })
        expect((await store.get(key('short')))?.value).toBe('x')
        await vi.waitFor(async () => expect(await store.get(key('short'))).toBeUndefined(), { timeout: 5_000, interval: 25 })
      })
    })

    describe('clear', () => {
      it('deletes every key of the namespace', async () => {
        await store.setMany([
          { key: key('c1'), entry: entry(1) },
          { key: key('c2', 'f@1', '2'), entry: entry(2) },
        ])
        await store.clear()
        expect(await store.getMany([key('c1'), key('c2', 'f@1', '2')])).toEqual([undefined, undefined])
      })

      it('leaves another namespace alone', async (context) => {
        const sibling = fixture.sibling
        if (sibling === undefined) return context.skip()
        await sibling.set(key('s'), entry('sibling'))
        await store.set(key('s'), entry('mine'))
        await sibling.bumpGeneration('g')
        await store.clear()
        expect(await store.get(key('s'))).toBeUndefined()
        expect((await sibling.get(key('s')))?.value).toBe('sibling')
        expect(await sibling.getGenerations(['g'])).toEqual([1])
      })
    })

    describe('leases', () => {
      it('grants a lease on a missing key, and not a second one while it is held', async () => {
        const first = await store.acquireLease(key('l'), 10_000)
        expect(first.granted).toBe(true)
        if (first.granted) expect(typeof first.token).toBe('string')
        expect((await store.acquireLease(key('l'), 10_000)).granted).toBe(false)
      })

      it('a fill with the valid token lands and releases the lease', async () => {
        const grant = granted(await store.acquireLease(key('l'), 10_000))
        const filled = entry({ loaded: true })
        expect(await store.fillWithLease(key('l'), grant.token, filled)).toBe(true)
        expect(await store.get(key('l'))).toEqual(filled)
      })

      it('a fill after a delete of the key does not land', async () => {
        const grant = granted(await store.acquireLease(key('l'), 10_000))
        await store.delete([key('l')])
        expect(await store.fillWithLease(key('l'), grant.token, entry('old'))).toBe(false)
        expect(await store.get(key('l'))).toBeUndefined()
      })

      it('a fill after a set of the key does not land (the newer value wins)', async () => {
        const grant = granted(await store.acquireLease(key('l'), 10_000))
        await store.set(key('l'), entry('new'))
        expect(await store.fillWithLease(key('l'), grant.token, entry('old'))).toBe(false)
        expect((await store.get(key('l')))?.value).toBe('new')
      })

      it('a fill with a wrong token does not land', async () => {
        const grant = await store.acquireLease(key('l'), 10_000)
        expect(grant.granted).toBe(true)
        expect(await store.fillWithLease(key('l'), 'not-the-token', entry('x'))).toBe(false)
        expect(await store.get(key('l'))).toBeUndefined()
      })

      it('a fill without any lease does not land', async () => {
        expect(await store.fillWithLease(key('none'), 'token', entry('x'))).toBe(false)
        expect(await store.get(key('none'))).toBeUndefined()
      })

      it('leases of different families of the same id are independent', async () => {
        expect((await store.acquireLease(key('same', 'a@1'), 10_000)).granted).toBe(true)
        expect((await store.acquireLease(key('same', 'b@1'), 10_000)).granted).toBe(true)
      })

      it('a lease expires after its ttl (real time)', async () => {
        expect((await store.acquireLease(key('exp'), 100)).granted).toBe(true)
        expect((await store.acquireLease(key('exp'), 100)).granted).toBe(false)
        await vi.waitFor(async () => expect((await store.acquireLease(key('exp'), 10_000)).granted).toBe(true), {
          timeout: 5_000,
          interval: 25,
        })
      })
    })

    describe('generations', () => {
      it('start at 0, bump increments, names are independent', async () => {
        expect(await store.getGenerations(['', 'fam@1', 'fam@1:host-1'])).toEqual([0, 0, 0])
        expect(await store.bumpGeneration('fam@1')).toBe(1)
        expect(await store.bumpGeneration('fam@1')).toBe(2)
        expect(await store.bumpGeneration('fam@1:host-1')).toBe(1)
        expect(await store.bumpGeneration('')).toBe(1)
        expect(await store.getGenerations(['fam@1:host-1', 'other', 'fam@1', ''])).toEqual([1, 0, 2, 1])
        expect(await store.getGenerations([])).toEqual([])
      })
    })

    describe('tags', () => {
      it('the sequence starts at 0 and moves one on per invalidation; each tag takes the version that reached it last', async (context) => {
        const { getTagVersions, invalidateTags } = store
        if (getTagVersions === undefined || invalidateTags === undefined) return context.skip()
        expect(await getTagVersions.call(store, ['a', 'b'])).toEqual({ sequence: 0, versions: [0, 0] })
        expect(await getTagVersions.call(store, [])).toEqual({ sequence: 0, versions: [] })
        expect(await invalidateTags.call(store, ['a', 'b'])).toBe(1)
        expect(await invalidateTags.call(store, ['b', 'тег'])).toBe(2)
        expect(await getTagVersions.call(store, ['a', 'b', 'тег', 'never'])).toEqual({ sequence: 2, versions: [1, 2, 2, 0] })
      })

      it('clear and deleteByPattern keep the sequence and the versions', async (context) => {
        const { getTagVersions, invalidateTags } = store
        if (getTagVersions === undefined || invalidateTags === undefined) return context.skip()
        await invalidateTags.call(store, ['kept'])
        await store.clear()
        await store.deleteByPattern?.('*')
        expect(await getTagVersions.call(store, ['kept'])).toEqual({ sequence: 1, versions: [1] })
        expect(await invalidateTags.call(store, ['other'])).toBe(2)
      })

      it('a tagged entry reads back with its tags and tagVersion; an untagged one without', async (context) => {
        if (store.getTagVersions === undefined) return context.skip()
        const tagged = { ...entry({ id: 1 }), tags: ['host:h1', 'ü'], tagVersion: 41 }
        await store.set(key('tagged'), tagged)
        await store.setMany([{ key: key('tagged-many'), entry: { ...entry('x'.repeat(4096)), tags: ['t'], tagVersion: 0 } }])
        await store.set(key('plain'), entry('plain'))
        const [one, many, plain] = await store.getMany([key('tagged'), key('tagged-many'), key('plain')])
        expect(one).toMatchObject({ value: { id: 1 }, tags: ['host:h1', 'ü'], tagVersion: 41 })
        expect(many).toMatchObject({ tags: ['t'], tagVersion: 0 })
        expect(plain).toBeDefined()
        expect(plain && 'tags' in plain && plain.tags !== undefined).toBe(false)
      })
    })

    describe('expire', () => {
      /** The store's `expire`, or the test skipped when it has none. */
      const expireOf = (context: { skip(): never }) => {
        const expire = store.expire?.bind(store)
        return expire ?? context.skip()
      }

      it('makes a present entry expired with expiresAt brought down to at, value and grace kept', async (context) => {
        const expire = expireOf(context)
        const written = entry({ id: 1, nested: ['x'] }, 60_000, 30_000)
        await store.set(key('e'), written)
        const at = Date.now()
        await expire([key('e')], at)
        expect(await store.get(key('e'))).toEqual({ ...written, expiresAt: at, expired: true })
        expect(await store.getMany([key('e')])).toEqual([{ ...written, expiresAt: at, expired: true }])
      })

      it('never extends an entry: a later at keeps expiresAt, and a second expire does not move it back up', async (context) => {
        const expire = expireOf(context)
        const written = entry('v', 10_000, 30_000)
        await store.set(key('late'), written)
        await expire([key('late')], written.expiresAt + 5_000)
        expect(await store.get(key('late'))).toEqual({ ...written, expired: true })
        const at = Date.now()
        await expire([key('late')], at)
        await expire([key('late')], at + 1_000)
        expect(await store.get(key('late'))).toEqual({ ...written, expiresAt: at, expired: true })
      })

      it('keeps tags and tagVersion, also of a large (compressed) value', async (context) => {
        const expire = expireOf(context)
        if (store.getTagVersions === undefined) return context.skip()
        const small = { ...entry({ id: 2 }, 60_000, 30_000), tags: ['host:h1', 'ü'], tagVersion: 41 }
        const large = { ...entry('x'.repeat(8192), 60_000, 30_000), tags: ['t'], tagVersion: 0 }
        await store.setMany([
          { key: key('tagged'), entry: small },
          { key: key('large'), entry: large },
        ])
        const at = Date.now()
        await expire([key('tagged'), key('large')], at)
        expect(await store.getMany([key('tagged'), key('large')])).toEqual([
          { ...small, expiresAt: at, expired: true },
          { ...large, expiresAt: at, expired: true },
        ])
      })

      it('leaves absent keys absent, and does not bring back an entry past its grace', async (context) => {
        const expire = expireOf(context)
        const past = Date.now() - 1_000
        await store.set(key('graceless'), { value: 'x', expiresAt: past - 1_000, graceUntil: past })
        await store.set(key('short'), { value: 'x', expiresAt: Date.now() + 20, graceUntil: Date.now() + 50 })
        await vi.waitFor(async () => expect(await store.get(key('short'))).toBeUndefined(), { timeout: 5_000, interval: 10 })
        await expire([key('never-written'), key('graceless'), key('short')], Date.now())
        expect(await store.getMany([key('never-written'), key('graceless'), key('short')])).toEqual([undefined, undefined, undefined])
        await expire([], Date.now())
      })

      it('expires the present keys among many, spread over families and generations, in one call', async (context) => {
        const expire = expireOf(context)
        const keys = Array.from({ length: 40 }, (_, i) => key(`many-${i}`, i % 2 === 0 ? 'contract@1' : 'other@1', i % 3 === 0 ? '' : String(i % 3)))
        const written = keys.map((_, i) => entry(i, 60_000, 30_000))
        await store.setMany(keys.flatMap((k, i) => (i % 4 === 0 ? [] : [{ key: k, entry: written[i]! }])))
        const at = Date.now()
        await expire(keys, at)
        expect(await store.getMany(keys)).toEqual(keys.map((_, i) => (i % 4 === 0 ? undefined : { ...written[i]!, expiresAt: at, expired: true })))
      })

      it('a set after expire writes the new entry as it is, not expired', async (context) => {
        const expire = expireOf(context)
        await store.set(key('reset'), entry('old', 60_000, 30_000))
        await expire([key('reset')], Date.now())
        const fresh = entry('new', 60_000, 30_000)
        await store.set(key('reset'), fresh)
        const read = await store.get(key('reset'))
        expect(read).toEqual(fresh)
        expect(read !== undefined && 'expired' in read && read.expired !== undefined).toBe(false)
      })

      it('voids the leases of its keys, present or not: a fill of a load that began before does not land', async (context) => {
        const expire = expireOf(context)
        const written = entry('old', 60_000, 30_000)
        await store.set(key('leased'), written)
        const present = granted(await store.acquireLease(key('leased'), 10_000))
        const absent = granted(await store.acquireLease(key('loading'), 10_000))
        const at = Date.now()
        await expire([key('leased'), key('loading')], at)
        expect(await store.fillWithLease(key('leased'), present.token, entry('read before'))).toBe(false)
        expect(await store.fillWithLease(key('loading'), absent.token, entry('read before'))).toBe(false)
        expect(await store.getMany([key('leased'), key('loading')])).toEqual([{ ...written, expiresAt: at, expired: true }, undefined])
        // The reload after it takes a lease of its own, and its fill is not expired.
        const reload = granted(await store.acquireLease(key('leased'), 10_000))
        const reloaded = entry('reloaded', 60_000, 30_000)
        expect(await store.fillWithLease(key('leased'), reload.token, reloaded)).toBe(true)
        expect(await store.get(key('leased'))).toEqual(reloaded)
      })
    })

    describe('optional methods', () => {
      it('apply makes the sets, then the deletes, then the bumps, and resolves the bumped values in order', async (context) => {
        const apply = store.apply?.bind(store)
        if (apply === undefined) return context.skip()
        await store.set(key('a1'), entry('old'))
        await store.set(key('a3'), entry('gone'))
        const values = await apply(
          {
            sets: [
              { key: key('a1'), entry: entry('first') },
              { key: key('a2'), entry: entry({ n: 2 }) },
              { key: key('a1'), entry: entry('last') },
            ],
            deletes: [key('a3'), key('never-there')],
            bumps: ['apply@1', 'apply@1:g', 'apply@1'],
          },
          undefined,
        )
        expect(values).toEqual([1, 1, 2])
        expect((await store.get(key('a1')))?.value).toBe('last')
        expect((await store.get(key('a2')))?.value).toEqual({ n: 2 })
        expect(await store.get(key('a3'))).toBeUndefined()
        expect(await store.getGenerations(['apply@1', 'apply@1:g'])).toEqual([2, 1])
        expect(await apply({ sets: [], deletes: [], bumps: [] }, undefined)).toEqual([])
      })

      it('apply voids the leases of the keys it sets and deletes, and removes an entry that has expired', async (context) => {
        const apply = store.apply?.bind(store)
        if (apply === undefined) return context.skip()
        const setLease = granted(await store.acquireLease(key('ls'), 10_000))
        const deleteLease = granted(await store.acquireLease(key('ld'), 10_000))
        await store.set(key('expired'), entry('before'))
        const past = Date.now() - 1_000
        await apply(
          { sets: [{ key: key('ls'), entry: entry('new') }, { key: key('expired'), entry: { value: 'x', expiresAt: past, graceUntil: past } }], deletes: [key('ld')], bumps: [] },
          undefined,
        )
        expect(await store.fillWithLease(key('ls'), setLease.token, entry('old'))).toBe(false)
        expect((await store.get(key('ls')))?.value).toBe('new')
        expect(await store.fillWithLease(key('ld'), deleteLease.token, entry('old'))).toBe(false)
        expect(await store.get(key('ld'))).toBeUndefined()
        expect(await store.get(key('expired'))).toBeUndefined()
      })

      it('deleteByPattern deletes matching keys of the namespace and counts them', async (context) => {
        if (store.deleteByPattern === undefined) return context.skip()
        await store.setMany([
          { key: key('p1', 'pat@1'), entry: entry(1) },
          { key: key('p2', 'pat@1'), entry: entry(2) },
          { key: key('p1', 'keep@1'), entry: entry(3) },
        ])
        expect(await store.deleteByPattern('pat@1:*')).toBe(2)
        expect((await store.getMany([key('p1', 'pat@1'), key('p1', 'keep@1')])).map((e) => e?.value)).toEqual([undefined, 3])
      })

      it('purgeFamily deletes the family\'s values of other generations, keeping the current one and its groups', async (context) => {
        if (store.purgeFamily === undefined) return context.skip()
        await store.setMany([
          { key: key('a', 'pg@1', ''), entry: entry('no generation') },
          { key: key('a', 'pg@1', '3'), entry: entry('old family generation') },
          { key: key('a', 'pg@1', '5'), entry: entry('current') },
          { key: key('b', 'pg@1', '5.2'), entry: entry('current, group 2') },
          { key: key('c', 'pg@1', '50.1'), entry: entry('another generation that starts alike') },
          { key: key('a', 'pg@1', 'n2-5'), entry: entry('old namespace generation') },
          { key: key('a', 'pg@2', '3'), entry: entry('another version') },
          { key: key('a', 'other@1', '3'), entry: entry('another family') },
          { key: key('a', 'pg@10', '3'), entry: entry('a family whose id starts alike') },
        ])
        expect(await store.purgeFamily('pg@1', '5')).toBe(4)
        const left = await store.getMany([
          key('a', 'pg@1', '5'),
          key('b', 'pg@1', '5.2'),
          key('a', 'pg@2', '3'),
          key('a', 'other@1', '3'),
          key('a', 'pg@10', '3'),
          key('a', 'pg@1', ''),
          key('a', 'pg@1', '3'),
          key('c', 'pg@1', '50.1'),
          key('a', 'pg@1', 'n2-5'),
        ])
        expect(left.map((e) => e?.value)).toEqual([
          'current',
          'current, group 2',
          'another version',
          'another family',
          'a family whose id starts alike',
          undefined,
          undefined,
          undefined,
          undefined,
        ])
        expect(await store.purgeFamily('pg@1', '5')).toBe(0)
        // Under a bumped namespace the current generation carries it, and the unbumped ones go.
        await store.set(key('n', 'pg@1', 'n4'), entry('current under namespace 4'))
        await store.set(key('o', 'pg@1', 'n4-1'), entry('a generational tag under it'))
        expect(await store.purgeFamily('pg@1', 'n4')).toBe(3)
        expect((await store.get(key('n', 'pg@1', 'n4')))?.value).toBe('current under namespace 4')
      })

      it('info reports keys per family and the connection', async (context) => {
        if (store.info === undefined) return context.skip()
        await store.setMany([
          { key: key('i1', 'info@1'), entry: entry(1) },
          { key: key('i2', 'info@1'), entry: entry(2) },
        ])
        const info = await store.info()
        expect(info.keysByFamily['info@1']).toBe(2)
        expect(info.connection).toBe('ready')
      })
    })
  })
}
