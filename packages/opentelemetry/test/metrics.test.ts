import { readFileSync } from 'node:fs'
import { metrics } from '@opentelemetry/api'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { l2Channel, loaderChannel, memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type L2TraceContext } from '@tiercache/core'
import { INSTRUMENT_NAMES, L2_BUCKETS, LOADER_BUCKETS, SCOPE_NAME, SCOPE_VERSION, openTelemetryMetrics } from '@tiercache/opentelemetry'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { cacheFor, chaos, flush, meterProvider } from './helpers.js'

/** Instruments a cache and closes the instrumentation when the test ends. */
function instrument(...args: Parameters<typeof openTelemetryMetrics>) {
  const instrumentation = openTelemetryMetrics(...args)
  onTestFinished(() => instrumentation.close())
  return instrumentation
}

/** L2 calls by operation, counted by a subscriber of the test's own. */
function countL2Calls(): Record<string, number> {
  const calls: Record<string, number> = {}
  const start = (ctx: L2TraceContext) => void (calls[ctx.operation] = (calls[ctx.operation] ?? 0) + 1)
  l2Channel.start.subscribe(start as (message: unknown) => void)
  onTestFinished(() => void l2Channel.start.unsubscribe(start as (message: unknown) => void))
  return calls
}

describe('tiercache.reads', () => {
  it('counts a known read sequence exactly, per result and family', async () => {
    const m = meterProvider()
    const backend = memoryBackend()
    const writer = cacheFor({ name: 'writer', l2: memoryStore({ backend }) })
    const cache = cacheFor({ name: 'orders', l2: memoryStore({ backend }) })
    instrument(cache, { meterProvider: m.provider })
    const users = cache.family<string, string>({ name: 'user', key: (id) => id })

    await writer.set('k1', 'v1')
    expect(await cache.getOrSet('k1', async () => 'never')).toBe('v1') // L2 hit
    expect(await cache.getOrSet('k1', async () => 'never')).toBe('v1') // L1 hit
    expect(await cache.get('absent')).toBeUndefined() // miss
    expect(await cache.getOrSet('k2', async () => 'v2')).toBe('v2') // miss, loaded
    await cache.expire('k2')
    expect(await cache.getOrSet('k2', async () => 'v2 again')).toBe('v2') // the expired copy answers
    expect(await users.getOrSet('u1', async () => 'ada')).toBe('ada') // miss in the user family
    expect(await users.getOrSet('u1', async () => 'never')).toBe('ada') // L1 hit there

    const collected = await m.collect()
    const reads = (family: string, result: string) => collected.value(INSTRUMENT_NAMES.reads, { cache: 'orders', family, result })
    expect([reads('default@1', 'l1_hit'), reads('default@1', 'l2_hit'), reads('default@1', 'miss'), reads('default@1', 'stale')]).toEqual([1, 1, 2, 1])
    expect([reads('user@1', 'l1_hit'), reads('user@1', 'l2_hit'), reads('user@1', 'miss'), reads('user@1', 'stale')]).toEqual([1, 0, 1, 0])
    // Only the instrumented cache reports.
    expect(collected.points(INSTRUMENT_NAMES.reads).every((p) => p.attributes.cache === 'orders')).toBe(true)
  })

  it('adds the attributes option to every data point', async () => {
    const m = meterProvider()
    const cache = cacheFor({ name: 'orders' })
    instrument(cache, { meterProvider: m.provider, attributes: { region: 'eu-west-1' } })
    await cache.getOrSet('k', async () => 1)
    const collected = await m.collect()
    for (const name of [INSTRUMENT_NAMES.reads, INSTRUMENT_NAMES.loaderDuration, INSTRUMENT_NAMES.breakerState, INSTRUMENT_NAMES.l1Entries]) {
      const points = collected.points(name)
      expect(points.length, name).toBeGreaterThan(0)
      for (const point of points) expect(point.attributes).toMatchObject({ cache: 'orders', region: 'eu-west-1' })
    }
  })
})

