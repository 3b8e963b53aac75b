// The faults of `pnpm chaos`, and the Redis each acts on (its stage). A fault is put on at the
// row's fault time; one the runner heals is taken off at the heal time, while a failover heals
// itself: a replica takes over, and the row's recovery counts from that promotion.
//
// - `proxied`: one redis-server, reached by every process through the testkit's fault proxy;
//   shared by the rows of the run.
// - `cluster`: 3 masters with a replica each, fresh for the row (a failover leaves it changed).
// - `sentinel`: a primary, its replica and a sentinel, fresh for the row.
import { setTimeout as sleep } from 'node:timers/promises'
import { slotOf } from '@tiercache/redis'
import { startRedisCluster, startRedisSentinel, type FaultProxy, type RedisCluster, type RedisSentinel, type RedisServer } from '@tiercache/testkit'

export type Stage =
  | { readonly kind: 'proxied'; readonly redis: RedisServer; readonly proxy: FaultProxy }
  | { readonly kind: 'cluster'; readonly cluster: RedisCluster }
  | { readonly kind: 'sentinel'; readonly sentinel: RedisSentinel }

/** What a fault acts on in its row: the stage, and the row's namespace (its bus channel). */
export interface FaultTargets<S extends Stage = Stage> {
  readonly stage: S
  readonly namespace: string
}

export interface Fault {
  readonly id: string
  /** What the row is called in the table. */
  readonly label: string
  readonly stage: Stage['kind']
  apply(t: FaultTargets): Promise<void> | void
  /** Takes the fault off at the heal time (a failover: nothing left to take off). */
  heal(t: FaultTargets): Promise<void> | void
  /**
   * A failover only: resolves once the replica serves in the killed node's place (the time the
   * row's recovery counts from), or rejects after `timeoutMs`.
   */
  promoted?(t: FaultTargets, timeoutMs: number): Promise<void>
}

/** How often the dropped-connections fault cuts every connection. */
const DROP_EVERY_MS = 500
/** 1 Mbit/s. */
const THIN_BYTES_PER_SECOND = 125_000
const ADDED_LATENCY_MS = 500

let dropping: NodeJS.Timeout | undefined
/** The master a cluster failover killed (the promotion is judged against it). */
let killedMaster: RedisServer | undefined

const proxied = (t: FaultTargets): Extract<Stage, { kind: 'proxied' }> => stageOf(t, 'proxied')
const clustered = (t: FaultTargets): RedisCluster => stageOf(t, 'cluster').cluster
const sentinelOf = (t: FaultTargets): RedisSentinel => stageOf(t, 'sentinel').sentinel

function stageOf<K extends Stage['kind']>(t: FaultTargets, kind: K): Extract<Stage, { kind: K }> {
  if (t.stage.kind !== kind) throw new Error(`chaos: a ${kind} fault on a ${t.stage.kind} stage`)
  return t.stage as Extract<Stage, { kind: K }>
}

async function waitFor(timeoutMs: number, what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await condition().catch(() => false))) {
    if (performance.now() > deadline) throw new Error(`chaos: ${what} did not happen within ${timeoutMs} ms`)
    await sleep(20)
  }
}

const busSlot = (t: FaultTargets) => slotOf(`${t.namespace}:bus`)

export const FAULTS: readonly Fault[] = [
  {
    id: 'kill',
    label: 'Redis SIGKILL, restarted on the same port',
    stage: 'proxied',
    apply: (t) => proxied(t).redis.kill(),
    heal: (t) => proxied(t).redis.restart(),
  },
  {
    id: 'pause',
    label: 'Redis SIGSTOP, then SIGCONT',
    stage: 'proxied',
    apply: (t) => proxied(t).redis.pause(),
    heal: (t) => proxied(t).redis.resume(),
  },
  {
    id: 'latency',
    label: `${ADDED_LATENCY_MS} ms added latency, open connections too`,
    stage: 'proxied',
    apply: (t) => proxied(t).proxy.delay(ADDED_LATENCY_MS),
    heal: (t) => proxied(t).proxy.heal(),
  },
  {
    id: 'dropped',
    label: `every connection dropped every ${DROP_EVERY_MS} ms`,
    stage: 'proxied',
    apply: (t) => {
      const { proxy } = proxied(t)
      proxy.cut()
      dropping = setInterval(() => proxy.cut(), DROP_EVERY_MS)
    },
    heal: (t) => {
      clearInterval(dropping)
      dropping = undefined
      proxied(t).proxy.heal()
    },
  },
  {
    id: 'half-open',
    label: 'half-open connections (open, never answered)',
    stage: 'proxied',
    apply: (t) => proxied(t).proxy.halfOpen(),
    heal: (t) => proxied(t).proxy.heal(),
  },
  {
    id: 'bandwidth',
    label: '1 Mbit/s bandwidth',
    stage: 'proxied',
    apply: (t) => proxied(t).proxy.bandwidth(THIN_BYTES_PER_SECOND),
    heal: (t) => proxied(t).proxy.heal(),
  },
  {
    id: 'cluster-failover',
    label: 'cluster master of the bus channel SIGKILLed, its replica promoted',
    stage: 'cluster',
    apply: async (t) => {
      killedMaster = await clustered(t).ownerOf(busSlot(t))
      await killedMaster.kill()
    },
    heal: () => {},
    promoted: (t, timeoutMs) =>
      waitFor(timeoutMs, 'the promotion of a replica in the cluster', async () => {
        const owner = await clustered(t).ownerOf(busSlot(t))
        return owner !== killedMaster && (await owner.command('ROLE')).startsWith('master')
      }),
  },
  {
    id: 'sentinel-failover',
    label: 'Sentinel primary SIGKILLed, its replica promoted',
    stage: 'sentinel',
    apply: (t) => sentinelOf(t).primary.kill(),
    heal: () => {},
    promoted: (t, timeoutMs) =>
      waitFor(timeoutMs, 'the promotion of the replica by the sentinel', async () => {
        const { replica } = sentinelOf(t)
        return (await replica.command('ROLE')).startsWith('master')
      }),
  },
]

export const FAULT_IDS = FAULTS.map((f) => f.id)

/** A fresh stage for a failover row; the proxied stage is the run's own (see main.ts). */
export async function startStage(kind: 'cluster' | 'sentinel'): Promise<Stage> {
  return kind === 'cluster' ? { kind, cluster: await startRedisCluster({ replicasPerMaster: 1 }) } : { kind, sentinel: await startRedisSentinel() }
}

export async function stopStage(stage: Stage): Promise<void> {
  if (stage.kind === 'cluster') await stage.cluster.stop()
  else if (stage.kind === 'sentinel') await stage.sentinel.stop()
}

/** The workers' `redis` connection option on a stage (plain data: it crosses into the processes). */
export function connectionOf(stage: Stage): string | { cluster: { host: string; port: number }[] } | { sentinels: { host: string; port: number }[]; name: string } {
  switch (stage.kind) {
    case 'proxied':
      return stage.proxy.url
    case 'cluster':
      return { cluster: [...stage.cluster.startupNodes] }
    case 'sentinel':
      return { sentinels: [...stage.sentinel.sentinels], name: stage.sentinel.name }
  }
}
