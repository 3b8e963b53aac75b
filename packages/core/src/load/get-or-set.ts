/**
 * `getOrSet`: the miss pipeline. A call walks down, each step answering with a tagged result,
 * and one `Miss` travels with it:
 *
 *   keys.l1Key → local hit → flights.join ?? flights.startLoad (a tagged load notes the tag sequence)
 *     → remote.read: fresh → land from L2 | stale → keep as the stale copy | miss | down
 *     → stampede.claim: filled → land from L2 | lease | alone
 *     → loaderRunner.run: value → land (L1; L2 under the lease) | error, timeouts → the stale copy or throw
 *
 * L2 is skipped when it is absent, the breaker is open, or the key's generations cannot be read
 * (then nothing is cached: the loader answers alone). A loader failure with a stale copy within
 * grace serves the copy (fail-safe); a soft timeout serves it and lets the load finish behind.
 * A tagged load takes the tag sequence before anything else (`Flight.tagVersion`): its value lands
 * only if none of its tags was invalidated since (`Lander.loaded`).
 *
 * Two cases answer at once and reload behind, one reload per key in this process (a background
 * flight) and, through the lease, in the cluster: a hit past its eager refresh point, and an
 * entry `expire()` made stale (in L1, or read so from L2) within its grace. The reload reads L2
 * first (another process may have reloaded already), then loads under the lease; a failed reload
 * keeps the current value. `adaptiveTtl` gives a loaded value its TTL by how often it is read.
 */
