/**
 * Failed bearer tokens per client address, for the admin handler: once an address has presented
 * `maxFailures` wrong or missing tokens within `windowMs`, it is blocked for `windowMs` from the
 * last one, whatever it presents meanwhile, so that guessing the token costs time.
 *
 * The record is bounded: at most `maxAddresses` addresses are kept, and the one that failed least
 * recently is dropped first (a Map keeps insertion order, and a failure moves its address to the
 * end). A client spreading its failures over more addresses than that can thus outlive its own
 * block, but cannot make the process hold more than the bound.
 */

/** Addresses remembered at most, by default. */
export const DEFAULT_MAX_ADDRESSES = 10_000

export interface AuthFailureLimiterOptions {
  /** Failures within the window that block the address. */
  maxFailures: number
  /** Length of the counting window and of the block, in ms. */
  windowMs: number
  /** @default DEFAULT_MAX_ADDRESSES */
  maxAddresses?: number
  clock: { now(): number }
}

export interface AuthFailureLimiter {
  /** Milliseconds until `address` may try again; 0 when it is not blocked. */
  blockedFor(address: string): number
  /** Counts a wrong or missing token from `address`. */
  recordFailure(address: string): void
  /** Addresses currently remembered. */
  readonly size: number
}

interface FailureRecord {
  /** Failures since `windowStart`. */
  count: number
  windowStart: number
  /** 0 until the address reached the limit; then the time its block ends. */
  blockedUntil: number
}

export function createAuthFailureLimiter(options: AuthFailureLimiterOptions): AuthFailureLimiter {
  const { maxFailures, windowMs, clock } = options
  const maxAddresses = options.maxAddresses ?? DEFAULT_MAX_ADDRESSES
  const records = new Map<string, FailureRecord>()

  /** The address's record, or undefined once both its window and its block are over. */
  const current = (address: string, now: number): FailureRecord | undefined => {
    const record = records.get(address)
    if (record === undefined) return undefined
    if (record.blockedUntil > now || now - record.windowStart < windowMs) return record
    records.delete(address) // over: forget it, so that stale addresses do not use up the bound
    return undefined
  }

  return {
    blockedFor(address) {
      const now = clock.now()
      const record = current(address, now)
      return record !== undefined && record.blockedUntil > now ? record.blockedUntil - now : 0
    },
    recordFailure(address) {
      const now = clock.now()
      const record = current(address, now) ?? { count: 0, windowStart: now, blockedUntil: 0 }
      // A window that has passed (with no block running) starts again at this failure.
      if (now - record.windowStart >= windowMs) {
        record.count = 0
        record.windowStart = now
      }
      record.count += 1
      if (record.count >= maxFailures) record.blockedUntil = now + windowMs
      records.delete(address)
      records.set(address, record)
      while (records.size > maxAddresses) {
        const oldest = records.keys().next()
        if (oldest.done === true) break
        records.delete(oldest.value)
      }
    },
    get size() {
      return records.size
    },
  }
}
