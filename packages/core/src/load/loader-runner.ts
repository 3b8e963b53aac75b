/**
 * Runs a loader under the soft and hard timeouts and says how it went, as a tagged outcome.
 *
 * - `timeout` (soft) applies only with a stale copy at hand: the copy answers, the loader keeps
 *   running in the background and its value still lands (through `late`), so the next reader finds
 *   it. The hard timeout still bounds that background load.
 * - `hardTimeout` fails the call with `LoaderTimeoutError` and aborts the loader's `signal`.
 * A value or an error arriving after the call was answered ends the flight (`release`).
 */
import { loaderChannel } from '../diagnostics.js'
import { parseDuration } from '../duration.js'
import { LoaderTimeoutError } from '../errors.js'
import type { FamilyContext, Loader, LoaderContext } from '../family.js'
import type { EntrySettings } from '../options.js'
import type { Telemetry } from '../telemetry.js'
import type { Flight } from './flights.js'

/** The lifetime a loader chose for its value (`ctx.setTtl`, `ctx.setGrace`), in ms. */
export interface Lifetime {
  ttl?: number
  grace?: number
}

export type Outcome =
  | { readonly kind: 'value'; readonly value: unknown; readonly lifetime: Lifetime | undefined }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'soft-timeout' }
  | { readonly kind: 'hard-timeout' }

const SOFT_TIMEOUT: Outcome = Object.freeze({ kind: 'soft-timeout' })
const HARD_TIMEOUT: Outcome = Object.freeze({ kind: 'hard-timeout' })

/** One loader call: who, what, and where a late result goes. */
export interface LoaderCall {
  readonly fc: FamilyContext
  readonly id: string
  readonly loader: Loader<unknown>
  readonly settings: EntrySettings
  /**
   * A stale copy within grace: makes the soft timeout apply, and is the loader's `staleValue`.
   * `stands`: whether it may still be served (its tags may be invalidated while the loader runs).
   */
  readonly stale: { readonly value: unknown; readonly stands?: () => boolean } | undefined
  readonly flight: Flight
  /** How many keys the loader loads: a batch loader's keys (see get-or-set-many.ts). @default 1 */
  readonly keys?: number
  /** Ends the flight once a background load is over. */
  readonly release: () => void
  /** Lands a value that arrived after the call was answered. */
  readonly late: (value: unknown, lifetime: Lifetime | undefined) => void
}

export class LoaderRunner {
  readonly #telemetry: Telemetry
  readonly #name: string

  constructor(telemetry: Telemetry, name: string) {
    this.#telemetry = telemetry
    this.#name = name
  }

  run(call: LoaderCall): Promise<Outcome> {
    const { fc, id, loader, settings, stale, flight, release, late } = call
    const telemetry = this.#telemetry
    telemetry.count(fc, 'loaderCalls')
    const started = performance.now()
    const controller = new AbortController()
    let lifetime: Lifetime | undefined
    const context: LoaderContext<unknown> = {
      key: id,
      staleValue: stale?.value,
      signal: controller.signal,
      setTtl: (ttl) => {
        ;(lifetime ??= {}).ttl = parseDuration(ttl, 'setTtl')
      },
      setGrace: (grace) => {
        ;(lifetime ??= {}).grace = parseDuration(grace, 'setGrace')
      },
    }
    return new Promise<Outcome>((resolve) => {
      let settled = false
      let soft: ReturnType<typeof setTimeout> | undefined
      let hard: ReturnType<typeof setTimeout> | undefined
      const settle = (outcome: Outcome): boolean => {
        if (settled) return false
        settled = true
        if (soft !== undefined) clearTimeout(soft)
        if (hard !== undefined) clearTimeout(hard)
        resolve(outcome)
        return true
      }
      let result: Promise<unknown>
      try {
        // Traced only while someone listens (see diagnostics.ts).
        result = loaderChannel.start.hasSubscribers
          ? loaderChannel.tracePromise(() => Promise.resolve(loader(context)), { cache: this.#name, family: fc.id, key: id, keys: call.keys ?? 1 })
          : Promise.resolve(loader(context))
      } catch (error) {
        result = Promise.reject(error)
      }
      result.then(
        (value) => {
          telemetry.loaded(fc, performance.now() - started)
          if (!settle({ kind: 'value', value, lifetime })) {
            try {
              late(value, lifetime)
            } catch (error) {
              telemetry.background('late fill', error)
            }
            release()
          }
        },
        (error: unknown) => {
          if (!settle({ kind: 'error', error })) {
            telemetry.count(fc, 'loaderErrors')
            telemetry.logger.warn({ err: error, key: id, family: fc.id }, 'tiercache background load failed')
            release()
          }
        },
      )
      if (stale !== undefined && settings.timeout !== undefined) {
        // A copy that no longer stands answers nobody: the caller waits for the loader.
        soft = setTimeout(() => {
          if (stale.stands === undefined || stale.stands()) settle(SOFT_TIMEOUT)
        }, settings.timeout)
      }
      if (settings.hardTimeout !== undefined) {
        const ms = settings.hardTimeout
        hard = setTimeout(() => {
          if (settle(HARD_TIMEOUT)) controller.abort(new LoaderTimeoutError(id, ms))
        }, ms)
      }
      // A soft timeout that already answered: the hard one still bounds the background load.
      if (stale !== undefined && settings.timeout !== undefined && settings.hardTimeout !== undefined) {
        const ms = settings.hardTimeout
        const bound = setTimeout(() => {
          if (flight.background) {
            controller.abort(new LoaderTimeoutError(id, ms))
            release()
          }
        }, ms)
        bound.unref?.()
        result.then(
          () => clearTimeout(bound),
          () => clearTimeout(bound),
        )
      }
    })
  }
}
