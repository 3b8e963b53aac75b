import type { Clock } from '../ports.js'

/**
 * `Date.now()` costs more than an L1 hit on some virtualised clock sources (≈170 ns measured
 * against ≈65 ns for a bare lru-cache get), so the hit path reads a cached time that a timer
 * clears at most once per millisecond, the way lru-cache's `ttlResolution` does. The price: while
 * synchronous code blocks the event loop the cached time stands still, so an entry may be served
 * up to that long past its deadline. Only used for the system clock; injected clocks are exact.
 */
export function coarseClock(source: () => number = Date.now): Clock {
  let cached = 0
  const clear = () => {
    cached = 0
  }
  return {
    now() {
      if (cached === 0) {
        cached = source()
        setTimeout(clear, 1).unref()
      }
      return cached
    },
  }
}
