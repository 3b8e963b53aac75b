import { SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api'
import { l2Channel, loaderChannel, memoryStore } from '@tiercache/core'
import { openTelemetryMetrics, openTelemetryTracing } from '@tiercache/opentelemetry'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cacheFor, chaos, meterProvider, tracerProvider, useContextManager } from './helpers.js'

function traced(...args: Parameters<typeof openTelemetryTracing>) {
  const instrumentation = openTelemetryTracing(...args)
  onTestFinished(() => instrumentation.close())
  return instrumentation
}

describe('spans', () => {
  it('makes none without spans: true', async () => {
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    const instrumentation = openTelemetryMetrics(cache, { meterProvider: meterProvider().provider })
    onTestFinished(() => instrumentation.close())
    // Even a global tracer provider gets nothing.
    trace.setGlobalTracerProvider(t.provider)
    onTestFinished(() => trace.disable())
    await cache.getOrSet('k', async () => 1)
    await cache.get('other')
    expect(t.spans()).toEqual([])
  })

  it('traces loader calls and L2 calls as children of the caller’s span', async () => {
    useContextManager()
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    const instrumentation = openTelemetryMetrics(cache, { meterProvider: meterProvider().provider, spans: true, tracerProvider: t.provider })
    onTestFinished(() => instrumentation.close())

    await t.tracer.startActiveSpan('request', async (request) => {
      await cache.getOrSet('user:7', async () => 'ada')
      request.end()
    })

    const [request] = t.named('request')
    const [loader, ...more] = t.named('tiercache.loader')
    expect(more).toEqual([])
    expect(loader!.parentSpanContext?.spanId).toBe(request!.spanContext().spanId)
    expect(loader!.kind).toBe(SpanKind.INTERNAL)
    expect(loader!.attributes).toEqual({ 'tiercache.cache': 'orders', 'tiercache.family': 'default@1', 'tiercache.keys': 1 })
    expect(loader!.status.code).toBe(SpanStatusCode.UNSET)
    expect(loader!.instrumentationScope.name).toBe('@tiercache/opentelemetry')

    const l2 = t.spans().filter((s) => s.name.startsWith('tiercache.l2.'))
    expect(l2.map((s) => s.name)).toContain('tiercache.l2.get')
    for (const span of l2) {
      expect(span.kind).toBe(SpanKind.CLIENT)
      expect(span.parentSpanContext?.spanId).toBe(request!.spanContext().spanId)
      expect(span.attributes).toEqual({ 'tiercache.cache': 'orders', 'tiercache.operation': span.name.slice('tiercache.l2.'.length) })
      expect(span.spanContext().traceId).toBe(request!.spanContext().traceId)
    }
  })

  it('makes the loader span the active context while the loader runs', async () => {
    useContextManager()
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders' })
    traced(cache, { tracerProvider: t.provider })
    let active: string | undefined
    await cache.getOrSet('k', async () => {
      await new Promise((resolve) => setImmediate(resolve)) // across an await too
      active = trace.getActiveSpan()?.spanContext().spanId
      t.tracer.startSpan('db.query').end() // a span the loader makes: the loader span's child
      return 1
    })
    const [loader] = t.named('tiercache.loader')
    expect(active).toBe(loader!.spanContext().spanId)
    expect(t.named('db.query')[0]!.parentSpanContext?.spanId).toBe(loader!.spanContext().spanId)
    // Back in the caller, its own context again.
    expect(trace.getActiveSpan()).toBeUndefined()
  })

  it('records the error and status ERROR for a failing loader, a synchronous throw and a failing L2 call', async () => {
    useContextManager()
    const t = tracerProvider()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store })
    traced(cache, { tracerProvider: t.provider })
    await expect(cache.getOrSet('k1', async () => Promise.reject(new Error('db down')))).rejects.toThrow()
    await expect(
      cache.getOrSet('k2', () => {
        throw new Error('thrown at once')
      }),
    ).rejects.toThrow()
    faulty.fail('get')
    await cache.get('k3')

    const loaders = t.named('tiercache.loader')
    expect(loaders).toHaveLength(2)
    expect(loaders.map((s) => [s.status.code, s.status.message])).toEqual([
      [SpanStatusCode.ERROR, 'db down'],
      [SpanStatusCode.ERROR, 'thrown at once'],
    ])
    for (const span of loaders) expect(span.events.map((e) => e.name)).toEqual(['exception'])
    expect(loaders[0]!.events[0]!.attributes?.['exception.message']).toBe('db down')

    const failedGets = t.named('tiercache.l2.get').filter((s) => s.status.code === SpanStatusCode.ERROR)
    expect(failedGets).toHaveLength(1)
    expect(failedGets[0]!.status.message).toContain('injected get failure')
  })

  it('puts the key on loader spans only with spanKeys: true, and the size of a batch', async () => {
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders' })
    traced(cache, { tracerProvider: t.provider, spanKeys: true, attributes: { region: 'eu' } })
    await cache.getOrSet('user:7', async () => 'ada')
    await cache.getOrSetMany(['a', 'b', 'c'], async (keys) => keys)
    expect(t.named('tiercache.loader').map((s) => s.attributes)).toEqual([
      { 'tiercache.cache': 'orders', 'tiercache.family': 'default@1', 'tiercache.keys': 1, 'tiercache.key': 'user:7', region: 'eu' },
      { 'tiercache.cache': 'orders', 'tiercache.family': 'default@1', 'tiercache.keys': 3, 'tiercache.key': 'a', region: 'eu' },
    ])
  })

  it('makes root spans without a context manager', async () => {
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders' })
    traced(cache, { tracer: t.tracer })
    await cache.getOrSet('k', async () => 1)
    const [loader] = t.named('tiercache.loader')
    expect(loader!.parentSpanContext).toBeUndefined()
  })

  it('traces each cache into its own tracer, side by side', async () => {
    const ta = tracerProvider()
    const tb = tracerProvider()
    const a = cacheFor({ name: 'a' })
    const b = cacheFor({ name: 'b' })
    traced(a, { tracerProvider: ta.provider })
    traced(b, { tracerProvider: tb.provider })
    await a.getOrSet('k', async () => 1)
    await b.getOrSet('k', async () => 1)
    await b.getOrSet('k2', async () => 1)
    expect(ta.named('tiercache.loader').map((s) => s.attributes['tiercache.cache'])).toEqual(['a'])
    expect(tb.named('tiercache.loader').map((s) => s.attributes['tiercache.cache'])).toEqual(['b', 'b'])
  })

  it('close() stops the spans, ends those still open, and unsubscribes', async () => {
    useContextManager()
    const t = tracerProvider()
    const cache = cacheFor({ name: 'orders' })
    const instrumentation = openTelemetryTracing(cache, { tracerProvider: t.provider })
    expect(loaderChannel.start.hasSubscribers).toBe(true)
    let release!: () => void
    const running = cache.getOrSet('slow', () => new Promise<number>((resolve) => (release = () => resolve(1))))
    await new Promise((resolve) => setImmediate(resolve))
    instrumentation.close()
    instrumentation.close()
    expect(t.named('tiercache.loader')).toHaveLength(1) // ended at close, its call still running
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    expect(l2Channel.start.hasSubscribers).toBe(false)
    release()
    expect(await running).toBe(1)
    await cache.getOrSet('after', async () => 2)
    expect(t.named('tiercache.loader')).toHaveLength(1)
  })
})

describe('a tracer that throws', () => {
  it('costs the spans, not the call', async () => {
    useContextManager()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    const tracer = {
      startSpan: () => {
        throw new Error('broken tracer')
      },
    } as unknown as Tracer
    traced(cache, { tracer })
    expect(await cache.getOrSet('k', async () => 1)).toBe(1)
    expect(await cache.get('k')).toBe(1)
    await new Promise((resolve) => setImmediate(resolve)) // an uncaught exception would surface by now
  })
})
