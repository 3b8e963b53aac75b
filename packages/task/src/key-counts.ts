/**
 * The statistics' keys per family. Counting them is a SCAN of the whole namespace, and an operator
 * page refreshes its statistics every few seconds: the counts are taken at most once per
 * `maxAgeMs` (a minute) and reused in between, while memory and connection state stay live.
 * Concurrent reads share one scan. An operator's action (a clear, a warmup, a cleanup) forgets
 * the counts, so that the next read shows its effect rather than minute-old numbers; a scan
 * started before that still ends, but what it found is dropped (it may predate the action).
 * Counts are only taken while L2 is connected; a scan that fails leaves the previous counts,
 * whose time says how old they are.
 */
import type { Logger, TieredCache } from '@tiercache/core'

/** How long key counts are reused before the next scan, in ms. */
export const KEY_COUNT_MAX_AGE_MS = 60_000

export interface KeyCountSnapshot {
  /** Keys per family (`<name>@<version>`). */
  readonly byFamily: Readonly<Record<string, number>>
  /** When the scan that took them ended (epoch ms). */
  readonly countedAt: number
}

export class KeyCounts {
  readonly #cache: TieredCache
  readonly #maxAgeMs: number
  readonly #now: () => number
  readonly #log: Logger
  #last: KeyCountSnapshot | undefined
  #scanning: Promise<KeyCountSnapshot | undefined> | undefined
  /** Bumped by `forget()`: a scan of an older generation neither stores its counts nor ends the newer scan. */
  #generation = 0

  constructor(cache: TieredCache, log: Logger, maxAgeMs = KEY_COUNT_MAX_AGE_MS, now: () => number = Date.now) {
    this.#cache = cache
    this.#log = log
    this.#maxAgeMs = maxAgeMs
    this.#now = now
  }

  /** The counts, scanned again when older than the maximum age; undefined before any scan succeeded. Never rejects. */
  read(): Promise<KeyCountSnapshot | undefined> {
    const last = this.#last
    if (last !== undefined && this.#now() - last.countedAt < this.#maxAgeMs) return Promise.resolve(last)
    if (this.#scanning !== undefined) return this.#scanning
    const generation = this.#generation
    const scanning = this.#scan(generation).finally(() => {
      if (this.#scanning === scanning) this.#scanning = undefined
    })
    this.#scanning = scanning
    return scanning
  }

  /** Drops the counts: the next read scans (a scan under way still ends, but is not reused after). */
  forget(): void {
    this.#last = undefined
    this.#scanning = undefined
    this.#generation++
  }

  async #scan(generation: number): Promise<KeyCountSnapshot | undefined> {
    try {
      const info = await this.#cache.l2Info()
      const current = generation === this.#generation
      if (current && info !== undefined && info.connection === 'ready') this.#last = { byFamily: info.keysByFamily, countedAt: this.#now() }
    } catch (error) {
      this.#log.warn({ err: error }, 'task cache statistics: keys not counted')
    }
    return this.#last
  }
}
