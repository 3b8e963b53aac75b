import type { Logger } from '@tiercache/core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { startFaultProxy, startRedis, uniqueNamespace, type FaultProxy, type RedisServer } from '@tiercache/testkit'
import { createRedisCache, redisStore } from '../src/index.js'

// Half-open connections: through the fault proxy every open connection goes silent for good (no
// reply, no close) and new ones are accepted and never answered, until the proxy heals. Only the
// client can give such a connection up: the store's PING probe and the bus's silence check must.

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = []
  const logger = {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (_: unknown, message: string) => void warnings.push(message),
    error: () => {},
  }
  return logger as unknown as Logger & { warnings: string[] }
}

describe('half-open connections (real Redis behind the fault proxy)', () => {
  let server: RedisServer
  let proxy: FaultProxy
  beforeAll(async () => {
    server = await startRedis()
    proxy = await startFaultProxy({ target: { host: server.host, port: server.port } })
  })
  afterAll(async () => {
    await proxy.stop()
    await server.stop()
  })

  it('the store and the bus give their silent connections up: after heal() L2 serves and messages flow again', async () => {
    const namespace = uniqueNamespace('half-open')
    const logger = recordingLogger()
    const open = (log?: Logger) => {
      const cache = createRedisCache({
        redis: proxy.url,
        namespace,
        ttl: '1m',
        l2Timeout: '200ms',
        breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout: '300ms' },
        store: { commandTimeout: 300, connectTimeout: 500 },
        bus: { heartbeatInterval: '50ms', heartbeatTimeout: '200ms' },
        ...(log ? { logger: log } : {}),
      })
      onTestFinished(() => cache.close())
      return cache
    }
    const writer = open(logger)
    const reader = open()
    // What Redis itself holds, read around the proxy.
    const direct = redisStore({ redis: server.url, namespace })
    onTestFinished(() => direct.close())
    await writer.ready({ timeout: '10s' })
    await reader.ready({ timeout: '10s' })
    await writer.set('k', 'v1')
    expect(await reader.get('k')).toBe('v1')

    proxy.halfOpen()
    await vi.waitFor(() => expect(reader.stats().busHealthy).toBe(false), { timeout: 10_000 })
    // Nothing reaches Redis: the write's L2 part fails and the key's delete is queued.
    await writer.set('k', 'v2')
    proxy.heal()

    // The connections made before heal() stay silent: only new ones answer. The queued delete lands.
    const key = { family: 'default@1', generation: '', id: 'k' }
    await vi.waitFor(async () => expect(await direct.get(key)).toBeUndefined(), { timeout: 20_000, interval: 50 })
    await vi.waitFor(() => expect(reader.stats().busHealthy).toBe(true), { timeout: 20_000 })
    // A set made while the writer's breaker is still open is not written to L2 (only its delete is
    // queued): v3 reaches L2 once the writer uses L2 again.
    await vi.waitFor(() => expect(writer.stats().breaker.state).toBe('closed'), { timeout: 20_000 })
    await writer.set('k', 'v3')
    await vi.waitFor(async () => expect((await direct.get(key))?.value).toBe('v3'), { timeout: 20_000, interval: 50 })
    // The reader's L2 serves again, and the writer's messages reach it.
    await vi.waitFor(async () => expect(await reader.get('k')).toBe('v3'), { timeout: 20_000, interval: 50 })
    await writer.set('k', 'v4')
    await vi.waitFor(() => expect(reader.peek('k')).not.toBe('v3'), { timeout: 10_000 })
    expect(await reader.get('k')).toBe('v4')
    expect(logger.warnings).toContain('tiercache redis: the connection stopped answering (PING timed out); reconnecting')
  })
})
