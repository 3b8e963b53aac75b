/**
 * Every mutation takes one path: `apply({ kind: 'set' | 'delete' | 'clear' | 'bump' })`.
 *
 * A write changes L1 first (voiding the flights of its keys, so that no load that started before
 * it lands), then L2 through the guard, then tells the other processes on the bus. What L2 could
 * not take goes to the recovery queue (a failed `set` or delete leaves a wrong L2 copy, so its
 * key's delete is queued); the bus message still goes out, so that healthy L1s drop the value
 * now. A writer never sees an L2 error. Its promise settles once the message is handed to the
 * transport. A bump that L2 cannot take falls back to what always works once L2 is back: a
 * queued namespace bump, the local L1 dropped, a `clear` on the bus.
 */
import type { Coherence } from '../coherence/coherence.js'
import { CacheClosedError } from '../errors.js'
import type { FamilyContext, KeyItem, WriteItem } from '../family.js'
import type { Generations } from '../l2/generations.js'
import type { Keys } from '../keys.js'
import type { LocalTier } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import type { RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import { type EntrySettings, entryTimes, resolveSetOptions } from '../options.js'
import type { Clock, RemoteEntry, StoreKey } from '../ports.js'
import type { Telemetry } from '../telemetry.js'

export type Mutation =
  | { readonly kind: 'set'; readonly fc: FamilyContext; readonly items: readonly WriteItem[] }
  | { readonly kind: 'delete'; readonly fc: FamilyContext; readonly items: readonly KeyItem[] }
  | { readonly kind: 'clear' }
  /** `name`: the generation bumped, a family's id or `<id>:<group>`. */
  | { readonly kind: 'bump'; readonly fc: FamilyContext; readonly name: string }

export interface WritePathParts {
  readonly local: LocalTier
  readonly policy: ValuePolicy
  readonly coherence: Coherence
  readonly keys: Keys
  readonly generations: Generations
  readonly remote: RemoteTier | undefined
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
}

export class WritePath {
  readonly #p: WritePathParts

  constructor(parts: WritePathParts) {
    this.#p = parts
  }

  apply(mutation: Mutation): Promise<void> {
    if (this.#p.life.closed) return Promise.reject(new CacheClosedError())
    return this.#p.life.track(this.#run(mutation))
  }

  #run(m: Mutation): Promise<void> {
    switch (m.kind) {
      case 'set':
        return this.#set(m.fc, m.items)
      case 'delete':
        return this.#delete(m.fc, m.items)
      case 'clear':
        return this.#clear()
      case 'bump':
        return this.#bump(m.fc, m.name)
    }
  }

  async #set(fc: FamilyContext, items: readonly WriteItem[]): Promise<void> {
    const { policy, keys, local, coherence, remote, clock } = this.#p
    // Every entry's options are checked before anything changes: a bad one later in a batch must
    // not leave the earlier ones in L1 but never in L2 nor announced on the bus.
    const resolved = items.map((item) => (item.options === undefined ? fc.settings : resolveSetOptions(fc.settings, item.options)))
    await this.#generationsOf(fc, items)
    const now = clock.now()
    const l1Keys: string[] = []
    const writes: { key: StoreKey; entry: RemoteEntry }[] = []
    let unkeyed = false
    items.forEach((item, i) => {
      const settings = resolved[i] as EntrySettings
      const value = policy.seal(item.value)
      const { expiresAt, graceUntil } = entryTimes(settings, now)
      const l1Key = keys.l1Key(fc, item.id, item.params)
      if (l1Key === undefined) {
        unkeyed = true
        return
      }
      coherence.invalidateKey(l1Key)
      local.fill(l1Key, policy.keep(value), now, expiresAt, graceUntil, settings.l1Ttl)
      l1Keys.push(l1Key)
      const storeKey = remote === undefined ? undefined : keys.storeKey(fc, item.id, item.params)
      if (storeKey === undefined) unkeyed ||= remote !== undefined
      else writes.push({ key: storeKey, entry: { value, expiresAt, graceUntil } })
    })
    await remote?.write(
      'setMany',
      writes.map((w) => w.key),
      (store) => (writes.length === 1 ? store.set((writes[0] as (typeof writes)[0]).key, (writes[0] as (typeof writes)[0]).entry) : store.setMany(writes)),
    )
    // Without the generations the key in L2 is unknown: only a namespace bump reaches it.
    if (unkeyed) remote?.invalidateAll()
    await coherence.publishDelete(l1Keys)
  }

  async #delete(fc: FamilyContext, items: readonly KeyItem[]): Promise<void> {
    const { keys, coherence, remote } = this.#p
    await this.#generationsOf(fc, items)
    const l1Keys: string[] = []
    const storeKeys: StoreKey[] = []
    let unkeyed = false
    for (const item of items) {
      const l1Key = keys.l1Key(fc, item.id, item.params)
      if (l1Key === undefined) {
        unkeyed = true
        continue
      }
      coherence.invalidateKey(l1Key)
      l1Keys.push(l1Key)
      const storeKey = remote === undefined ? undefined : keys.storeKey(fc, item.id, item.params)
      if (storeKey === undefined) unkeyed ||= remote !== undefined
      else storeKeys.push(storeKey)
    }
    await remote?.write('delete', storeKeys, (store) => store.delete(storeKeys))
    if (unkeyed) remote?.invalidateAll()
    await coherence.publishDelete(l1Keys)
  }

  async #clear(): Promise<void> {
    const { coherence, remote } = this.#p
    coherence.flush('clear', true)
    if (remote !== undefined) {
      try {
        await remote.clear()
      } catch {
        remote.invalidateAll()
      }
    }
    await coherence.publish({ op: 'clear' })
  }

  async #bump(fc: FamilyContext, name: string): Promise<void> {
    const { remote, generations, coherence, telemetry } = this.#p
    if (remote === undefined) {
      const value = (generations.value(name) ?? 0) + 1
      generations.apply(name, value)
      await coherence.publish({ op: 'generation', name, value })
      return
    }
    try {
      const value = await remote.bumpGeneration(name)
      generations.apply(name, value)
      await coherence.publish({ op: 'generation', name, value })
    } catch {
      telemetry.logger.warn({ family: fc.id, generation: name }, 'tiercache generation bump failed; namespace bump queued')
      remote.invalidateAll()
      coherence.flush('clear', true)
      await coherence.publish({ op: 'clear' })
    }
  }

  /** Reads the generations the written keys need (their L1 and store keys depend on them). */
  #generationsOf(fc: FamilyContext, items: readonly { params: unknown }[]): Promise<boolean> {
    const { keys, generations, remote } = this.#p
    const names = fc.generational ? keys.generationNames(fc, items.map((i) => i.params)) : []
    if (remote !== undefined) names.push('')
    return names.length === 0 ? Promise.resolve(true) : generations.ensure(names)
  }
}
