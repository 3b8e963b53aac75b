// Shared measuring loops for the peer and baseline rows of l1-hit and l2-hit, so that every
// library is timed by the same code: same batch sizes, same key rotation, same checks.
import { measure } from '../measure.js'
import type { ChildContext, Row } from '../scenario.js'

/** Gets per timed call for an L1 hit: one get is below the timer's resolution. */
export const L1_BATCH = 256
/** Keys the l2-hit rows rotate over (each read misses L1: capacity 1, or no L1 at all). */
export const L2_KEYS = 1000
/** Concurrency of the `64 in flight` group. */
export const IN_FLIGHT = 64

export const L2_GROUPS = { serial: 'one at a time', concurrent: `${IN_FLIGHT} in flight` } as const

type Get = (key: string) => unknown

function check(value: unknown, what: string): void {
  // A benchmark that silently measures misses is worse than none.
  if (value === undefined || value === null) throw new Error(`${what}: the key is not resident; the row would measure a miss`)
}

/** ops/s and latency of reading one resident key, awaited (an async get). */
export async function measureL1Async(get: Get, key: string, ctx: Pick<ChildContext, 'timeMs'>, what: string) {
  check(await get(key), what)
  return measure(
    async () => {
      for (let i = 0; i < L1_BATCH; i++) await get(key)
    },
    { timeMs: ctx.timeMs, opsPerCall: L1_BATCH },
  )
}

/** The same for a synchronous get. */
export async function measureL1Sync(get: Get, key: string, ctx: Pick<ChildContext, 'timeMs'>, what: string) {
  check(get(key), what)
  let sink: unknown
  const result = await measure(
    () => {
      for (let i = 0; i < L1_BATCH; i++) sink = get(key)
    },
    { timeMs: ctx.timeMs, opsPerCall: L1_BATCH },
  )
  if (sink === undefined) throw new Error(`${what}: lost the key while measuring`)
  return result
}

export function l2Keys(prefix: string): string[] {
  return Array.from({ length: L2_KEYS }, (_, i) => `${prefix}k${i}`)
}

/** Two rows (one at a time, 64 in flight) for reads that miss L1 and hit Redis, over rotating keys. */
export async function measureL2(get: Get, keys: readonly string[], ctx: Pick<ChildContext, 'timeMs' | 'redis'>, row: Omit<Row, 'group'>): Promise<Row[]> {
  check(await get(keys[0]!), `${row.name} ${row.variant}`)
  check(await get(keys[keys.length - 1]!), `${row.name} ${row.variant}`)
  let next = 0
  const readsBefore = await redisReads(ctx)
  const serial = await measure(
    async () => {
      await get(keys[next++ % keys.length]!)
    },
    { timeMs: ctx.timeMs },
  )
  const batch: unknown[] = new Array(IN_FLIGHT)
  const concurrent = await measure(
    async () => {
      for (let i = 0; i < IN_FLIGHT; i++) batch[i] = get(keys[next++ % keys.length]!)
      await Promise.all(batch)
    },
    { timeMs: ctx.timeMs, opsPerCall: IN_FLIGHT, latencyPerOp: false },
  )
  // Every measured read must reach Redis, or the row measures an L1 hit: the server's own count
  // of key reads tells. (Other clients of a shared server can only raise it, never hide a gap.)
  const reads = (await redisReads(ctx)) - readsBefore
  if (Number.isFinite(reads) && reads < 0.9 * next) {
    row = { ...row, note: `only ${Math.round((100 * reads) / next)}% of reads reached Redis${row.note ? `; ${row.note}` : ''}` }
  }
  const figures = ({ opsPerSec, p50Us, p99Us, maxUs }: { opsPerSec: number; p50Us: number; p99Us: number; maxUs: number }) => ({ opsPerSec, p50Us, p99Us, maxUs })
  return [
    { ...row, group: L2_GROUPS.serial, ...figures(serial) },
    { ...row, group: L2_GROUPS.concurrent, ...figures(concurrent), note: row.note ? `${row.note}; latency of a whole batch` : 'latency of a whole batch' },
  ]
}

/** keyspace_hits + keyspace_misses of the server: key reads it has served. NaN when unknown. */
async function redisReads(ctx: Pick<ChildContext, 'redis'>): Promise<number> {
  const { sendCommand } = await import('@tiercache/testkit')
  const info = await sendCommand(ctx.redis.port, ['INFO', 'stats'], { host: ctx.redis.host }).catch(() => '')
  return Number(/keyspace_hits:(\d+)/.exec(info)?.[1] ?? NaN) + Number(/keyspace_misses:(\d+)/.exec(info)?.[1] ?? NaN)
}

export const l1Figures = (m: { opsPerSec: number; p50Us: number; p99Us: number; maxUs: number }) => ({ opsPerSec: m.opsPerSec, p50Us: m.p50Us, p99Us: m.p99Us, maxUs: m.maxUs })
