/**
 * Statistics debouncing (`statsMaxStaleness`). Global statistics change with every write, and
 * reloading them once per write would cost as much as not caching them. Every write marks them
 * dirty instead, and one invalidation at the next tick of a half-window wall-clock grid covers all
 * writes before it; the other half of the window is left for bus delivery and the reload. The grid
 * is the same in every process, so the invalidations of busy processes land together and the
 * statistics are reloaded about once per tick for the whole service, not once per write or per
 * process.
 */
import type { Family, Logger } from '@tiercache/core'
import type { TaskStatistics } from './model.js'

export class StatisticsDebounce {
  readonly #stats: Family<'global', TaskStatistics>
  readonly #maxStalenessMs: number
  readonly #log: Logger
  readonly #onFlushed: () => void
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  /** `onFlushed` runs after each applied invalidation. */
  constructor(stats: Family<'global', TaskStatistics>, maxStalenessMs: number, log: Logger, onFlushed: () => void) {
    this.#stats = stats
    this.#maxStalenessMs = maxStalenessMs
    this.#log = log
    this.#onFlushed = onFlushed
  }

  /** Marks the statistics dirty. With no staleness allowed, resolves once they are invalidated. */
  changed(): Promise<void> {
    if (this.#maxStalenessMs === 0) return this.#flushNow()
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        // Errors are logged inside; the timer must never leave a rejection behind.
        void this.#flushNow()
      }, untilNextTick(Date.now(), this.#maxStalenessMs / 2))
      this.#timer.unref()
    }
    return Promise.resolve()
  }

  /** Applies a pending invalidation now (or waits for the one under way). */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      await this.#flushNow()
    } else if (this.#flushing !== undefined) {
      await this.#flushing
    }
  }

  #flushNow(): Promise<void> {
    const flush = this.#stats
      .delete('global')
      .then(
        () => this.#onFlushed(),
        (error: unknown) => this.#log.warn({ err: error }, 'task statistics invalidation failed'),
      )
      .finally(() => {
        if (this.#flushing === flush) this.#flushing = undefined
      })
    this.#flushing = flush
    return flush
  }
}

/** Milliseconds from `now` to the next multiple of `tick` (at least 1). */
function untilNextTick(now: number, tick: number): number {
  if (tick < 1) return 1
  return Math.max(1, Math.ceil(tick - (now % tick)))
}
