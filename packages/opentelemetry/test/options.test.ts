import { InvalidOptionsError, type TieredCache } from '@tiercache/core'
import { openTelemetryMetrics, openTelemetryTracing } from '@tiercache/opentelemetry'
import { describe, expect, it } from 'vitest'
import { cacheFor, meterProvider, tracerProvider } from './helpers.js'

describe('invalid options', () => {
  const cases: [string, unknown, string][] = [
    ['options', 'yes', 'options'],
    ['unknown key', { meterprovider: {} }, 'meterprovider'],
    ['meter and meterProvider', { meter: {}, meterProvider: {} }, 'meter'],
    ['meterProvider', { meterProvider: {} }, 'meterProvider'],
    ['meter', { meter: { createHistogram: () => ({}) } }, 'meter'],
    ['attributes', { attributes: ['region'] }, 'attributes'],
    ['attribute value', { attributes: { region: { name: 'eu' } } }, 'attributes.region'],
    ['reserved attribute', { attributes: { family: 'x' } }, 'attributes.family'],
    ['reserved prefix', { attributes: { 'tiercache.cache': 'x' } }, 'attributes.tiercache.cache'],
    ['databaseQueries', { databaseQueries: 3 }, 'databaseQueries'],
    ['spans', { spans: 'yes' }, 'spans'],
    ['tracing option without spans', { spanKeys: true }, 'spanKeys'],
    ['tracerProvider', { spans: true, tracerProvider: {} }, 'tracerProvider'],
  ]
  it.each(cases)('%s: InvalidOptionsError naming the field', (_, options, path) => {
    const cache = cacheFor({ name: 'orders' })
    const o = options as Parameters<typeof openTelemetryMetrics>[1]
    const m = meterProvider()
    const withProvider = typeof o === 'object' && o !== null && !('meter' in o) && !('meterProvider' in o) ? { meterProvider: m.provider, ...o } : o
    let thrown: unknown
    try {
      openTelemetryMetrics(cache, withProvider).close()
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(InvalidOptionsError)
    expect(thrown).toMatchObject({ code: 'E_INVALID_OPTIONS', path })
  })

  it('checks the cache', () => {
    expect(() => openTelemetryMetrics({} as TieredCache)).toThrow(expect.objectContaining({ path: 'cache' }))
    expect(() => openTelemetryTracing({ name: '', stats: () => ({}) } as unknown as TieredCache)).toThrow(expect.objectContaining({ path: 'cache.name' }))
  })

  it('checks the tracing options', () => {
    const cache = cacheFor({ name: 'orders' })
    const t = tracerProvider()
    expect(() => openTelemetryTracing(cache, { tracer: t.tracer, tracerProvider: t.provider })).toThrow(expect.objectContaining({ path: 'tracer' }))
    expect(() => openTelemetryTracing(cache, { spanKeys: 1 as unknown as boolean })).toThrow(expect.objectContaining({ path: 'spanKeys' }))
    expect(() => openTelemetryTracing(cache, { spans: true } as never)).toThrow(expect.objectContaining({ path: 'spans' }))
  })

  it('accepts arrays of one primitive type as attribute values', () => {
    const cache = cacheFor({ name: 'orders' })
    openTelemetryMetrics(cache, { meterProvider: meterProvider().provider, attributes: { zones: ['a', 'b'], shard: 3, primary: true } }).close()
  })
})
