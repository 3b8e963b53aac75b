/**
 * Test helpers: real caches closed when the test ends, a store that fails on demand (both in the
 * manner of the core's own test helpers), an OpenTelemetry context manager, a metric reader
 * collecting on demand and an in-memory tracer provider.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { type Context, type ContextManager, context, ROOT_CONTEXT } from '@opentelemetry/api'
import { type DataPoint, type MetricData, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { type RemoteStore, type TieredCache, type TieredCacheOptions, createTieredCache } from '@tiercache/core'
import { onTestFinished } from 'vitest'

/** A cache closed when the test finishes. */
export function cacheFor(options?: TieredCacheOptions): TieredCache {
  const cache = createTieredCache(options)
  onTestFinished(() => cache.close())
  return cache
}

/** Wraps a store: a method (or `'*'`, every one) can be made to fail until healed. */
export function chaos<S extends RemoteStore>(store: S) {
  const failing = new Set<string>()
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const original = Reflect.get(target, property, receiver) as unknown
      if (typeof original !== 'function' || typeof property !== 'string') return original
      return (...args: unknown[]) => {
        if (property !== 'close' && (failing.has(property) || failing.has('*'))) return Promise.reject(new Error(`injected ${property} failure`))
        return (original as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return {
    store: wrapped as S,
    fail(method: string) {
      failing.add(method)
    },
    heal() {
      failing.clear()
    },
  }
}

export const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A reader that collects when asked: no timer, so no test waits on an export interval. */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface Point {
  readonly attributes: Record<string, unknown>
  readonly value: DataPoint<unknown>['value']
}

/** One collection: the metrics by name, and their data points. */
export class Collected {
  constructor(readonly resourceMetrics: ResourceMetrics) {}

  metric(name: string): MetricData | undefined {
    for (const scope of this.resourceMetrics.scopeMetrics) for (const metric of scope.metrics) if (metric.descriptor.name === name) return metric
    return undefined
  }

  points(name: string): Point[] {
    const metric = this.metric(name)
    return metric === undefined ? [] : (metric.dataPoints as DataPoint<unknown>[]).map((p) => ({ attributes: p.attributes, value: p.value }))
  }

  /** The value of the one point whose attributes include `match`; `undefined` when there is none. */
  value(name: string, match: Record<string, unknown>): unknown {
    const found = this.points(name).filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    if (found.length > 1) throw new Error(`${found.length} points of ${name} match ${JSON.stringify(match)}`)
    return found[0]?.value
  }

  /** A histogram point's count, by the same matching. */
  count(name: string, match: Record<string, unknown>): number | undefined {
    return (this.value(name, match) as { count: number } | undefined)?.count
  }
}

/** A MeterProvider with an on-demand reader, shut down when the test finishes. */
export function meterProvider() {
  const reader = new OnDemandReader()
  const provider = new MeterProvider({ readers: [reader] })
  onTestFinished(() => provider.shutdown())
  return {
    provider,
    async collect(): Promise<Collected> {
      const { resourceMetrics, errors } = await reader.collect()
      if (errors.length > 0) throw new AggregateError(errors, 'collection errors')
      return new Collected(resourceMetrics)
    },
  }
}

/** A tracer provider exporting to memory, shut down when the test finishes. */
export function tracerProvider() {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  onTestFinished(() => provider.shutdown())
  return {
    provider,
    tracer: provider.getTracer('test'),
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    named: (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name),
  }
}

/**
 * A context manager on AsyncLocalStorage, as an application registers one (the SDK's lives in a
 * package of its own): without one, the API's context never changes and nothing has a parent.
 */
class AsyncLocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>()

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args))
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target
    const fn = target as (...args: unknown[]) => unknown
    return ((...args: unknown[]) => this.with(ctx, fn, undefined, ...args)) as T
  }

  enable(): this {
    return this
  }

  disable(): this {
    this.#storage.disable()
    return this
  }
}

/** Registers a context manager for the test. */
export function useContextManager(): void {
  context.setGlobalContextManager(new AsyncLocalContextManager())
  onTestFinished(() => void context.disable())
}
