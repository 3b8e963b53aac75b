// Judging the reads of a chaos row against the database's history, once every process is done.
//
// Every write is logged with the entity's value after it (its hash): each task has one writer, so
// its writes are sequential and each logged value is exactly what the database held from that
// write's commit (between its start and its acknowledgement) until the next write's commit. The
// seeded value opens each history. A process keeps, per entity and value read, how many reads
// returned it, the earliest end of one, and the latest start of one (with that read's end).
//
// - A wrong value: a read returned a value the entity never held (another entity's value, a
//   corrupted or mixed-up one), or one before the write that made it had begun.
// - Stale beyond the bound: a read began more than `boundMs` after the value had been replaced,
//   the replacement counted from its write's acknowledgement (a write in flight excuses the read:
//   its commit may come any time before), or from the replay of the recovery queue that held the
//   write's L2 deletes. Counted per entity and value served so: 0 means no read
//   at all was.
import { createHash } from 'node:crypto'

/**
 * The one clock of a chaos row, in ms: the system's monotonic clock, the same in every process of
 * the machine. (`performance.timeOrigin` is fixed per process at its start and can be a
 * millisecond or more off another process's, which is enough to misjudge the order of a write and
 * a read that follows it at once.)
 */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

/** One value of an entity in the database's history: from `started` (its write began) on. */
export interface Version {
  readonly hash: string
  readonly started: number
  /**
   * From when the previous value may no longer be served (plus the bound): its write's
   * acknowledgement, or, when the write's L2 part waited in the recovery queue, that queue's
   * replay. Undefined: not by the end (still in flight, or never replayed).
   */
  readonly acked: number | undefined
}

/** What one process saw of one value of one entity. */
export interface Seen {
  reads: number
  /** The earliest end of a read that returned it. */
  firstEnd: number
  /** The latest start of a read that returned it, and that read's end. */
  lastStart: number
  lastStartEnd: number
}

export interface Judgement {
  /** Reads that returned a value the entity never held. */
  wrongValues: number
  /** Entity values served by a read that began more than the bound after they were replaced. */
  staleBeyondBound: number
  /** A few of each, for the notes. */
  examples: string[]
}

/** A process's counters at one moment: [time, l2Hits, l2Errors, breaker closed (1) or not (0)]. */
export type Sample = [number, number, number, number]

/** When every process's L2 answered again after `healAt`: the first clean sample of each, the latest of them. */
export function recoveryOf(samples: readonly (readonly Sample[])[], healAt: number): number | null {
  let worst = 0
  for (const list of samples) {
    let found: number | undefined
    for (let i = 1; i < list.length; i++) {
      const [t, hits, errors, closed] = list[i] as Sample
      const [, prevHits, prevErrors] = list[i - 1] as Sample
      if (t >= healAt && hits > prevHits && errors === prevErrors && closed === 1) {
        found = t - healAt
        break
      }
    }
    if (found === undefined) return null
    worst = Math.max(worst, found)
  }
  return Math.round(worst)
}

/** A stable hash of a value: its JSON with object keys sorted, so that key order does not count. */
export function valueHash(value: unknown): string {
  return createHash('sha1').update(canonical(value)).digest('base64url').slice(0, 16)
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined'
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  // As in JSON, a key whose value is undefined is no key at all.
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
}

/** Records one read of `hash` for `entity` in a process's map. */
export function recordSeen(seen: Map<string, Map<string, Seen>>, entity: string, hash: string, start: number, end: number): void {
  let byHash = seen.get(entity)
  if (byHash === undefined) seen.set(entity, (byHash = new Map()))
  const s = byHash.get(hash)
  if (s === undefined) {
    byHash.set(hash, { reads: 1, firstEnd: end, lastStart: start, lastStartEnd: end })
    return
  }
  s.reads++
  if (end < s.firstEnd) s.firstEnd = end
  if (start > s.lastStart) {
    s.lastStart = start
    s.lastStartEnd = end
  }
}

/** Judges what the processes saw (entity → hash → seen, one map per process) against the history. */
export function judge(history: ReadonlyMap<string, readonly Version[]>, processes: readonly ReadonlyMap<string, ReadonlyMap<string, Seen>>[], boundMs: number): Judgement {
  const out: Judgement = { wrongValues: 0, staleBeyondBound: 0, examples: [] }
  const example = (text: string) => {
    if (out.examples.length < 6) out.examples.push(text)
  }
  for (const seen of processes) {
    for (const [entity, byHash] of seen) {
      const versions = history.get(entity) ?? []
      for (const [hash, s] of byHash) {
        // The value as of the latest read: the last version with this value begun before that read ended.
        let index = -1
        for (let i = versions.length - 1; i >= 0; i--) {
          const v = versions[i] as Version
          if (v.hash === hash && v.started <= s.lastStartEnd) {
            index = i
            break
          }
        }
        const everHeld = versions.some((v) => v.hash === hash)
        if (index === -1 || !everHeld || !versions.some((v) => v.hash === hash && v.started <= s.firstEnd)) {
          out.wrongValues += s.reads
          example(`${entity}: ${everHeld ? 'a value read before the write that made it began' : 'a value it never held'} (${s.reads} reads)`)
          continue
        }
        const next = versions[index + 1]
        if (next?.acked !== undefined && s.lastStart > next.acked + boundMs) {
          out.staleBeyondBound++
          example(`${entity}: served ${Math.round(s.lastStart - next.acked)} ms after it was replaced`)
        }
      }
    }
  }
  return out
}
