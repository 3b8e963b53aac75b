// propagation: a write acknowledged on process A → process B's cache returns the new value, over
// ≥ 500 trials, next to the bare baseline doing the same work (ioredis SET + PUBLISH pipelined in
// one round trip, the subscriber GETs the key when the message arrives) and a bare PUBLISH →
// subscriber, measured the same way in the same run. Run alone: `pnpm bench --only propagation`.
//
// Each trial: B holds the old value in its L1; A `set`s a new one; B, on applying the bus
// message, reads the key again (L1 dropped → L2) and records when the new value came back.
// Latency is taken from A's `set()` call and from its acknowledgement (the message is handed to
// Redis before the ack, so B can be done first: those trials count as 0). "Dropped its L1 copy"
// is when B applied the message; "returns it" adds B's read of the new value from L2. bentocache
// (memory + redis + its redis bus) runs the same trials in the same processes.
import { fileURLToPath } from 'node:url'
import { startNodeProcess, type NodeProcess } from '@tiercache/testkit'
import { percentile } from '../measure.js'
import type { Row, Scenario, ScenarioContext } from '../scenario.js'

const NODE = fileURLToPath(new URL('./propagation-node.ts', import.meta.url))

interface Timed {
  start: number
  ack: number
}

function figures(fromMs: number[]) {
  const us = fromMs.map((ms) => Math.max(0, ms) * 1000)
  return { p50Us: percentile(us, 50), p99Us: percentile(us, 99), maxUs: us.length ? Math.max(...us) : undefined }
}

interface Trials {
  fromStart: number[]
  fromAck: number[]
  appliedFromAck: number[]
}

/** Reads (with `get`, a node's read command) until the node returns `value`. */
export async function hold(node: NodeProcess, key: string, value: unknown, get = 'get'): Promise<void> {
  const want = JSON.stringify(value)
  for (let tries = 0; JSON.stringify(await node.call(get, { key })) !== want; tries++) {
    if (tries > 1_000) throw new Error(`a node never read ${want}`)
  }
}

/** One write's times, wall-clock ms: the writer's call and ack, the observer applying it and returning it. */
export interface Propagated {
  start: number
  ack: number
  appliedAt: number
  at: number
}

/**
 * `observer` already holds the previous value; `writer` writes `value`; resolves once the observer
 * returns it. The write and the event are awaited together: a failed write reports itself.
 */
export async function propagate(writer: NodeProcess, observer: NodeProcess, key: string, value: unknown, write = 'write'): Promise<Propagated> {
  await observer.call('expect', { key, value })
  const observed = observer.waitForEvent<{ at: number; appliedAt: number }>('observed', undefined, { timeoutMs: 10_000 })
  const [timed, seen] = await Promise.all([writer.call<Timed>(write, { key, value }), observed])
  return { start: timed.start, ack: timed.ack, appliedAt: seen.appliedAt, at: seen.at }
}

/** Each trial: B holds the previous value in L1; A writes a new one; B reports when it returns it. */
async function runTrials(a: NodeProcess, b: NodeProcess, trials: number, commands: { get: string; write: string }): Promise<Trials> {
  const result: Trials = { fromStart: [], fromAck: [], appliedFromAck: [] }
  const key = 'task-1'
  await a.call(commands.write, { key, value: { n: 0 } })
  for (let i = 1; i <= trials; i++) {
    // B reads until it holds the previous value (in L1 from the end of the last trial).
    await hold(b, key, { n: i - 1 }, commands.get)
    const { start, ack, appliedAt, at } = await propagate(a, b, key, { n: i }, commands.write)
    result.fromStart.push(at - start)
    result.fromAck.push(at - ack)
    result.appliedFromAck.push(appliedAt - ack)
  }
  return result
}

