/**
 * Statistics debouncing (`statsMaxStaleness`). Global statistics change with every write, and
 * reloading them once per write would cost as much as not caching them. Every write marks them
 * dirty instead, and one invalidation at the next tick of a half-window wall-clock grid covers all
 * writes marked before that tick; the other half of the window is left for bus delivery and the
 * reload. A write marked once the tick is due (its timer late on a busy event loop) waits for the
 * next tick, so that a late timer does not make its tick cover writes other processes' ticks
 * could not.
 *
 * A tick's invalidation is soft (`expire`): the statistics stay, stale, and readers keep getting
 * them at once while one reload runs (once across the processes, through the lease), so no reader
 * waits on the statistics query. Below, "delete" means that invalidation: like a delete it voids
 * the loads and leases begun before it, in L2 and in every L1.
 *
 * Across processes. The grid is the same in every process, so busy processes reach tick T
 * together. An invalidation made by any of them after another's writes covers those writes too:
 * once the statistics are deleted, no load that started before can fill L2 (the delete voids its
 * lease) or an L1 (the bus message voids it), so whatever is cached afterwards was loaded after the
 * delete. Were each process to delete anyway, their deletes would land milliseconds apart, each
 * killing the reload the previous one let start: up to one reload per process and tick. So a
 * process that invalidates records when it began (family `task:stats-invalidated`, one small entry
 * beside the statistics, written once the delete is done), and a tick first reads that record: an
 * invalidation begun after this process's last covered write means the work is done (this
 * process's L1 copy goes when that delete's bus message arrives, as for any invalidation); else
 * the tick deletes and records in turn.
 *
 * Why a record of the invalidation rather than a load time carried by the value: the other
 * processes' ticks fire in the window between the first delete and the reload's fill, when L2
 * holds no value to look at, and a process that finds none cannot tell a reload begun after its
 * writes from one begun before them (whose fill would land unless voided): it would have to delete
 * again, killing the reload in flight, which is the cost this removes.
 *
 * What it assumes and costs.
 * - Record and writes are compared by wall clock. Within one host, or with NTP, clocks agree far
 *   better than the gap between a write and another process's invalidation; a clock behind the
 *   others' by more can skip an invalidation its write needed, and the statistics then miss that
 *   write until the next invalidation (a later tick with writes) or their TTL. Equal milliseconds
 *   count as not covered.
 * - Two processes that read the record before either wrote it both delete. The second delete costs
 *   a reload only if one began between the two; the record narrows that window to the round trips
 *   between a read and a delete (longer if the event loop is blocked between them), instead of the
 *   length of a reload.
 * - Per tick, each dirty process reads the record (from L1 unless another process changed it), and
 *   about one process per tick deletes and writes it.
 * - A delete L2 could not take is queued by the core for recovery; if the record then reaches L2
 *   (L2 back in between), the others skip until the queue has replayed the delete.
 *
 * `statsMaxStaleness: 0` is unchanged: every write deletes the statistics before it resolves, and
 * no record is read or written.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Family, Logger, TieredCache } from '@tiercache/core'
import { z } from 'zod'
import type { TaskStatistics } from './model.js'

/** When an invalidation of the statistics began (epoch ms, the invalidating process's clock). */
export interface StatisticsInvalidation {
  readonly at: number
}

const StatisticsInvalidationSchema = z.object({ at: z.number() })

/** The family of the record, beside the six task families (not one of them: it holds no domain data). */
export const STATISTICS_INVALIDATION_FAMILY = 'task:stats-invalidated'

/** Declares the record's family on a cache; it lives long enough to be compared with any write a tick covers. */
export function statisticsInvalidationFamily(cache: TieredCache, maxStalenessMs: number): Family<'global', StatisticsInvalidation> {
  return cache.family<'global', StatisticsInvalidation>({
    name: STATISTICS_INVALIDATION_FAMILY,
    version: 1,
    ttl: Math.max(2 * maxStalenessMs, 1_000),
    key: (key) => key,
    schema: StatisticsInvalidationSchema,
  })
}

/**
 * The tick's writes are awaited whatever the cache's `backgroundWrites`: nobody waits for a timer,
 * and the record must not reach L2 before the delete it stands for.
 */
const AWAITED = Object.freeze({ background: false })