describe('duration histograms', () => {
  it('records one loader duration per loader call, failures and synchronous throws included', async () => {
    const m = meterProvider()
    const cache = cacheFor({ name: 'orders' })
    instrument(cache, { meterProvider: m.provider })
    await cache.getOrSet('k1', async () => 1)
    await cache.getOrSet('k1', async () => 2) // L1 hit: no loader call
    await expect(cache.getOrSet('k2', async () => Promise.reject(new Error('db down')))).rejects.toThrow()
    await expect(
      cache.getOrSet('k3', () => {
        throw new Error('thrown at once')
      }),
    ).rejects.toThrow()
    await cache.getOrSetMany(['a', 'b', 'c'], async (keys) => keys.map((k) => k.toUpperCase())) // one batch call

    const collected = await m.collect()
    expect(cache.stats().total.loaderCalls).toBe(4)
    expect(collected.count(INSTRUMENT_NAMES.loaderDuration, { cache: 'orders', family: 'default@1' })).toBe(4)
    const metric = collected.metric(INSTRUMENT_NAMES.loaderDuration)
    expect(metric?.descriptor.unit).toBe('s')
    const point = collected.value(INSTRUMENT_NAMES.loaderDuration, { family: 'default@1' }) as { sum: number; buckets: { boundaries: number[] } }
    expect(point.sum).toBeGreaterThanOrEqual(0)
    expect(point.buckets.boundaries).toEqual(LOADER_BUCKETS)
  })

  it('records one L2 duration per call through the guard, by operation', async () => {
    const m = meterProvider()
    const calls = countL2Calls()
    const cache = cacheFor({ name: 'orders', l2: memoryStore() })
    instrument(cache, { meterProvider: m.provider })
    await cache.set('k1', 'v1')
    await cache.delete('k1')
    await cache.getOrSet('k2', async () => 'v2')
    await cache.get('k3')
    await flush()

    const collected = await m.collect()
    const points = collected.points(INSTRUMENT_NAMES.l2Duration)
    const counted = Object.fromEntries(points.map((p) => [p.attributes.operation, (p.value as { count: number }).count]))
    expect(counted).toEqual(calls)
    expect(counted.get).toBeGreaterThanOrEqual(2)
    expect(points.every((p) => p.attributes.cache === 'orders')).toBe(true)
    expect(collected.metric(INSTRUMENT_NAMES.l2Duration)?.descriptor.unit).toBe('s')
    expect((points[0]!.value as { buckets: { boundaries: number[] } }).buckets.boundaries).toEqual(L2_BUCKETS)
  })
})

describe('L2 health', () => {
  it('counts failed L2 calls by operation', async () => {
    const m = meterProvider()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store })
    instrument(cache, { meterProvider: m.provider })
    await cache.set('k1', 'v1')
    faulty.fail('get')
    const other = cacheFor({ name: 'other', l2: faulty.store })
    instrument(other, { meterProvider: m.provider })
    expect(await other.getOrSet('k1', async () => 'from the loader')).toBe('from the loader')

    const collected = await m.collect()
    const errors = other.stats().l2ErrorsByOperation
    expect(errors.get).toBeGreaterThanOrEqual(1)
    for (const [operation, count] of Object.entries(errors)) expect(collected.value(INSTRUMENT_NAMES.l2Errors, { cache: 'other', operation })).toBe(count)
    expect(collected.points(INSTRUMENT_NAMES.l2Errors).filter((p) => p.attributes.cache === 'orders')).toEqual([])
  })

  it('reports the breaker: 0 while closed, 2 once it opened', async () => {
    const m = meterProvider()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store, breaker: { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: '1h' } })
    instrument(cache, { meterProvider: m.provider })
    expect((await m.collect()).value(INSTRUMENT_NAMES.breakerState, { cache: 'orders' })).toBe(0)
    faulty.fail('*')
    for (let i = 0; i < 50 && cache.stats().breaker.state !== 'open'; i++) await cache.get(`k${i}`)
    expect(cache.stats().breaker.state).toBe('open')
    expect((await m.collect()).value(INSTRUMENT_NAMES.breakerState, { cache: 'orders' })).toBe(2)
  })

  it('reports the recovery queue, L1 entries and bus health from stats()', async () => {
    const m = meterProvider()
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store })
    instrument(cache, { meterProvider: m.provider })
    await cache.set('a', 1)
    await cache.set('b', 2)
    faulty.fail('delete')
    faulty.fail('apply')
    await cache.delete('a')
    await flush()
    const stats = cache.stats()
    const collected = await m.collect()
    expect(stats.recoveryQueueDepth).toBeGreaterThan(0)
    expect(collected.value(INSTRUMENT_NAMES.recoveryQueueDepth, { cache: 'orders' })).toBe(stats.recoveryQueueDepth)
    expect(collected.value(INSTRUMENT_NAMES.l1Entries, { cache: 'orders' })).toBe(stats.l1.entries)
    expect(collected.value(INSTRUMENT_NAMES.busHealthy, { cache: 'orders' })).toBe(1) // no bus: healthy
  })
})

