/**
 * Distributed stampede protection: on an L2 miss one process in the cluster loads, under a lease
 * (Facebook memcache leases); the others wait for its fill.
 *
 * `claim()` answers
 * - `lease`: this process holds the key's lease: load and fill with its token (`fill`);
 * - `filled`: another process filled while this one waited: serve that;
 * - `alone`: L2 cannot coordinate (it failed, the wait timed out, or protection is off and
 *   someone else holds the lease): load, and leave L2 alone.
 *
 * A waiter polls L2 every `lease.pollInterval` (a bus message about the key wakes it early) until
 * the fill lands or `lease.waitTimeout` passes. A poll that misses asks for the lease again: when
 * the holder died its lease expires, and exactly one waiter takes it over.
 *
 * A lease newly granted is checked against L2 once more: the holder before may have filled and
 * released it between this process's read and its request (a miss read, then descheduled). The
 * copy found is served and the lease handed back; without that read the key is loaded twice.
 *
 * Leases this process holds are remembered until filled. One it already holds (its fill was
 * dropped by the open breaker or failed, or its load failed) is answered from memory: the store
 * would refuse it, and this process would wait `lease.waitTimeout` for a fill only it can make. A
 * request that timed out in the guard may still have run in the store; when the store answers
 * late, its token is remembered the same way, and the value this process loaded meanwhile (its
 * L1 copy) is filled with it, so that the other processes waiting on it get the value.
 */
import type { FamilyContext } from '../family.js'
import type { LocalTier } from '../l1/local-tier.js'
import type { Lifecycle } from '../lifecycle.js'
import type { Clock, LeaseGrant, RemoteEntry, StoreKey } from '../ports.js'
import type { Telemetry } from '../telemetry.js'
import type { RemoteTier } from './remote-tier.js'

export type Claim =
  | { readonly kind: 'lease'; readonly token: string }
  | { readonly kind: 'filled'; readonly entry: RemoteEntry; readonly value: unknown }
  | { readonly kind: 'alone' }

const ALONE: Claim = Object.freeze({ kind: 'alone' })

/** Which fresh L2 copy may answer a claim instead of a load. */
export type Accept = (entry: RemoteEntry) => boolean
const ANY_COPY: Accept = () => true

interface OwnLease {
  readonly token: string
  readonly storeKey: StoreKey
  readonly l1Key: string
  /** Clock time before which the store still holds it (measured from the request: never later). */
  readonly until: number
}

/** Above this many remembered leases, expired ones are swept on the next grant. */
const OWN_LEASE_SWEEP = 1024

/** One string per store key, for the map of leases. */
function leaseId(key: StoreKey): string {
  return `${key.family}\u0001${key.generation}\u0001${key.id}`
}

export interface StampedeParts {
  readonly remote: RemoteTier
  readonly local: LocalTier
  readonly telemetry: Telemetry
  readonly life: Lifecycle
  readonly clock: Clock
  readonly lease: { readonly ttl: number; readonly waitTimeout: number; readonly pollInterval: number }
}

export class Stampede {
  readonly #p: StampedeParts
  readonly #own = new Map<string, OwnLease>()
  /** Waiters by L1 key: an invalidation of the key wakes them early. */
  readonly #waiters = new Map<string, Set<() => void>>()
  #sweepAt = OWN_LEASE_SWEEP

  constructor(parts: StampedeParts) {
    this.#p = parts
  }

  /**
   * `accept`: which fresh L2 copy may answer instead of a load (a reload takes only a copy
   * written since the one it replaces).
   */
  async claim(fc: FamilyContext, storeKey: StoreKey, l1Key: string, wait: boolean, accept: Accept = ANY_COPY): Promise<Claim> {
    const held = this.#holds(storeKey)
    const grant = await this.#lease(storeKey, l1Key)
    if (grant === undefined) return ALONE
    if (grant !== false) return held ? { kind: 'lease', token: grant } : this.#granted(fc, storeKey, grant, accept)
    if (!wait) return ALONE
    this.#p.telemetry.count(fc, 'leaseWaits')
    const waited = await this.#waitForFill(fc, l1Key, storeKey, accept)
    if (waited !== undefined) return waited
    const again = await this.#lease(storeKey, l1Key)
    return typeof again === 'string' ? { kind: 'lease', token: again } : ALONE
  }

  /**
   * The lease for a background reload of a value still fresh (eager refresh): its token, `false`
   * when another process holds it (that one reloads; nobody waits), `undefined` when L2 failed.
   */
  tryLease(storeKey: StoreKey, l1Key: string): Promise<string | false | undefined> {
    return this.#lease(storeKey, l1Key)
  }

