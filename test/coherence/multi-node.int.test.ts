import { startFaultProxy, startRedis, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { PROCESS_TEST_TIMEOUT, startCacheNodes } from './helpers.js'

describe('four processes on one Redis', { timeout: PROCESS_TEST_TIMEOUT }, () => {
  it('a write on one is reflected on every other once it applied the message; self-messages are ignored', async () => {
    const { url, namespace } = sharedRedis('coh')
    const nodes = await startCacheNodes(4, { TC_REDIS_URL: url, TC_NAMESPACE: namespace })
    const [writer, ...others] = nodes as [(typeof nodes)[0], ...typeof nodes]

    await writer.set('task-1', { status: 'queued' })
    // Every node reads it once, so every L1 holds the first value.
    for (const node of nodes) expect((await node.get('task-1')).value).toEqual({ status: 'queued' })

    for (let round = 1; round <= 5; round++) {
      const value = { status: 'running', round }
      const ack = await writer.set('task-1', value)
      expect(ack.clean).toBe(true)
      for (const node of others) {
        const applied = await node.applied(writer, ack.seq)
        expect(applied.keys).toContain('task-1')
        expect((await node.get('task-1')).value).toEqual(value)
      }
      expect((await writer.get('task-1')).value).toEqual(value)
    }

    const ack = await others[1]!.delete('task-1')
    for (const node of [writer, others[0]!, others[2]!]) {
      await node.applied(others[1]!, ack.seq)
      expect((await node.get('task-1')).value).toBeNull()
    }

    // Each writer heard its own messages come back and dropped them; nobody applied their own.
    const writerStats = await writer.stats()
    expect(writerStats.bus.ownIgnored).toBeGreaterThanOrEqual(1)
    expect(writer.process.events.filter((e) => e.name === 'bus:applied' && (e.data as { source: string }).source === writer.instanceId)).toEqual([])
    for (const node of others) {
      const stats = await node.stats()
      expect(stats.bus.malformed).toBe(0)
      expect(stats.cache.busMessagesApplied).toBeGreaterThanOrEqual(5)
    }
  })

  it('killed subscribers and a paused Redis: L1 capped while unhealthy, flushed on recovery, reads reflect every acknowledged write', async () => {
    await using server = await startRedis()
    const namespace = uniqueNamespace('coh')
    const nodes = await startCacheNodes(4, { TC_REDIS_URL: server.url, TC_NAMESPACE: namespace, TC_L1_CAP: '100ms' })
    const [a, b, c, d] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]]

    await a.set('k', 'v1')
    for (const node of nodes) expect((await node.get('k')).value).toBe('v1')

    // 1. Subscribers killed: every node notices, reconnects, flushes its L1.
    const down = nodes.map((node) => node.health(false))
    await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await Promise.all(down)
    const up = nodes.map((node) => node.health(true))
    await Promise.all(up)
    for (const node of nodes) {
      expect(node.process.events.some((e) => e.name === 'l1-flushed' && (e.data as { reason: string }).reason === 'bus-recovered')).toBe(true)
    }

    // 2. Redis paused (SIGSTOP): no disconnect, the heartbeat deadline notices; L1 flushed after.
    for (const node of nodes) expect((await node.get('k')).value).toBe('v1')
    const paused = nodes.map((node) => node.health(false))
    server.pause()
    const resumed = nodes.map((node) => node.health(true))
    try {
      await Promise.all(paused)
    } finally {
      server.resume()
    }
    await Promise.all(resumed)
    const flushes = await Promise.all(nodes.map(async (node) => (await node.stats()).cache.l1Flushes))
    expect(flushes.every((n) => n >= 2)).toBe(true)

    // 3. A partition of the bus alone (the store still reaches Redis) on three nodes, so the
    // message of a write is lost for them, not just late.
    await using proxy = await startFaultProxy({ target: { port: server.port } })
    const partitioned = await startCacheNodes(3, { TC_REDIS_URL: server.url, TC_BUS_URL: proxy.url, TC_NAMESPACE: namespace, TC_L1_CAP: '100ms' })
    for (const node of [a, ...partitioned]) expect((await node.get('k')).value).toBe('v1')
    const lost = partitioned.map((node) => node.health(false))
    proxy.refuse()
    proxy.cut()
    await Promise.all(lost)
    const ack = await a.set('k', 'v2')
    expect(ack.clean).toBe(true)
    // Unhealthy, they serve no L1 entry older than the cap: once it has passed, they read L2.
    await new Promise((resolve) => setTimeout(resolve, 150))
    for (const node of partitioned) {
      expect((await node.get('k')).value).toBe('v2')
      expect((await node.stats()).healthy).toBe(false)
    }
    const recovered = partitioned.map((node) => node.health(true))
    proxy.heal()
    await Promise.all(recovered)
    for (const node of [a, b, c, d, ...partitioned]) expect((await node.get('k')).value).toBe('v2')
    for (const node of partitioned) {
      // At least this recovery (a loaded machine may add heartbeat misses of its own).
      expect(node.process.events.filter((e) => e.name === 'l1-flushed' && (e.data as { reason: string }).reason === 'bus-recovered').length).toBeGreaterThanOrEqual(1)
    }
  })
})