export class StatisticsDebounce {
  readonly #stats: Family<'global', TaskStatistics>
  readonly #invalidations: Family<'global', StatisticsInvalidation>
  readonly #maxStalenessMs: number
  readonly #log: Logger
  readonly #onFlushed: () => void
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  /** The tick the timer is for. */
  #due = 0
  /** When the last write before `#due` was marked: what the tick must cover. */
  #covered = 0
  /** When the last write at or after `#due` was marked (the timer late): for the next tick. */
  #later: number | undefined
  readonly #running = new Set<Promise<void>>()

  /**
   * `onFlushed` runs after each invalidation this process applies (not after a tick another
   * process covered). `now`: the wall clock, compared across processes.
   */
  constructor(
    stats: Family<'global', TaskStatistics>,
    invalidations: Family<'global', StatisticsInvalidation>,
    maxStalenessMs: number,
    log: Logger,
    onFlushed: () => void,
    now: () => number = Date.now,
  ) {
    this.#stats = stats
    this.#invalidations = invalidations
    this.#maxStalenessMs = maxStalenessMs
    this.#log = log
    this.#onFlushed = onFlushed
    this.#now = now
  }

  /**
   * Marks the statistics dirty; call it after the write committed. With no staleness allowed,
   * resolves once they are invalidated.
   */
  changed(): Promise<void> {
    if (this.#maxStalenessMs === 0) return this.#track(this.#delete())
    const now = this.#now()
    if (this.#timer === undefined) this.#arm(now)
    else if (now < this.#due) this.#covered = now
    else this.#later = now
    return Promise.resolve()
  }

  /** Applies a pending invalidation now, covering every write marked so far (and waits for those under way). */
  async flush(): Promise<void> {
    const under = [...this.#running]
    if (this.#timer !== undefined) {
      const covered = Math.max(this.#covered, this.#later ?? 0)
      this.#disarm()
      under.push(this.#run(covered))
    }
    await Promise.all(under)
  }

  #arm(markedAt: number): void {
    this.#due = nextTick(markedAt, this.#maxStalenessMs / 2)
    this.#covered = markedAt
    this.#later = undefined
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, this.#due - this.#now()))
    this.#timer.unref()
  }

  #disarm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#later = undefined
  }

  #fire(): void {
    const covered = this.#covered
    const later = this.#later
    this.#timer = undefined
    if (later !== undefined) this.#arm(later)
    // Errors are logged inside; the timer must never leave a rejection behind.
    void this.#run(covered)
  }

  /** The tick: invalidates unless an invalidation begun after `covered` is recorded. Never rejects. */
  #run(covered: number): Promise<void> {
    return this.#track(this.#tick(covered))
  }

  async #tick(covered: number): Promise<void> {
    // Bus messages already received are applied first: another process's record may have
    // replaced ours, and its message drops our L1 copy of the older one.
    await nextTurn()
    const last = await this.#invalidations.get('global')
    if (last !== undefined && last.at > covered) {
      this.#log.debug({ coveredBy: last.at, covered }, 'task statistics invalidation already made by another process')
      return
    }
    // Read before the delete is sent: a reload that the delete lets through started after this.
    // A record written between the read above and the delete (another process's) is not seen:
    // both delete, and a reload that began between the two deletes is made again.
    const at = this.#now()
    await this.#delete()
    try {
      await this.#invalidations.set('global', { at }, AWAITED)
    } catch (error) {
      // The invalidation is made; only the other processes' skipping it is lost.
      this.#log.warn({ err: error }, 'task statistics invalidation not recorded: the other processes invalidate too')
    }
  }

  /**
   * Invalidates the statistics on every process; with ticks, awaited. With ticks it expires them
   * (soft invalidation): readers keep the previous statistics while one reload runs, so none waits
   * on the statistics query, and the lag stays within the window. Without, it deletes them: the
   * next reader loads the statistics after the write.
   */
  async #delete(): Promise<void> {
    if (this.#maxStalenessMs === 0) await this.#stats.delete('global')
    else await this.#stats.expire('global', AWAITED)
    this.#onFlushed()
  }

  /** Logs a failure (never rethrown: timers and writes must not fail on it) and tracks the work for `flush()`. */
  #track(work: Promise<void>): Promise<void> {
    const tracked: Promise<void> = work
      .catch((error: unknown) => this.#log.warn({ err: error }, 'task statistics invalidation failed'))
      .finally(() => this.#running.delete(tracked))
    this.#running.add(tracked)
    return tracked
  }
}

/** The first multiple of `tick` after `now` (now + 1 for ticks under a millisecond). */
function nextTick(now: number, tick: number): number {
  if (tick < 1) return now + 1
  return (Math.floor(now / tick) + 1) * tick
}
