/**
 * The cache's trace points, as `node:diagnostics_channel` tracing channels: how metrics and
 * tracing exporters (`@tiercache/prometheus`, `@tiercache/opentelemetry`, or a service's own)
 * time loader calls and L2 operations without the cache knowing them.
 *
 * - `tiercache:loader`: one loader call (single key or batch), context `{ cache, family, key }`
 *   (`key` is the first key of a batch; `keys` its size).
 * - `tiercache:l2`: one call through the L2 guard, context `{ cache, operation }` (`get`,
 *   `getMany`, `set`, `apply`, `publish`, `acquireLease`, …).
 *
 * Each call publishes `start`, `end` and, once its promise settles, `asyncStart`/`asyncEnd` with
 * `result`, or `error` then `asyncStart`/`asyncEnd` with `error`, on the same context object: a
 * subscriber keeps what it needs (a start time, a span) on the context, or in a WeakMap keyed by
 * it. Nothing is published, and the call is not wrapped, while nobody subscribes: the check is
 * one property read of the start channel (`TracingChannel.hasSubscribers` reads five).
 */
import { tracingChannel } from 'node:diagnostics_channel'

export interface LoaderTraceContext {
  /** The cache's `name` option. */
  readonly cache: string
  /** The family id (`task:status@1`). */
  readonly family: string
  /** The key the loader runs for (a batch: its first key). */
  readonly key: string
  /** How many keys the call loads (1 but for a batch loader). */
  readonly keys: number
  /** Set by the channel when the call settles. */
  result?: unknown
  error?: unknown
}

export interface L2TraceContext {
  readonly cache: string
  readonly operation: string
  result?: unknown
  error?: unknown
}

export const LOADER_CHANNEL = 'tiercache:loader'
export const L2_CHANNEL = 'tiercache:l2'

export const loaderChannel = tracingChannel<unknown, LoaderTraceContext>(LOADER_CHANNEL)
export const l2Channel = tracingChannel<unknown, L2TraceContext>(L2_CHANNEL)
