import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { seededRandom, startRedis, uniqueNamespace } from '@tiercache/testkit'
import { describe, expect, it } from 'vitest'
import { checkHistory, type NodeTimeline, type ReadRecord, type WriteRecord } from './history.js'
import { PROCESS_TEST_TIMEOUT, startCacheNodes, type AppliedEvent, type CacheNode } from './helpers.js'

/**
 * Randomized coherence check: 4 processes run random reads, writes and deletes on 50 keys while
 * the bus subscribers are killed and Redis is paused now and then; every read is then checked
 * by order against the acknowledged writes and the messages each process applied (history.ts).
 * TC_CHECKER_SECONDS sets the duration (default 10; 30 for a longer soak).
 */
const SECONDS = Number(process.env.TC_CHECKER_SECONDS ?? 10)
const KEYS = 50
const WORKERS_PER_NODE = 4
const FAULT_EVERY_MS = 1_500

describe('randomized coherence checker', () => {
  it(`${SECONDS}s of random ops on ${KEYS} keys over 4 processes, with bus disconnects and pauses: zero violations`, { timeout: SECONDS * 1_000 + PROCESS_TEST_TIMEOUT }, async () => {
    const seed = Number(process.env.TC_CHECKER_SEED ?? Date.now() % 1_000_000)
    const random = seededRandom(seed)
    await using server = await startRedis()
    const namespace = uniqueNamespace('chk')
    const nodes = await startCacheNodes(4, { TC_REDIS_URL: server.url, TC_NAMESPACE: namespace, TC_L1_CAP: '100ms' })

    const writes: WriteRecord[] = []
    const reads: ReadRecord[] = []
    let counter = 0
    const deadline = Date.now() + SECONDS * 1_000

    const worker = async (node: CacheNode) => {
      while (Date.now() < deadline) {
        const key = `k${Math.floor(random() * KEYS)}`
        const dice = random()
        if (dice < 0.6) {
          const { value, start, end } = await node.get(key)
          reads.push({ node: node.name, key, value: value as string | null, start, end })
        } else if (dice < 0.9) {
          const value = `${node.name}:${++counter}`
          const ack = await node.set(key, value)
          writes.push({ node: node.name, key, value, ...ack })
        } else {
          const ack = await node.delete(key)
          writes.push({ node: node.name, key, value: null, ...ack })
        }
      }
    }

    let kills = 0
    let pauses = 0
    const faults = async () => {
      for (let round = 0; Date.now() + FAULT_EVERY_MS < deadline; round++) {
        await new Promise((resolve) => setTimeout(resolve, FAULT_EVERY_MS * (0.5 + random())))
        if (round % 2 === 0) {
          await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
          kills++
        } else {
          server.pause()
          await new Promise((resolve) => setTimeout(resolve, 300 + random() * 300))
          server.resume()
          pauses++
        }
      }
    }

    try {
      await Promise.all([faults(), ...nodes.flatMap((node) => Array.from({ length: WORKERS_PER_NODE }, () => worker(node)))])
    } finally {
      server.resume()
    }

    const timelines: Record<string, NodeTimeline> = {}
    for (const node of nodes) {
      timelines[node.name] = {
        instanceId: node.instanceId,
        applied: node.process.events.filter((e) => e.name === 'bus:applied').map((e) => e.data as AppliedEvent),
        recoveries: node.process.events
          .filter((e) => e.name === 'bus-health' && (e.data as { healthy: boolean }).healthy)
          .map((e) => (e.data as { at: number }).at),
      }
    }
    const result = checkHistory(writes, reads, timelines)
    const summary = `seed ${seed}: ${reads.length} reads, ${writes.length} writes (${writes.filter((w) => !w.clean).length} unclean), ${kills} kills, ${pauses} pauses, ${result.readsWithKnownRemoteWrite} reads with a known remote write`
    if (result.violations.length > 0) {
      // Everything about the first violating key, for the post-mortem.
      const key = result.violations[0]!.read.key
      const file = join(tmpdir(), `tiercache-checker-${seed}.json`)
      writeFileSync(
        file,
        JSON.stringify(
          {
            seed,
            violations: result.violations,
            writes: writes.filter((w) => w.key === key),
            reads: reads.filter((r) => r.key === key),
            nodes: Object.fromEntries(nodes.map((n) => [n.name, { instanceId: n.instanceId, events: n.process.events.filter((e) => e.name !== 'bus:applied' || (e.data as AppliedEvent).keys.includes(key)) }])),
          },
          null,
          1,
        ),
      )
      console.log(`checker history of ${key}: ${file}`)
    }
    expect(result.violations.slice(0, 5), summary).toEqual([])
    // The run exercised what it claims to.
    expect(reads.length, summary).toBeGreaterThan(100)
    expect(result.readsWithKnownRemoteWrite, summary).toBeGreaterThan(10)
    expect(kills + pauses, summary).toBeGreaterThanOrEqual(2)
    for (const node of nodes) {
      expect((await node.stats()).bus.unhealthyTransitions, node.name).toBeGreaterThanOrEqual(1)
    }
    console.log(summary)
  })
})
