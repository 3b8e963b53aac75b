import { onTestFinished } from 'vitest'
import {
  type Clock,
  type RemoteStore,
  type TieredCache,
  type TieredCacheOptions,
  createTieredCache,
} from '../src/index.js'

/** A clock that moves only when told to. */
export function fakeClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start
  return {
    now: () => now,
    advance(ms) {
      now += ms
    },
    set(ms) {
      now = ms
    },
  }
}

/** A cache closed when the test finishes. */
export function cacheFor(options?: TieredCacheOptions): TieredCache {
  const cache = createTieredCache(options)
  onTestFinished(() => cache.close())
  return cache
}

export type Fault = 'error' | 'hang' | { delayMs: number }

/**
 * Wraps a store: every method can be made to fail, hang or slow down, and calls are counted.
 * `fail('*', 'error')` affects every method.
 */
export function chaos<S extends RemoteStore>(store: S) {
  const faults = new Map<string, Fault>()
  const calls: Record<string, number> = {}
  const hung: (() => void)[] = []
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const original = Reflect.get(target, property, receiver) as unknown
      if (typeof original !== 'function' || typeof property !== 'string') return original
      return (...args: unknown[]) => {
        calls[property] = (calls[property] ?? 0) + 1
        const fault = faults.get(property) ?? faults.get('*')
        if (fault === undefined || property === 'close') return (original as (...a: unknown[]) => unknown).apply(target, args)
        if (fault === 'error') return Promise.reject(new Error(`injected ${property} failure`))
        if (fault === 'hang') return new Promise((resolve) => hung.push(() => resolve(undefined)))
        return new Promise((resolve, reject) =>
          setTimeout(() => {
            Promise.resolve((original as (...a: unknown[]) => unknown).apply(target, args)).then(resolve, reject)
          }, fault.delayMs),
        )
      }
    },
  })
  return {
    store: wrapped as S,
    calls,
    fail(method: string, fault: Fault) {
      faults.set(method, fault)
    },
    heal(method = '*') {
      if (method === '*') faults.clear()
      else faults.delete(method)
    },
    /** Lets hung calls finish (with `undefined`), so nothing is left pending. */
    releaseHung() {
      for (const release of hung.splice(0)) release()
    },
  }
}

/** A promise with its resolvers exposed. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Resolves with the next payload of an event. */
export function nextEvent<T>(on: (listener: (payload: T) => void) => () => void, filter: (payload: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = on((payload) => {
      if (!filter(payload)) return
      off()
      resolve(payload)
    })
  })
}

export const flush = () => new Promise<void>((resolve) => setImmediate(resolve))
