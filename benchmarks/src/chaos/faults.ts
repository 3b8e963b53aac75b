// The faults of `pnpm chaos`: each is put on at the row's fault time and taken off at its heal
// time, by the runner, on the one Redis every process reaches through the fault proxy.
import type { FaultProxy, RedisServer } from '@tiercache/testkit'

export interface FaultTargets {
  readonly redis: RedisServer
  readonly proxy: FaultProxy
}

export interface Fault {
  readonly id: string
  /** What the row is called in the table. */
  readonly label: string
  apply(t: FaultTargets): Promise<void> | void
  heal(t: FaultTargets): Promise<void> | void
}

/** How often the dropped-connections fault cuts every connection. */
const DROP_EVERY_MS = 500
/** 1 Mbit/s. */
const THIN_BYTES_PER_SECOND = 125_000
const ADDED_LATENCY_MS = 500

let dropping: NodeJS.Timeout | undefined

export const FAULTS: readonly Fault[] = [
  {
    id: 'kill',
    label: 'Redis SIGKILL, restarted on the same port',
    apply: (t) => t.redis.kill(),
    heal: (t) => t.redis.restart(),
  },
  {
    id: 'pause',
    label: 'Redis SIGSTOP, then SIGCONT',
    apply: (t) => t.redis.pause(),
    heal: (t) => t.redis.resume(),
  },
  {
    id: 'latency',
    label: `${ADDED_LATENCY_MS} ms added latency, open connections too`,
    apply: (t) => t.proxy.delay(ADDED_LATENCY_MS),
    heal: (t) => t.proxy.heal(),
  },
  {
    id: 'dropped',
    label: `every connection dropped every ${DROP_EVERY_MS} ms`,
    apply: (t) => {
      t.proxy.cut()
      dropping = setInterval(() => t.proxy.cut(), DROP_EVERY_MS)
    },
    heal: (t) => {
      clearInterval(dropping)
      dropping = undefined
      t.proxy.heal()
    },
  },
  {
    id: 'half-open',
    label: 'half-open connections (open, never answered)',
    apply: (t) => t.proxy.halfOpen(),
    heal: (t) => t.proxy.heal(),
  },
  {
    id: 'bandwidth',
    label: '1 Mbit/s bandwidth',
    apply: (t) => t.proxy.bandwidth(THIN_BYTES_PER_SECOND),
    heal: (t) => t.proxy.heal(),
  },
]

export const FAULT_IDS = FAULTS.map((f) => f.id)
