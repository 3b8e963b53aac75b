// Judging the reads of a chaos row against the database's history, once every process is done.
//
// Every write is logged with the entity's value after it (its hash): each task has one writer, so
// its writes are sequential and each logged value is exactly what the database held from that
// write's commit (between its start and its acknowledgement) until the next write's commit. The
// seeded value opens each history. A process logs every read of a judged entity: which value it
// returned, when it began and when it ended (a `NumberLog`, off the JS heap). Entities are
// numbered by their place in the row's list (`entities`).
//
// - A wrong value: a read returned a value the entity never held (another entity's value, a
//   corrupted or mixed-up one), or one before the write that made it had begun.
// - Stale beyond the bound: a read began more than `boundMs` after its value had been replaced,
//   counted from the earliest acknowledgement among the later writes of the entity (a write in
//   flight excuses the read: its commit may come any time before), or, for a write whose L2
//   deletes waited in the recovery queue, from that queue's replay. Each read is judged on its
//   own, so a value that comes back later does not hide a stale read of it in between.
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
  readonly hash: number
  readonly started: number
  /**
   * From when the previous value may no longer be served (plus the bound): its write's
   * acknowledgement, or, when the write's L2 part waited in the recovery queue, that queue's
   * replay. Undefined: not by the end (still in flight, or never replayed).
   */
  readonly acked: number | undefined
}

/**
 * Rows of numbers kept in a typed array that grows: a harness's records off the JS heap, so that
 * measuring the heap measures the cache, not the records.
 */
export class NumberLog {
  readonly columns: number
  #data: Float64Array
  #rows = 0

  constructor(columns: number) {
    this.columns = columns
    this.#data = new Float64Array(columns * 65_536)
  }

  add(...row: number[]): void {
    if (this.columns * (this.#rows + 1) > this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2)
      grown.set(this.#data)
      this.#data = grown
    }
    this.#data.set(row, this.columns * this.#rows++)
  }

  get rows(): number {
    return this.#rows
  }

  /** The rows, flattened, as a plain array (for JSON). */
  toArray(): number[] {
    return Array.from(this.#data.subarray(0, this.columns * this.#rows))
  }

  clear(): void {
    this.#data = new Float64Array(this.columns)
    this.#rows = 0
  }
}

/** A process's reads of judged entities: [entity index, value hash, start, end] per read, flattened. */
export type ReadRecords = readonly number[]

export interface Judgement {
  /** Reads that returned a value the entity never held. */
  wrongValues: number
  /** Reads that began more than the bound after their value had been replaced. */
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

/**
 * A stable hash of a value, 48 bits as a number (a plain float in a typed array, no string on the
 * heap): of its JSON with object keys sorted, so that key order does not count.
 */
export function valueHash(value: unknown): number {
  return createHash('sha1').update(canonical(value)).digest().readUIntBE(0, 6)
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

/** Judges every process's reads against the history. */
export function judge(history: ReadonlyMap<string, readonly Version[]>, entities: readonly string[], processes: readonly ReadRecords[], boundMs: number): Judgement {
  const out: Judgement = { wrongValues: 0, staleBeyondBound: 0, examples: [] }
  const example = (text: string) => {
    if (out.examples.length < 6) out.examples.push(text)
  }
  for (const reads of processes) {
    for (let r = 0; r < reads.length; r += 4) {
      const entity = entities[reads[r] as number] as string
      const hash = reads[r + 1] as number
      const start = reads[r + 2] as number
      const end = reads[r + 3] as number
      const versions = history.get(entity) ?? []
      // The value read: the last version with it begun before the read ended.
      let index = -1
      for (let i = versions.length - 1; i >= 0; i--) {
        const v = versions[i] as Version
        if (v.hash === hash && v.started <= end) {
          index = i
          break
        }
      }
      if (index === -1) {
        out.wrongValues++
        example(`${entity}: ${versions.some((v) => v.hash === hash) ? 'a value read before the write that made it began' : 'a value it never held'}`)
        continue
      }
      // Replaced at the earliest acknowledgement of a later write (a queued one's replay may come
      // after a later write's acknowledgement).
      let replaced = Infinity
      for (let i = index + 1; i < versions.length; i++) {
        const acked = (versions[i] as Version).acked
        if (acked !== undefined && acked < replaced) replaced = acked
      }
      if (start > replaced + boundMs) {
        out.staleBeyondBound++
        example(`${entity}: served ${Math.round(start - replaced)} ms after it was replaced`)
      }
    }
  }
  return out
}