describe('bus messages', () => {
  it('counts messages in (applied) and out (sent) per cache, two caches on one meter', async () => {
    const m = meterProvider()
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const busA = memoryBus({ network, instanceId: 'a' })
    const busB = memoryBus({ network, instanceId: 'b' })
    const a = cacheFor({ name: 'a', l2: memoryStore({ backend, namespace: 'n' }), bus: busA })
    const b = cacheFor({ name: 'b', l2: memoryStore({ backend, namespace: 'n' }), bus: busB })
    instrument(a, { meterProvider: m.provider })
    instrument(b, { meterProvider: m.provider })
    while (!busA.healthy || !busB.healthy) await flush()
    await a.set('k', 1)
    await a.delete('k')
    await expect.poll(() => b.stats().busMessagesApplied).toBeGreaterThanOrEqual(1)

    const collected = await m.collect()
    const messages = (cache: string, direction: string) => collected.value(INSTRUMENT_NAMES.busMessages, { cache, direction })
    expect(messages('a', 'out')).toBe(a.stats().busMessagesSent)
    expect(messages('a', 'out')).toBeGreaterThanOrEqual(1)
    expect(messages('a', 'in')).toBe(0)
    expect(messages('b', 'in')).toBe(b.stats().busMessagesApplied)
    expect(messages('b', 'out')).toBe(0)
    expect(collected.value(INSTRUMENT_NAMES.busHealthy, { cache: 'a' })).toBe(1)
    expect(collected.value(INSTRUMENT_NAMES.busHealthy, { cache: 'b' })).toBe(1)
  })
})

describe('tiercache.database.queries', () => {
  it('reads the databaseQueries option at each collection', async () => {
    const m = meterProvider()
    let queries = 0
    const cache = cacheFor({ name: 'orders' })
    instrument(cache, { meterProvider: m.provider, databaseQueries: () => queries })
    const load = async () => {
      queries++
      return 'row'
    }
    await cache.getOrSet('k', load)
    await cache.getOrSet('k', load)
    expect((await m.collect()).value(INSTRUMENT_NAMES.databaseQueries, { cache: 'orders' })).toBe(1)
    await cache.getOrSet('other', load)
    expect((await m.collect()).value(INSTRUMENT_NAMES.databaseQueries, { cache: 'orders' })).toBe(2)
  })

  it('skips its point, and only its point, when the function throws', async () => {
    const m = meterProvider()
    const cache = cacheFor({ name: 'orders' })
    instrument(cache, {
      meterProvider: m.provider,
      databaseQueries: () => {
        throw new Error('no count')
      },
    })
    const collected = await m.collect()
    expect(collected.points(INSTRUMENT_NAMES.databaseQueries)).toEqual([])
    expect(collected.value(INSTRUMENT_NAMES.reads, { cache: 'orders', result: 'miss' })).toBe(0)
  })

  it('is not an instrument without the option', async () => {
    const m = meterProvider()
    instrument(cacheFor({ name: 'orders' }), { meterProvider: m.provider })
    expect((await m.collect()).metric(INSTRUMENT_NAMES.databaseQueries)).toBeUndefined()
  })
})

