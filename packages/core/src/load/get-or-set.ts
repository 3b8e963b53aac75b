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
 */
import { CacheClosedError, InvalidOptionsError, LoaderError, LoaderTimeoutError } from '../errors.js'
import type { FamilyContext, Loader } from '../family.js'
import type { Generations } from '../l2/generations.js'
import type { Keys } from '../keys.js'
import type { L1Entry, LocalTier } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import type { Stampede } from '../l2/stampede.js'
import type { RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import type { PendingWrites } from '../pending-writes.js'
import { type EntrySettings, type GetOrSetOptions, resolveEntryOptions } from '../options.js'
import { splitTags, tagsOfEntry, unsupportedTags } from '../tags/tag-options.js'
import { TAGS_OK, type TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import { type Flight, type Flights, newFlight } from './flights.js'
import type { Fill, Lander } from './land.js'
import type { LoaderRunner } from './loader-runner.js'

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
interface StaleCopy {
  readonly value: unknown
  readonly stands?: () => boolean
}

/** The entry settings of a call and its own tags, checked. */
interface CallOptions {
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
    const entry = local.entry(l1Key)
    if (entry !== undefined && local.fresh(entry)) {
      telemetry.l1Hit(fc)
      return policy.shared ? entry.promise : Promise.resolve(policy.out(entry.value))
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
      call = this.#callOptions(fc, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const joined = flights.join(l1Key, table.changes, () => this.miss(fc, id, l1Key, params, loader, options, undefined))
    if (joined !== undefined) return joined
    const copy = local.staleOf(l1Key, entry)
    const stale = copy === undefined ? undefined : this.#staleCopy(copy.value, copy.tags, copy.tagVersion)
    const flight = flights.startLoad(l1Key, table.changes)
    const release = () => flights.endLoad(l1Key, flight)
    const { settings, tags } = call
    const familyTags = fc.tags
    const tagsOf = tags === undefined && familyTags === undefined ? undefined : (value: unknown) => tagsOfEntry(tags, familyTags, params, value)
    const miss: Miss = { fc, id, l1Key, params, loader, settings, flight, release, stale, fill: undefined, tagsOf }
    // `finally` runs in a later microtask: the flight is still in the map when this assigns.
    const promise = this.#run(miss).finally(() => {
      if (!flight.background) release()
    })
    flight.promise = promise
    return promise
  }

  /** Checks a call's options: its entry settings, and its tags (which the store must support). */
  #callOptions(fc: FamilyContext, options: GetOrSetOptions | undefined): CallOptions {
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
        if (found.kind === 'fresh') return land.fromL2(m.fc, m.l1Key, m.flight, found.entry, found.value, m.settings.l1Ttl)
        if (found.kind === 'stale') m.stale ??= this.#staleCopy(found.value, found.entry.tags, found.entry.tagVersion ?? 0)
        if (found.kind !== 'down') {
          const claim = await stampede.claim(m.fc, storeKey, m.l1Key, m.settings.stampedeProtection)
          if (claim.kind === 'filled') return land.fromL2(m.fc, m.l1Key, m.flight, claim.entry, claim.value, m.settings.l1Ttl)
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
      late: (value, lifetime) => land.loaded(m.l1Key, m.flight, m.fill, value, m.settings, m.tagsOf, lifetime),
    })
    switch (outcome.kind) {
      case 'value':
        return land.loaded(m.l1Key, m.flight, m.fill, outcome.value, m.settings, m.tagsOf, outcome.lifetime)
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

  /** A stale copy, told for its tags (taken at the miss, it is checked again when served). */
  #staleCopy(value: unknown, tags: readonly string[] | undefined, tagVersion: number): StaleCopy {
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
      settings = this.#callOptions(fc, options).settings
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
function standing(stale: StaleCopy | undefined, flight: Flight): StaleCopy | undefined {
  if (stale === undefined || stale.stands === undefined || stale.stands()) return stale
  flight.tagsStale = true
  return undefined
}
