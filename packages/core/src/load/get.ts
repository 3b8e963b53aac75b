/**
 * Reads without a loader: `get` (L1, then L2), `peek` (L1 only) and `getMany` (L1, then one L2
 * call for the misses). A `get` miss joins the key's load or read in progress, else reads L2 as a
 * flight of its own, so that concurrent `get`s of a key make one L2 call. A batch cannot hold one
 * flight per key: it fills L1 only when no invalidation happened while it read (`Flights.epoch`).
 */
import { CacheClosedError } from '../errors.js'
import type { FamilyContext } from '../family.js'
import type { Generations } from '../l2/generations.js'
import type { Keys } from '../keys.js'
import { type L1Entry, type LocalTier, promiseOf } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import { MISS, type RemoteRead, type RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import { refreshPoint } from '../options.js'
import type { PendingWrites } from '../pending-writes.js'
import type { Clock, StoreKey } from '../ports.js'
import type { TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import type { Flight, Flights } from './flights.js'
import type { Lander } from './land.js'

export interface GetParts {
  readonly local: LocalTier
  readonly policy: ValuePolicy
  readonly flights: Flights
  readonly keys: Keys
  readonly generations: Generations
  readonly remote: RemoteTier | undefined
  readonly land: Lander
  readonly tags: TagTable
  readonly pending: PendingWrites
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
}

export class Get {
  readonly #p: GetParts

  constructor(parts: GetParts) {
    this.#p = parts
  }

  /** A family's `get` (the default family's hit path is the cache's own). */
  get(fc: FamilyContext, id: string, params: unknown): Promise<unknown> {
    const { life, keys, local, telemetry, policy, generations } = this.#p
    if (life.closed) return Promise.reject(new CacheClosedError())
    const l1Key = keys.l1Key(fc, id, params)
    if (l1Key === undefined) {
      // Start over only with the key known: a generation trusted for no time at all (a cap of 0
      // while the bus is unhealthy) is read, and unknown again at once.
      return generations.ensure(keys.allGenerationNames(fc, params)).then((ok) => {
        if (ok && keys.l1Key(fc, id, params) !== undefined) return this.get(fc, id, params)
        telemetry.count(fc, 'misses')
        return undefined
      })
    }
    fc.adaptive?.record(l1Key)
    const entry = local.entry(l1Key)
    if (entry !== undefined && local.fresh(entry)) {
      telemetry.l1Hit(fc)
      return policy.shared ? promiseOf(entry) : Promise.resolve(policy.out(entry.value))
    }
    return this.miss(fc, id, l1Key, params, entry)
  }

  peek(fc: FamilyContext, id: string, params: unknown): unknown {
    const { life, keys, local, telemetry, policy } = this.#p
    if (life.closed) throw new CacheClosedError()
    const l1Key = keys.l1Key(fc, id, params)
    const entry = l1Key === undefined ? undefined : local.hit(l1Key)
    if (entry === undefined) return undefined
    telemetry.l1Hit(fc)
    return policy.out(entry.value)
  }

  /** The L1 miss of a `get` (`entry`: the key's L1 entry, not fresh, if any). */
  miss(fc: FamilyContext, id: string, l1Key: string, params: unknown, entry: L1Entry | undefined): Promise<unknown> {
    const { life, flights, local, remote, keys, telemetry, pending, tags } = this.#p
    if (life.closed) return Promise.reject(new CacheClosedError())
    const loading = flights.join(l1Key, tags.changes, () => this.miss(fc, id, l1Key, params, undefined), true)
    if (loading !== undefined) return loading
    if (entry !== undefined && local.spent(entry)) local.delete(l1Key)
    // A key with a background write still queued: L2 holds what the write replaced.
    if (remote === undefined || remote.isOpen || pending.holds(l1Key)) {
      telemetry.count(fc, 'misses')
      return Promise.resolve(undefined)
    }
    const flight = flights.startRead(l1Key)
    // The generations are in memory on all but the first reads: one guarded call, one `then`.
    const storeKey = keys.storeKey(fc, id, params)
    const found =
      storeKey === undefined
        ? keys.resolveStoreKey(fc, id, params).then((key) => (key === undefined ? MISS : remote.read(fc, key)))
        : remote.read(fc, storeKey)
    const promise = found.then(
      (read) => {
        try {
          return this.#answer(fc, l1Key, flight, read)
        } finally {
          flights.endRead(l1Key, flight)
        }
      },
      (error: unknown) => {
        flights.endRead(l1Key, flight)
        throw error
      },
    )
    flight.promise = promise
    return promise
  }

  async getMany(fc: FamilyContext, ids: readonly string[], params: readonly unknown[] | undefined): Promise<unknown[]> {
    const { life, keys, local, telemetry, policy, generations, remote, flights, clock, pending } = this.#p
    if (life.closed) throw new CacheClosedError()
    const results = new Array<unknown>(ids.length)
    if (!fc.isDefault && fc.generational) {
      if (!(await generations.ensure(keys.generationNames(fc, params ?? [])))) {
        telemetry.count(fc, 'misses', ids.length)
        return results
      }
    }
    const l1Keys = ids.map((id, i) => keys.l1Key(fc, id, params?.[i]) as string)
    const missing: number[] = []
    let held = 0
    for (let i = 0; i < ids.length; i++) {
      const entry = local.hit(l1Keys[i] as string)
      if (entry === undefined) {
        if (pending.holds(l1Keys[i] as string)) held++
        else missing.push(i)
      } else {
        telemetry.l1Hit(fc)
        results[i] = policy.out(entry.value)
      }
    }
    if (held > 0) telemetry.count(fc, 'misses', held)
    if (missing.length === 0) return results
    if (remote === undefined || remote.isOpen || !(await generations.ensure(['']))) {
      telemetry.count(fc, 'misses', missing.length)
      return results
    }
    const storeKeys = missing.map((i) => keys.storeKey(fc, ids[i] as string, params?.[i]) as StoreKey)
    const epoch = flights.epoch
    const reads = await remote.readMany(fc, storeKeys)
    const now = clock.now()
    let misses = 0
    missing.forEach((index, j) => {
      const read = reads[j] as RemoteRead
      if (read.kind !== 'fresh') {
        misses++
        return
      }
      telemetry.count(fc, 'l2Hits')
      const stored = policy.seal(read.value)
      const { expiresAt, graceUntil, tags, tagVersion } = read.entry
      if (flights.epoch === epoch) {
        const refreshAt = refreshPoint(fc.settings, now, expiresAt, true)
        local.fill(l1Keys[index] as string, policy.keep(stored), now, expiresAt, graceUntil, fc.settings.l1Ttl, tags, tagVersion ?? 0, refreshAt)
      }
      results[index] = policy.out(stored)
    })
    if (misses > 0) telemetry.count(fc, 'misses', misses)
    return results
  }

  #answer(fc: FamilyContext, l1Key: string, flight: Flight, found: RemoteRead): unknown {
    if (found.kind !== 'fresh') {
      this.#p.telemetry.count(fc, 'misses')
      return undefined
    }
    return this.#p.land.fromL2(fc, l1Key, flight, found.entry, found.value, fc.settings)
  }
}