describe('meters', () => {
  it('reads stats() once per collection', async () => {
    const m = meterProvider()
    const cache = cacheFor({ name: 'orders' })
    const stats = vi.spyOn(cache, 'stats')
    instrument(cache, { meterProvider: m.provider })
    await cache.getOrSet('k', async () => 1)
    expect(stats).not.toHaveBeenCalled()
    await m.collect()
    expect(stats).toHaveBeenCalledTimes(1)
    await m.collect()
    expect(stats).toHaveBeenCalledTimes(2)
  })

  it('names the meter after the package, at its version', async () => {
    const m = meterProvider()
    instrument(cacheFor({ name: 'orders' }), { meterProvider: m.provider })
    const { scope } = (await m.collect()).resourceMetrics.scopeMetrics[0]!
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string }
    expect(scope).toMatchObject({ name: manifest.name, version: manifest.version })
    expect([SCOPE_NAME, SCOPE_VERSION]).toEqual([manifest.name, manifest.version])
  })

  it('takes a meter as is', async () => {
    const m = meterProvider()
    instrument(cacheFor({ name: 'orders' }), { meter: m.provider.getMeter('service') })
    const { scopeMetrics } = (await m.collect()).resourceMetrics
    expect(scopeMetrics.map((s) => s.scope.name)).toEqual(['service'])
  })

  it('uses the global meter provider by default', async () => {
    const m = meterProvider()
    metrics.setGlobalMeterProvider(m.provider)
    onTestFinished(() => metrics.disable())
    const cache = cacheFor({ name: 'orders' })
    instrument(cache)
    await cache.getOrSet('k', async () => 1)
    expect((await m.collect()).count(INSTRUMENT_NAMES.loaderDuration, { cache: 'orders' })).toBe(1)
  })

  it('exports through a PeriodicExportingMetricReader and an in-memory exporter', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    // An interval no test waits for: forceFlush() exports.
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
    const provider = new MeterProvider({ readers: [reader] })
    onTestFinished(() => provider.shutdown())
    const cache = cacheFor({ name: 'orders' })
    instrument(cache, { meterProvider: provider })
    await cache.getOrSet('k', async () => 1)
    await cache.getOrSet('k', async () => 1)
    await reader.forceFlush()
    const exported = exporter.getMetrics().at(-1)!
    const reads = exported.scopeMetrics.flatMap((s) => s.metrics).find((metric) => metric.descriptor.name === INSTRUMENT_NAMES.reads)!
    const byResult = Object.fromEntries(reads.dataPoints.map((p) => [p.attributes.result, p.value]))
    expect(byResult).toEqual({ l1_hit: 1, l2_hit: 0, miss: 1, stale: 0 })
  })
})

describe('close()', () => {
  it('stops observing and timing, unsubscribes with the last cache, and is idempotent', async () => {
    const m = meterProvider()
    const a = cacheFor({ name: 'a' })
    const b = cacheFor({ name: 'b' })
    const stats = vi.spyOn(a, 'stats')
    const ofA = openTelemetryMetrics(a, { meterProvider: m.provider })
    const ofB = openTelemetryMetrics(b, { meterProvider: m.provider })
    onTestFinished(() => ofB.close())
    expect(loaderChannel.start.hasSubscribers).toBe(true)
    await a.getOrSet('k', async () => 1)

    ofA.close()
    ofA.close()
    expect(loaderChannel.start.hasSubscribers).toBe(true) // b is still instrumented
    await a.getOrSet('k2', async () => 2)
    await b.getOrSet('k', async () => 1)
    const collected = await m.collect()
    expect(stats).not.toHaveBeenCalled()
    expect(collected.count(INSTRUMENT_NAMES.loaderDuration, { cache: 'a' })).toBe(1) // k2 after close: not timed
    expect(collected.count(INSTRUMENT_NAMES.loaderDuration, { cache: 'b' })).toBe(1)

    ofB.close()
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    expect(l2Channel.start.hasSubscribers).toBe(false)
    expect(loaderChannel.hasSubscribers).toBe(false)
    expect(l2Channel.hasSubscribers).toBe(false)
  })

  it('refuses a second cache of the same name until the first is closed', async () => {
    const m = meterProvider()
    const first = cacheFor({ name: 'orders' })
    const second = cacheFor({ name: 'orders' })
    const ofFirst = openTelemetryMetrics(first, { meterProvider: m.provider })
    expect(() => openTelemetryMetrics(second, { meterProvider: m.provider })).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTIONS', path: 'cache.name' }))
    // The same cache twice (say, on two meters) is fine: its calls are its own.
    openTelemetryMetrics(first, { meterProvider: meterProvider().provider }).close()
    ofFirst.close()
    instrument(second, { meterProvider: m.provider })
    await second.getOrSet('k', async () => 1)
    expect((await m.collect()).count(INSTRUMENT_NAMES.loaderDuration, { cache: 'orders' })).toBe(1)
  })
})

describe('a meter that throws', () => {
  it('leaves nothing subscribed', () => {
    const m = meterProvider()
    const meter = m.provider.getMeter('service')
    const broken = Object.assign(Object.create(meter) as typeof meter, {
      addBatchObservableCallback: () => {
        throw new Error('broken meter')
      },
    })
    expect(() => openTelemetryMetrics(cacheFor({ name: 'orders' }), { meter: broken })).toThrow('broken meter')
    expect(loaderChannel.start.hasSubscribers).toBe(false)
    expect(l2Channel.start.hasSubscribers).toBe(false)
  })
})