import { CacheClosedError, InvalidOptionsError, LoaderError, LoaderTimeoutError } from '../errors.js'
import type { FamilyContext, Loader } from '../family.js'
import type { Generations } from '../l2/generations.js'
import type { Keys } from '../keys.js'
import { type L1Entry, type LocalTier, promiseOf } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import type { Stampede } from '../l2/stampede.js'
import { MISS, type RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import type { PendingWrites } from '../pending-writes.js'
import { type EntrySettings, type GetOrSetOptions, resolveEntryOptions } from '../options.js'
import { splitTags, tagsOfEntry, unsupportedTags } from '../tags/tag-options.js'
import { TAGS_OK, type TagTable } from '../tags/tag-table.js'
import type { Clock, RemoteEntry, StoreKey } from '../ports.js'
import type { Telemetry } from '../telemetry.js'
import { type Flight, type Flights, newFlight } from './flights.js'
import type { Fill, Lander } from './land.js'
import type { Lifetime, LoaderRunner } from './loader-runner.js'

export interface GetOrSetParts {
  readonly local: LocalTier
  readonly policy: ValuePolicy
  readonly flights: Flights
  readonly keys: Keys
  readonly generations: Generations
  readonly remote: RemoteTier | undefined
  readonly stampede: Stampede | undefined
  readonly runner: LoaderRunner
  readonly land: Lander
  readonly tags: TagTable
  readonly pending: PendingWrites
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
}

/** One miss on its way down. */
interface Miss {
  readonly fc: FamilyContext
  readonly id: string
  readonly l1Key: string
  readonly params: unknown
  readonly loader: Loader<unknown>
  readonly settings: EntrySettings
  readonly flight: Flight
  readonly release: () => void
  /** The stale copy within grace (L1's first, else L2's). */
  stale: StaleCopy | undefined
  /** Where the loaded value fills L2 (a lease this process holds), if anywhere. */
  fill: Fill | undefined
  /** The tags of a loaded value (the call's and the family's); absent when neither has any. */
  readonly tagsOf: ((value: unknown) => readonly string[] | undefined) | undefined
}

/** A stale copy; `stands` when it is tagged: its tags may be invalidated while the loader runs. */
export interface StaleCopy {
  readonly value: unknown
  readonly stands?: () => boolean
}

/** The entry settings of a call and its own tags, checked. */
export interface CallOptions {
  readonly settings: EntrySettings
  readonly tags: readonly string[] | undefined
}

export class GetOrSet {
  readonly #p: GetOrSetParts

  constructor(parts: GetOrSetParts) {
    this.#p = parts
  }

  /** A family's `getOrSet` (the default family's hit path is the cache's own). */
  getOrSet(fc: FamilyContext, id: string, params: unknown, loader: Loader<unknown>, options?: GetOrSetOptions): Promise<unknown> {
    const { life, keys, local, telemetry, policy, generations } = this.#p
    if (life.closed) return Promise.reject(new CacheClosedError())
    const l1Key = keys.l1Key(fc, id, params)
    if (l1Key === undefined) {
      // The key's generations are not in memory yet: read them, then start over.
      return generations.ensure(keys.allGenerationNames(fc, params)).then((ok) => {
        if (ok && keys.l1Key(fc, id, params) !== undefined) return this.getOrSet(fc, id, params, loader, options)
        return this.#uncached(fc, id, loader, options)
      })
    }
    fc.adaptive?.record(l1Key)
    const entry = local.entry(l1Key)
    if (entry !== undefined && local.settled(entry)) {
      telemetry.l1Hit(fc)
      return policy.shared ? promiseOf(entry) : Promise.resolve(policy.out(entry.value))
    }
    return this.miss(fc, id, l1Key, params, loader, options, entry)
  }

  /** The L1 miss (`entry`: the key's L1 entry, not fresh, if any). */
  miss(
    fc: FamilyContext,
    id: string,
    l1Key: string,
    params: unknown,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    entry: L1Entry | undefined,
  ): Promise<unknown> {
    const { life, flights, local, tags: table } = this.#p
    if (life.closed) return Promise.reject(new CacheClosedError())
    if (typeof loader !== 'function') return Promise.reject(new InvalidOptionsError('loader', `expected a function (got ${typeof loader})`))
    let call: CallOptions
    try {
      call = this.callOptions(fc, options)
    } catch (error) {
      return Promise.reject(error)
    }
    if (entry !== undefined) {
      const now = this.#servedNow(fc, id, l1Key, params, loader, call, entry)
      if (now !== undefined) return now
    }
    const joined = flights.join(l1Key, table.changes, () => this.miss(fc, id, l1Key, params, loader, options, undefined))
    if (joined !== undefined) return joined
    const copy = local.staleOf(l1Key, entry)
    const stale = copy === undefined ? undefined : this.staleCopy(copy.value, local.tagsOf(copy), local.tagVersionOf(copy))
    const miss = this.#newMiss(fc, id, l1Key, params, loader, call, stale)
    const { flight, release } = miss
    // `finally` runs in a later microtask: the flight is still in the map when this assigns.
    const promise = this.#run(miss).finally(() => {
      if (!flight.background) release()
    })
    flight.promise = promise
    return promise
  }

  /** A miss with its flight started. */
  #newMiss(fc: FamilyContext, id: string, l1Key: string, params: unknown, loader: Loader<unknown>, call: CallOptions, stale: StaleCopy | undefined): Miss {
    const flight = this.#p.flights.startLoad(l1Key, this.#p.tags.changes)
    const release = () => this.#p.flights.endLoad(l1Key, flight)
    const { settings, tags } = call
    const familyTags = fc.tags
    const tagsOf = tags === undefined && familyTags === undefined ? undefined : (value: unknown) => tagsOfEntry(tags, familyTags, params, value)
    return { fc, id, l1Key, params, loader, settings, flight, release, stale, fill: undefined, tagsOf }
  }

  /**
   * The answer of an entry that is served at once while one reload runs behind, if it is one: a
   * fresh entry past its eager refresh point (the hit paths let it through for that alone), or an
   * expired one within grace whose tags stand.
   */
  #servedNow(fc: FamilyContext, id: string, l1Key: string, params: unknown, loader: Loader<unknown>, call: CallOptions, entry: L1Entry): Promise<unknown> | undefined {
    const { local, flights, telemetry, policy, land } = this.#p
    if (local.fresh(entry)) {
      // Once per entry: a hit while the reload runs, or after another process took the lease, is a plain hit.
      if (local.takeRefresh(entry) && flights.load(l1Key) === undefined) this.#refreshBehind(fc, id, l1Key, params, loader, call, entry, true)
      telemetry.l1Hit(fc)
      return policy.shared ? promiseOf(entry) : Promise.resolve(policy.out(entry.value))
    }
    if (!local.expired(entry)) return undefined
    const copy = local.staleOf(l1Key, entry)
    if (copy === undefined) return undefined
    if (flights.load(l1Key) === undefined) this.#refreshBehind(fc, id, l1Key, params, loader, call, copy, false)
    return Promise.resolve(land.stale(fc, id, copy, 'expired'))
  }

  /** Starts the one background reload of an entry served meanwhile (`eager`: still fresh). */
  #refreshBehind(fc: FamilyContext, id: string, l1Key: string, params: unknown, loader: Loader<unknown>, call: CallOptions, entry: L1Entry, eager: boolean): void {
    const miss = this.#newMiss(fc, id, l1Key, params, loader, call, this.staleCopy(entry.value, this.#p.local.tagsOf(entry), this.#p.local.tagVersionOf(entry)))
    miss.flight.promise = this.#behind(miss, undefined, this.#p.local.expiresAt(entry), eager)
  }

  /**
   * Runs `#reload` as the flight's background work: never rejects (a failure is logged and the
   * current value is what joiners get), and ends the flight when done.
   */
  #behind(m: Miss, known: StoreKey | undefined, replaces: number, eager: boolean): Promise<unknown> {
    m.flight.background = true
    return this.#reload(m, known, replaces, eager)
      .catch((error: unknown) => {
        this.#p.telemetry.background('refresh', error)
        return this.#p.policy.out((m.stale as StaleCopy).value)
      })
      .finally(m.release)
  }

  /**
   * The background reload of a value served meanwhile (`m.stale`, expiring at `replaces`), in its
   * own flight. L2 copies count only when written since (they expire at another time). An eager
   * refresh asks for the lease without waiting: held elsewhere, that process reloads and this one
   * keeps its copy; then reads L2, in case a refreshed copy landed. An expired entry's reload
   * reads L2 first (unless `known`: just read), then claims the lease as a miss would, waiting for
   * another holder's fill. Then the loader. A failed reload keeps the current value and its grace.
   * Resolves what the flight's joiners get.
   */
  async #reload(m: Miss, known: StoreKey | undefined, replaces: number, eager: boolean): Promise<unknown> {
    const { remote, stampede, keys, telemetry, runner, land, pending, tags, policy } = this.#p
    const current = () => policy.out((m.stale as StaleCopy).value)
    telemetry.count(m.fc, 'refreshes')
    if (m.tagsOf !== undefined && m.flight.tagVersion === undefined) m.flight.tagVersion = tags.needsSequence ? await tags.tagVersionNow() : tags.latest
    if (remote !== undefined && stampede !== undefined && !remote.isOpen && !pending.holds(m.l1Key)) {
      const storeKey = known ?? keys.storeKey(m.fc, m.id, m.params) ?? (await keys.resolveStoreKey(m.fc, m.id, m.params))
      if (storeKey !== undefined) {
        // Only a copy written since replaces the current one: until this process's own expiry
        // reached the store, L2 still holds the copy it expired, unmarked. A copy written since
        // expires at another time (not always later: jitter); one written in the same millisecond
        // with the same TTL looks the same and is loaded again, which costs a load, not a stale value.
        const since = (entry: RemoteEntry) => entry.expired !== true && entry.expiresAt !== replaces
        if (eager) {
          // The lease first, then L2: a copy another process refreshed (written since) is
          // taken, its lease given back by filling with that copy; read before the lease, a fill
          // landing in between would go unseen and the key be reloaded twice.
          const grant = await stampede.tryLease(storeKey, m.l1Key)
          if (grant === false) return current()
          const found = await remote.read(m.fc, storeKey)
          if (found.kind === 'fresh' && since(found.entry)) {
            if (grant !== undefined) stampede.fill(storeKey, grant, found.entry)
            return land.fromL2(m.fc, m.l1Key, m.flight, found.entry, found.value, m.settings)
          }
          if (grant !== undefined) m.fill = { storeKey, token: grant }
        } else {
          // A key just read (expired) from L2 is not read again.
          const found = known === undefined ? await remote.read(m.fc, storeKey) : MISS
          if (found.kind === 'fresh' && since(found.entry)) return land.fromL2(m.fc, m.l1Key, m.flight, found.entry, found.value, m.settings)
          if (found.kind !== 'down') {
            const claim = await stampede.claim(m.fc, storeKey, m.l1Key, m.settings.stampedeProtection, since)
            if (claim.kind === 'filled') return land.fromL2(m.fc, m.l1Key, m.flight, claim.entry, claim.value, m.settings)
            if (claim.kind === 'lease') m.fill = { storeKey, token: claim.token }
          }
        }
      }
    }
    // The caller was answered: no soft timeout; the hard one still bounds the load.
    const settings = m.settings.timeout === undefined ? m.settings : { ...m.settings, timeout: undefined }
    const outcome = await runner.run({
      fc: m.fc,
      id: m.id,
      loader: m.loader,
      settings,
      stale: m.stale,
      flight: m.flight,
      release: m.release,
      late: (value, lifetime) => land.loaded(m.l1Key, m.flight, m.fill, value, m.settings, m.tagsOf, this.lifetime(m.fc, m.l1Key, lifetime)),
    })
    if (outcome.kind === 'value') return land.loaded(m.l1Key, m.flight, m.fill, outcome.value, m.settings, m.tagsOf, this.lifetime(m.fc, m.l1Key, outcome.lifetime))
    if (outcome.kind === 'error') this.#loaderFailed(m.fc, m.id, outcome.error)
    else telemetry.count(m.fc, 'loaderTimeouts')
    return current()
  }

  /** The lifetime of a loaded value: the loader's choice, else the family's adaptive TTL. */
  lifetime(fc: FamilyContext, l1Key: string, chosen: Lifetime | undefined): Lifetime | undefined {
    const adaptive = fc.adaptive
    if (adaptive === undefined || chosen?.ttl !== undefined) return chosen
    return { ...chosen, ttl: adaptive.ttlOf(l1Key) }
  }

  /** Checks a call's options: its entry settings, and its tags (which the store must support). */
  callOptions(fc: FamilyContext, options: GetOrSetOptions | undefined): CallOptions {
    if (options === undefined) {
      if (fc.tags !== undefined && !this.#p.tags.supported) throw unsupportedTags()
      return { settings: fc.settings, tags: undefined }
    }
    const { tags, rest } = splitTags(options)
    if ((tags !== undefined || fc.tags !== undefined) && !this.#p.tags.supported) throw unsupportedTags()
    return { settings: rest === undefined ? fc.settings : resolveEntryOptions(fc.settings, rest), tags }
  }

  async #run(m: Miss): Promise<unknown> {
    const { remote, stampede, keys, telemetry, runner, land, pending, tags } = this.#p
    // The sequence before the loader runs: an invalidation after it moves a tag past it.
    if (m.tagsOf !== undefined) m.flight.tagVersion = tags.needsSequence ? await tags.tagVersionNow() : tags.latest
    // A key with a background write still queued: L2 holds what the write replaced.
    if (remote !== undefined && stampede !== undefined && !remote.isOpen && !pending.holds(m.l1Key)) {
      const storeKey = keys.storeKey(m.fc, m.id, m.params) ?? (await keys.resolveStoreKey(m.fc, m.id, m.params))
      if (storeKey !== undefined) {
        const found = await remote.read(m.fc, storeKey)
        if (found.kind === 'fresh') return land.fromL2(m.fc, m.l1Key, m.flight, found.entry, found.value, m.settings)
        if (found.kind === 'stale') {
          const copy = this.staleCopy(found.value, found.entry.tags, found.entry.tagVersion ?? 0)
          // Expired by `expire()`: served now (and kept in L1, expired), reloaded behind.
          if (found.entry.expired === true && standing(copy, m.flight) !== undefined) return this.#servedExpired(m, storeKey, found.entry, found.value, copy)
          m.stale ??= copy
        }
        if (found.kind !== 'down') {
          const claim = await stampede.claim(m.fc, storeKey, m.l1Key, m.settings.stampedeProtection)
          if (claim.kind === 'filled') return land.fromL2(m.fc, m.l1Key, m.flight, claim.entry, claim.value, m.settings)
          if (claim.kind === 'lease') m.fill = { storeKey, token: claim.token }
        }
      }
    }
    telemetry.count(m.fc, 'misses')
    const outcome = await runner.run({
      fc: m.fc,
      id: m.id,
      loader: m.loader,
      settings: m.settings,
      stale: m.stale,
      flight: m.flight,
      release: m.release,
      late: (value, lifetime) => land.loaded(m.l1Key, m.flight, m.fill, value, m.settings, m.tagsOf, this.lifetime(m.fc, m.l1Key, lifetime)),
    })
    switch (outcome.kind) {
      case 'value':
        return land.loaded(m.l1Key, m.flight, m.fill, outcome.value, m.settings, m.tagsOf, this.lifetime(m.fc, m.l1Key, outcome.lifetime))
      case 'error': {
        this.#loaderFailed(m.fc, m.id, outcome.error)
        const stale = standing(m.stale, m.flight)
        if (stale !== undefined) return land.stale(m.fc, m.id, stale, 'loader-error')
        throw new LoaderError(m.id, outcome.error)
      }
      case 'soft-timeout':
        // The runner answers a soft timeout only with a copy that stands at that moment.
        m.flight.background = true
        return land.stale(m.fc, m.id, m.stale as StaleCopy, 'soft-timeout')
      case 'hard-timeout': {
        telemetry.count(m.fc, 'loaderTimeouts')
        const stale = standing(m.stale, m.flight)
        if (stale !== undefined) return land.stale(m.fc, m.id, stale, 'hard-timeout')
        throw new LoaderTimeoutError(m.id, m.settings.hardTimeout as number)
      }
    }
  }

  /**
   * An entry read expired from L2: its callers get it now and it stays in L1 (expired, so that
   * this process's next readers get it at once too); this flight goes on in the background as
   * the reload, and ends the flight when done.
   */
  #servedExpired(m: Miss, storeKey: StoreKey, entry: RemoteEntry, value: unknown, copy: StaleCopy): unknown {
    const { land, telemetry } = this.#p
    const served = land.fromL2(m.fc, m.l1Key, m.flight, entry, value, m.settings)
    m.stale = copy
    void this.#behind(m, storeKey, entry.expiresAt, false)
    telemetry.count(m.fc, 'staleServed')
    telemetry.emit('stale-served', { key: m.id, family: m.fc.id, reason: 'expired' })
    return served
  }

  /** A stale copy, told for its tags (taken at the miss, it is checked again when served). */
  staleCopy(value: unknown, tags: readonly string[] | undefined, tagVersion: number): StaleCopy {
    if (tags === undefined) return { value }
    const table = this.#p.tags
    return { value, stands: () => table.check(tags, tagVersion, true) === TAGS_OK }
  }

  #loaderFailed(fc: FamilyContext, id: string, error: unknown): void {
    const { telemetry } = this.#p
    telemetry.count(fc, 'loaderErrors')
    telemetry.emit('loader-error', { key: id, family: fc.id, error })
    telemetry.logger.warn({ err: error, key: id, family: fc.id }, 'tiercache loader failed')
  }

  /** Generations unreadable (L2 down): answer from the loader alone, cache nothing. */
  #uncached(fc: FamilyContext, id: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined): Promise<unknown> {
    const { telemetry, runner, policy } = this.#p
    let settings: EntrySettings
    try {
      settings = this.callOptions(fc, options).settings
    } catch (error) {
      return Promise.reject(error)
    }
    const flight = newFlight()
    flight.void = true
    telemetry.count(fc, 'misses')
    return runner.run({ fc, id, loader, settings, stale: undefined, flight, release: () => {}, late: () => {} }).then((outcome) => {
      if (outcome.kind === 'value') return policy.seal(outcome.value)
      if (outcome.kind === 'error') {
        telemetry.count(fc, 'loaderErrors')
        telemetry.emit('loader-error', { key: id, family: fc.id, error: outcome.error })
        throw new LoaderError(id, outcome.error)
      }
      telemetry.count(fc, 'loaderTimeouts')
      throw new LoaderTimeoutError(id, settings.hardTimeout as number)
    })
  }
}

/** The stale copy if it may still be served; one that does not stand marks the flight, so that later joiners load again. */
export function standing(stale: StaleCopy | undefined, flight: Flight): StaleCopy | undefined {
  if (stale === undefined || stale.stands === undefined || stale.stands()) return stale
  flight.tagsStale = true
  return undefined
}