  /** Fills L2 with a loaded value under the lease, in the background. */
  fill(storeKey: StoreKey, token: string, entry: RemoteEntry): void {
    // Landed or refused, the lease is no longer ours. A fill that failed may not have run: the
    // lease stays remembered, so the next miss here fills with it instead of waiting.
    this.#p.remote.guard.run('fillWithLease', (store) => store.fillWithLease(storeKey, token, entry)).then(
      () => this.#forget(storeKey, token),
      () => {},
    )
  }

  /**
   * Gives up a lease without filling (the loaded value must not land): the key is deleted, which
   * releases the lease, so that the processes waiting on it load now instead of waiting it out,
   * and this process forgets it, so that its next miss asks for a new one.
   */
  abandon(storeKey: StoreKey, token: string): void {
    this.#forget(storeKey, token)
    void this.#p.remote.write('delete', [storeKey], (store) => store.delete([storeKey]))
  }

  /** The key was invalidated: its waiters poll now (the fill they wait for may have landed). */
  wake(l1Key: string): void {
    const waiters = this.#waiters.get(l1Key)
    if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  /** Wakes every waiter (on close). */
  wakeAll(): void {
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake()
  }

  /** The breaker closed: fills it dropped may be awaited by other processes. */
  refillOwn(): void {
    const now = this.#p.clock.now()
    for (const lease of [...this.#own.values()]) {
      if (lease.until > now) this.#fillLate(lease.l1Key, lease.storeKey, lease.token)
    }
  }

  /** The lease token, `false` when someone else holds it, `undefined` when L2 failed. */
  async #lease(storeKey: StoreKey, l1Key: string): Promise<string | false | undefined> {
    const { clock, remote, life } = this.#p
    const id = leaseId(storeKey)
    const own = this.#own.get(id)
    if (own !== undefined) {
      if (own.until > clock.now()) return own.token
      this.#own.delete(id)
    }
    const requestedAt = clock.now()
    const ttl = this.#p.lease.ttl
    let request: Promise<LeaseGrant> | undefined
    try {
      const grant = await remote.guard.run('acquireLease', (store) => (request = store.acquireLease(storeKey, ttl)))
      if (!grant.granted) return false
      this.#hold(id, storeKey, l1Key, grant.token, requestedAt + ttl)
      return grant.token
    } catch {
      request?.then(
        (grant) => {
          if (!grant.granted || life.closed) return
          this.#hold(id, storeKey, l1Key, grant.token, requestedAt + ttl)
          this.#fillLate(l1Key, storeKey, grant.token)
        },
        () => {},
      )
      return undefined
    }
  }

  #hold(id: string, storeKey: StoreKey, l1Key: string, token: string, until: number): void {
    if (this.#own.size >= this.#sweepAt) {
      const now = this.#p.clock.now()
      for (const [key, lease] of this.#own) if (lease.until <= now) this.#own.delete(key)
      this.#sweepAt = Math.max(OWN_LEASE_SWEEP, this.#own.size * 2)
    }
    this.#own.set(id, { token, storeKey, l1Key, until })
  }

  #forget(storeKey: StoreKey, token: string): void {
    const id = leaseId(storeKey)
    if (this.#own.get(id)?.token === token) this.#own.delete(id)
  }

  /** Fills L2 from the fresh L1 copy with a lease granted after its request timed out. */
  #fillLate(l1Key: string, storeKey: StoreKey, token: string): void {
    const entry = this.#p.local.peek(l1Key)
    // No copy standing (not loaded yet, invalidated, evicted, its tags invalidated): the lease stays
    // remembered for the next miss.
    if (entry === undefined || !this.#p.local.fresh(entry) || this.#p.remote.isOpen) return
    // A time L1 could not tell (past 2^31 ms, see LocalTier) must not reach L2 shortened.
    const local = this.#p.local
    if (!local.exact(entry)) return
    const { value } = entry
    const tags = local.tagsOf(entry)
    const tagVersion = local.tagVersionOf(entry)
    const expiresAt = local.expiresAt(entry)
    const graceUntil = local.graceUntil(entry)
    this.fill(storeKey, token, tags === undefined ? { value, expiresAt, graceUntil } : { value, expiresAt, graceUntil, tags, tagVersion })
  }

  /** Polls for the holder's fill; resolves it, the lease taken over, or `undefined` (timeout, L2 down). */
  async #waitForFill(fc: FamilyContext, l1Key: string, storeKey: StoreKey, accept: Accept): Promise<Claim | undefined> {
    const { remote, life } = this.#p
    const { waitTimeout, pollInterval } = this.#p.lease
    // Bounded by count (deterministic under a fake clock) and by real time (slow L2 polls).
    const polls = Math.max(1, Math.ceil(waitTimeout / pollInterval))
    const deadline = performance.now() + waitTimeout
    for (let i = 0; i < polls && !life.closed && (i === 0 || performance.now() < deadline); i++) {
      await this.#sleepOrWake(l1Key, pollInterval)
      const found = await remote.read(fc, storeKey)
      if (found.kind === 'down') return undefined
      if (found.kind === 'fresh' && accept(found.entry)) return { kind: 'filled', entry: found.entry, value: found.value }
      const grant = await this.#lease(storeKey, l1Key)
      if (grant === undefined) return undefined
      if (grant === false) continue
      return this.#granted(fc, storeKey, grant, accept)
    }
    return undefined
  }

  /**
   * A lease just granted. The holder before may have filled (and released it) after this process
   * read L2: that copy is served, and the lease handed back by filling with it (refused, harmlessly,
   * when a write voided the lease since), so that nobody waits on a lease no load holds.
   */
  async #granted(fc: FamilyContext, storeKey: StoreKey, token: string, accept: Accept): Promise<Claim> {
    const found = await this.#p.remote.read(fc, storeKey)
    if (found.kind !== 'fresh' || !accept(found.entry)) return { kind: 'lease', token }
    this.fill(storeKey, token, found.entry)
    return { kind: 'filled', entry: found.entry, value: found.value }
  }

  /** Whether this process holds the key's lease already (then nobody else filled it). */
  #holds(storeKey: StoreKey): boolean {
    const own = this.#own.get(leaseId(storeKey))
    return own !== undefined && own.until > this.#p.clock.now()
  }

  #sleepOrWake(l1Key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#waiters.get(l1Key)
      if (set === undefined) this.#waiters.set(l1Key, (set = new Set()))
      const waiters = set
      const wake = () => {
        clearTimeout(timer)
        waiters.delete(wake)
        if (waiters.size === 0 && this.#waiters.get(l1Key) === waiters) this.#waiters.delete(l1Key)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      waiters.add(wake)
    })
  }
}