export async function measurePropagation(ctx: Pick<ScenarioContext, 'quick' | 'redis' | 'keyPrefix' | 'log'>): Promise<Row[]> {
  const trials = ctx.quick ? 100 : 500
  const namespace = `${ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')}-${process.pid}`
  const nodes: NodeProcess[] = []
  try {
    const [a, b] = await Promise.all([startNodeProcess(NODE), startNodeProcess(NODE)])
    nodes.push(a!, b!)
    await Promise.all([a!.call('init', { url: ctx.redis.url, namespace }), b!.call('init', { url: ctx.redis.url, namespace })])
    const bentoInit = { host: ctx.redis.host, port: ctx.redis.port, prefix: `${namespace}-bento`, bus: true }
    await Promise.all([a!.call('bentoInit', bentoInit), b!.call('bentoInit', bentoInit)])

    const tier = await runTrials(a!, b!, trials, { get: 'get', write: 'write' })
    const channel = `${namespace}:raw`
    await Promise.all([a!.call('rawInit', { url: ctx.redis.url, channel }), b!.call('rawInit', { url: ctx.redis.url, channel })])
    const rawStart: number[] = []
    const rawAck: number[] = []
    for (let id = 1; id <= trials; id++) {
      const received = b!.waitForEvent<{ id: number; at: number }>('raw', (e) => e.id === id, { timeoutMs: 10_000 })
      const publish = await a!.call<Timed>('rawPublish', { channel, id })
      const { at } = await received
      rawStart.push(at - publish.start)
      rawAck.push(at - publish.ack)
    }
    // The bare write baseline: what a write does at the least (the value and its message in one
    // round trip, the other side reading the value when the message arrives).
    const rawSetChannel = `${namespace}:rawset`
    const rawSetKey = `${namespace}:rawset-key`
    await Promise.all([a!.call('rawSetInit', { url: ctx.redis.url, channel: rawSetChannel, key: rawSetKey }), b!.call('rawSetInit', { url: ctx.redis.url, channel: rawSetChannel, key: rawSetKey })])
    const rawSetStart: number[] = []
    for (let id = 1; id <= trials; id++) {
      const received = b!.waitForEvent<{ id: number; value: string | null; at: number }>('rawSet', (e) => e.id === id, { timeoutMs: 10_000 })
      const write = await a!.call<Timed>('rawSetWrite', { channel: rawSetChannel, key: rawSetKey, id })
      const { at, value } = await received
      if (value !== JSON.stringify({ n: id })) throw new Error(`the SET + PUBLISH baseline read ${value} for ${id}`)
      rawSetStart.push(at - write.start)
    }
    let bento: Trials | undefined
    let bentoNote = ''
    try {
      bento = await runTrials(a!, b!, trials, { get: 'bentoGet', write: 'bentoWrite' })
    } catch (error) {
      bentoNote = `failed: ${(error as Error).message.split('\n')[0]}`
    }
    const note = `${trials} trials, 2 processes, loopback`
    return [
      { name: 'ioredis', variant: 'SET + PUBLISH → subscriber GET, from the call', group: 'from the call', baseline: true, ...figures(rawSetStart), note },
      { name: 'ioredis', variant: 'PUBLISH → subscriber, from the call', group: 'from the call', ...figures(rawStart), note },
      { name: 'tiercache', variant: 'set() on A → B returns it, from the call', group: 'from the call', ...figures(tier.fromStart), note },
      { name: 'bentocache', variant: 'set() on A → B returns it, from the call', group: 'from the call', ...(bento ? figures(bento.fromStart) : {}), note: bentoNote || `${note}; memory + redis + redis bus` },
      // No ratio here: the subscriber often has the message before the publisher has the reply,
      // so this baseline is ~0 and ratios over it mean nothing.
      { name: 'ioredis', variant: 'PUBLISH → subscriber, from the reply', group: 'from the ack', ...figures(rawAck), note },
      { name: 'tiercache', variant: 'set() on A → B dropped its L1 copy, from the ack', group: 'from the ack', ...figures(tier.appliedFromAck), note },
      { name: 'tiercache', variant: 'set() on A → B returns it, from the ack', group: 'from the ack', ...figures(tier.fromAck), note },
      { name: 'bentocache', variant: 'set() on A → B returns it, from the ack', group: 'from the ack', ...(bento ? figures(bento.fromAck) : {}), note: bentoNote || `${note}; memory + redis + redis bus` },
    ]
  } finally {
    await Promise.all(nodes.map((node) => node.stop()))
  }
}

export const scenario: Scenario = {
  id: 'propagation',
  title: 'Invalidation propagation across processes',
  measures:
    'write on process A → process B returns the new value (p50/p99 over ≥ 500 trials), next to the bare baseline doing the same work (SET + PUBLISH pipelined, the subscriber GETs on the message) and a bare PUBLISH → subscriber; `pnpm bench --only propagation`',
  ratioOf: 'p50Us',
  columns: ['p50Us', 'p99Us', 'maxUs'],
  goal: 'from the call: p50 ≤ 1.3×, p99 ≤ 1.5× SET + PUBLISH → subscriber GET; from the ack: p50 ≤ 0.5 ms, p99 ≤ 2 ms on loopback',
  run: (ctx) => measurePropagation(ctx),
}
