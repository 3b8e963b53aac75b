/**
 * Where values enter the cache on the read side: from L2 (a hit) and from the loader (a miss).
 * Sealed by the value policy, filled into L1 unless their flight was voided (an invalidation came
 * after it started) or the cache closed, and, for a loaded value under a lease, into L2. A loaded
 * value with tags lands only while none of them was invalidated after its load began.
 */
import type { FamilyContext } from '../family.js'
import type { L1Entry, LocalTier } from '../l1/local-tier.js'
import type { ValuePolicy } from '../l1/value-policy.js'
import type { Stampede } from '../l2/stampede.js'
import type { RemoteTier } from '../l2/remote-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import type { StaleReason } from '../events.js'
import { type EntrySettings, entryTimes, refreshPoint } from '../options.js'
import type { Clock, RemoteEntry, StoreKey } from '../ports.js'
import { TAGS_OK, type TagTable } from '../tags/tag-table.js'
import type { Telemetry } from '../telemetry.js'
import type { Flight } from './flights.js'
import type { Lifetime } from './loader-runner.js'

export interface LandParts {
  readonly local: LocalTier
  readonly policy: ValuePolicy
  readonly remote: RemoteTier | undefined
  readonly stampede: Stampede | undefined
  readonly tags: TagTable
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
}

/** Where a loaded value goes in L2: under this lease, or nowhere. */
export interface Fill {
  readonly storeKey: StoreKey
  readonly token: string
}

export class Lander {
  readonly #p: LandParts

  constructor(parts: LandParts) {
    this.#p = parts
  }

  /**
   * An L2 hit: counted, kept in L1 with the entry's own times (expired, when `expire()` made it
   * so), handed out.
   */
  fromL2(fc: FamilyContext, l1Key: string, flight: Flight, entry: RemoteEntry, value: unknown, settings: EntrySettings): unknown {
    const { local, policy, telemetry, life, clock } = this.#p
    telemetry.count(fc, 'l2Hits')
    const stored = policy.seal(value)
    if (!flight.void && !life.closed) {
      const now = clock.now()
      const expired = entry.expired === true
      const refreshAt = expired ? Infinity : refreshPoint(settings, now, entry.expiresAt, true)
      local.fill(l1Key, policy.keep(stored), now, entry.expiresAt, entry.graceUntil, settings.l1Ttl, entry.tags, entry.tagVersion ?? 0, refreshAt, expired)
    }
    return policy.out(stored)
  }

  /**
   * A loaded value: kept in L1, and filled into L2 under the lease when there is one. `tagsOf`
   * names its tags (for a flight with a `tagVersion`).
   */
  loaded(
    l1Key: string,
    flight: Flight,
    fill: Fill | undefined,
    loaded: unknown,
    settings: EntrySettings,
    tagsOf?: (value: unknown) => readonly string[] | undefined,
    lifetime?: Lifetime,
  ): unknown {
    const { local, policy, remote, stampede, life, clock } = this.#p
    const value = policy.seal(loaded)
    if (value === undefined || (value === null && !settings.negativeCaching) || life.closed) return value
    if (flight.void && !(flight.voidedBy === 'startup' && fill !== undefined)) {
      // Voided: the value must not land. An invalidation of the key came with a write, which voided
      // the lease in L2 too. A flush did not (on bus recovery, a namespace bump): the lease would
      // keep the other processes polling for a fill that never comes, `lease.waitTimeout` each, so
      // it is given up. (Should a write have come since all the same, this deletes the key it just
      // changed: a miss later, never a stale value.)
      if (fill !== undefined && flight.voidedBy !== undefined) stampede?.abandon(fill.storeKey, fill.token)
      return value
    }
    const tagVersion = flight.tagVersion ?? 0
    const tags = flight.tagVersion === undefined || tagsOf === undefined ? undefined : tagsOf(value)
    if (tags !== undefined && this.#p.tags.check(tags, tagVersion, false) !== TAGS_OK) {
      flight.tagsStale = true
      // No fill will come under this lease: give it up, so that nobody waits it out.
      if (fill !== undefined) stampede?.abandon(fill.storeKey, fill.token)
      return value
    }
    const now = clock.now()
    const { expiresAt, graceUntil } = entryTimes(lifetime === undefined ? settings : { ...settings, ...lifetime }, now)
    if (!flight.void) local.fill(l1Key, policy.keep(value), now, expiresAt, graceUntil, settings.l1Ttl, tags, tagVersion, refreshPoint(settings, now, expiresAt))
    if (fill !== undefined && stampede !== undefined && remote !== undefined && !remote.isOpen) {
      stampede.fill(fill.storeKey, fill.token, tags === undefined ? { value, expiresAt, graceUntil } : { value, expiresAt, graceUntil, tags, tagVersion })
    }
    return value
  }

  /** A stale copy standing in for a failing or slow loader. */
  stale(fc: FamilyContext, id: string, stale: Pick<L1Entry, 'value'>, reason: StaleReason): unknown {
    this.#p.telemetry.count(fc, 'staleServed')
    this.#p.telemetry.emit('stale-served', { key: id, family: fc.id, reason })
    return this.#p.policy.out(stale.value)
  }
}
