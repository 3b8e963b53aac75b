import type { InvalidationBus, ReceivedInvalidation, RemoteStore } from '@tiercache/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

/** Two buses of different instances on one transport. */
export interface InvalidationBusFixture {
  readonly a: InvalidationBus
  readonly b: InvalidationBus
  /**
   * Optional, for a bus with `prepare`: a store that `a` can prepare messages for (on its way to
   * the server), and one it cannot. The suite checks that the store publishes what `a` prepared.
   */
  readonly sharing?: { readonly store: RemoteStore; readonly stranger: RemoteStore }
  cleanup(): Promise<void>
}

/**
 * Registers the `InvalidationBus` contract as vitest tests: delivery between instances with
 * source, sequence and timestamp; no delivery to the sender; increasing sequence; health.
 */
export function defineInvalidationBusContract(name: string, factory: () => Promise<InvalidationBusFixture>): void {
  describe(`InvalidationBus contract: ${name}`, () => {
    let fixture: InvalidationBusFixture
    let toA: ReceivedInvalidation[]
    let toB: ReceivedInvalidation[]

    beforeEach(async () => {
      fixture = await factory()
      toA = []
      toB = []
      fixture.a.onMessage((m) => toA.push(m))
      fixture.b.onMessage((m) => toB.push(m))
      await Promise.all([fixture.a.start(), fixture.b.start()])
    })
    afterEach(async () => {
      await fixture.cleanup()
    })

    const waitFor = (check: () => void) => vi.waitFor(check, { timeout: 5_000, interval: 5 })

    it('have distinct instance ids and report healthy once started', () => {
      expect(fixture.a.instanceId).not.toBe(fixture.b.instanceId)
      expect(fixture.a.healthy).toBe(true)
      expect(fixture.b.healthy).toBe(true)
    })

    it('delivers a delete from a to b with source, seq and ts', async () => {
      const before = Date.now()
      await fixture.a.publish({ op: 'delete', keys: ['k1', 'fam@1\u00011\u0001k2', 'ключ'] })
      await waitFor(() => expect(toB).toHaveLength(1))
      const [message] = toB
      expect(message).toMatchObject({ op: 'delete', keys: ['k1', 'fam@1\u00011\u0001k2', 'ключ'], source: fixture.a.instanceId })
      expect(typeof message?.seq).toBe('number')
      expect(message?.ts).toBeGreaterThanOrEqual(before - 60_000)
    })

    it('delivers generation and clear messages', async () => {
      await fixture.a.publish({ op: 'generation', name: 'list@1:host-1', value: 7 })
      await fixture.a.publish({ op: 'clear' })
      await waitFor(() => expect(toB).toHaveLength(2))
      expect(toB[0]).toMatchObject({ op: 'generation', name: 'list@1:host-1', value: 7 })
      expect(toB[1]).toMatchObject({ op: 'clear' })
    })

    it('delivers a tags message', async () => {
      await fixture.a.publish({ op: 'tags', tags: ['host:h1', 'tenant:t'], version: 12 })
      await waitFor(() => expect(toB).toHaveLength(1))
      expect(toB[0]).toMatchObject({ op: 'tags', tags: ['host:h1', 'tenant:t'], version: 12, source: fixture.a.instanceId })
    })

    it('delivers an expire message intact, apart from a delete', async () => {
      const keys = ['k1', 'fam@1\u00011\u0001k2', 'ключ']
      await fixture.a.publish({ op: 'expire', keys })
      await fixture.a.publish({ op: 'delete', keys: ['k1'] })
      await waitFor(() => expect(toB).toHaveLength(2))
      expect(toB[0]).toMatchObject({ op: 'expire', keys, source: fixture.a.instanceId })
      expect(Object.keys(toB[0] ?? {}).sort()).toEqual(['keys', 'op', 'seq', 'source', 'ts'])
      expect(toB[1]).toMatchObject({ op: 'delete', keys: ['k1'] })
      expect(toB[1]?.seq).toBeGreaterThan(toB[0]?.seq ?? Infinity)
      expect(toA).toHaveLength(0)
    })

    it('prepare: a store on its way publishes the message after its changes, with the bumped values written in', async (context) => {
      const prepare = fixture.a.prepare?.bind(fixture.a)
      const sharing = fixture.sharing
      if (prepare === undefined || sharing?.store.apply === undefined) return context.skip()
      const [before] = await sharing.store.getGenerations(['contract@1'])
      const prepared = prepare(
        [
          { op: 'delete', keys: ['k1', 'ключ'] },
          { op: 'generation', name: 'contract@1', value: 0 },
          { op: 'generation', name: 'contract@1:g', value: 0 },
        ],
        sharing.store,
      )
      expect(prepared).toBeDefined()
      const values = await sharing.store.apply({ sets: [], deletes: [], bumps: ['contract@1', 'contract@1:g'] }, prepared)
      expect(values).toEqual([(before ?? 0) + 1, 1])
      await waitFor(() => expect(toB).toHaveLength(3))
      expect(toB[0]).toMatchObject({ op: 'delete', keys: ['k1', 'ключ'], source: fixture.a.instanceId })
      expect(toB[1]).toMatchObject({ op: 'generation', name: 'contract@1', value: values[0] })
      expect(toB[2]).toMatchObject({ op: 'generation', name: 'contract@1:g', value: 1 })
      expect([toB[1]?.seq, toB[2]?.seq]).toEqual([(toB[0]?.seq ?? 0) + 1, (toB[0]?.seq ?? 0) + 2])
      expect(toA).toHaveLength(0)
      // The numbering goes on after it: a publish that follows is not taken for a replay.
      await fixture.a.publish({ op: 'clear' })
      await waitFor(() => expect(toB).toHaveLength(4))
      expect(toB[3]?.seq).toBe((toB[2]?.seq ?? 0) + 1)
    })

    it('prepare: a store that does not share its way is refused (the engine publishes itself)', (context) => {
      const prepare = fixture.a.prepare?.bind(fixture.a)
      if (prepare === undefined || fixture.sharing === undefined) return context.skip()
      expect(prepare([{ op: 'clear' }], fixture.sharing.stranger)).toBeUndefined()
    })

    it('does not deliver a message to its sender', async () => {
      await fixture.a.publish({ op: 'delete', keys: ['mine'] })
      await fixture.b.publish({ op: 'delete', keys: ['marker'] })
      // b's marker reaches a after a's own message would have: a has seen only the marker.
      await waitFor(() => expect(toA).toHaveLength(1))
      await waitFor(() => expect(toB).toHaveLength(1))
      expect(toA[0]).toMatchObject({ keys: ['marker'], source: fixture.b.instanceId })
    })

    it('numbers messages of one sender in increasing order', async () => {
      for (let i = 0; i < 5; i++) await fixture.a.publish({ op: 'delete', keys: [`k${i}`] })
      await waitFor(() => expect(toB).toHaveLength(5))
      const seqs = toB.map((m) => m.seq)
      for (let i = 1; i < seqs.length; i++) expect(seqs[i] as number).toBeGreaterThan(seqs[i - 1] as number)
      expect(toB.map((m) => (m.op === 'delete' ? m.keys[0] : ''))).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
    })

    it('reports unhealthy after close', async () => {
      await fixture.a.close()
      expect(fixture.a.healthy).toBe(false)
    })
  })
}
