import { type Clock, type RemoteStore, type TieredCache, type TieredCacheOptions, createTieredCache } from '@tiercache/core'
import { Registry } from 'prom-client'
import { onTestFinished } from 'vitest'
import { type PrometheusMetrics, type PrometheusMetricsOptions, prometheusMetrics } from '../src/index.js'

/** A clock that moves only when told to. */
export function fakeClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start
  return {
    now: () => now,
    advance(ms) {
      now += ms
    },
  }
}

/** A cache closed when the test finishes. */
export function cacheFor(options?: TieredCacheOptions): TieredCache {
  const cache = createTieredCache(options)
  onTestFinished(() => cache.close())
  return cache
}

/** A registry of its own per test. */
export function registryFor(): Registry {
  const registry = new Registry()
  onTestFinished(() => registry.clear())
  return registry
}

/** `prometheusMetrics()`, closed when the test finishes (so no test leaves the channels subscribed). */
export function exported(cache: TieredCache, options?: PrometheusMetricsOptions): PrometheusMetrics {
  const metrics = prometheusMetrics(cache, options)
  onTestFinished(() => metrics.close())
  return metrics
}

type Labels = Record<string, string | number>

/** The series of a scrape as `[metric name, labels, value]`, histogram parts under their own names (`…_count`, `…_sum`). */
export async function scrape(registry: Registry): Promise<[string, Labels, number][]> {
  const series: [string, Labels, number][] = []
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const value of metric.values as { metricName?: string; labels: Labels; value: number }[]) {
      series.push([value.metricName ?? metric.name, value.labels, value.value])
    }
  }
  return series
}

/** The value of the one series of `name` whose labels include `labels` (undefined: none; several: throws). */
export async function valueOf(registry: Registry, name: string, labels: Labels = {}): Promise<number | undefined> {
  const matching = (await scrape(registry)).filter(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))
  if (matching.length > 1) throw new Error(`${matching.length} series of ${name} match ${JSON.stringify(labels)}`)
  return matching[0]?.[2]
}

export type Fault = 'error' | 'hang'

/** Wraps a store: every method can be made to fail or hang, and calls are counted. `fail('*', …)` affects every method. */
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
        return new Promise((resolve) => hung.push(() => resolve(undefined)))
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
    releaseHung() {
      for (const release of hung.splice(0)) release()
    },
  }
}

/** Resolves with the next payload of a cache event that passes `filter`. */
export function nextEvent<T>(on: (listener: (payload: T) => void) => () => void, filter: (payload: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = on((payload) => {
      if (!filter(payload)) return
      off()
      resolve(payload)
    })
  })
}
