/**
 * Loader and L2 durations, from the core's `tiercache:loader` and `tiercache:l2` tracing
 * channels. One subscription per process serves every sink (one per registry and prefix); it
 * exists only while some sink does, since the core publishes nothing and wraps no call while a
 * channel has no subscriber.
 *
 * A call is timed from `start` to its end. With Node's `tracePromise` a promise that settles
 * (resolved or rejected) ends with `asyncEnd`; a function that throws synchronously publishes
 * `error` then `end` and never `asyncEnd`, and so does, on newer Node versions, one returning a
 * non-promise. `end` therefore closes the call when the context already holds its `error` or
 * `result`: on the promise path neither is set yet at `end`, as a promise settles later.
 */
import { type L2TraceContext, type LoaderTraceContext, l2Channel, loaderChannel } from '@tiercache/core'

export interface DurationSink {
  /** Whether a cache of this name is exported through this sink: only those are timed. */
  wants(cache: string): boolean
  loader(cache: string, family: string, seconds: number): void
  l2(cache: string, operation: string, seconds: number): void
}

const sinks = new Set<DurationSink>()
/** Start times by context object: a WeakMap, so a call that never ends leaves nothing behind. */
const started = new WeakMap<object, number>()

function start(context: { readonly cache: string }): void {
  for (const sink of sinks) {
    if (sink.wants(context.cache)) {
      started.set(context, performance.now())
      return
    }
  }
}

/** Seconds since `start`, once per context (`undefined` for a call not timed). */
function elapsed(context: object): number | undefined {
  const at = started.get(context)
  if (at === undefined) return undefined
  started.delete(context)
  return (performance.now() - at) / 1000
}

function settledSynchronously(context: object): boolean {
  return Object.hasOwn(context, 'error') || Object.hasOwn(context, 'result')
}

function loaderEnded(context: LoaderTraceContext): void {
  const seconds = elapsed(context)
  if (seconds !== undefined) for (const sink of sinks) sink.loader(context.cache, context.family, seconds)
}

function l2Ended(context: L2TraceContext): void {
  const seconds = elapsed(context)
  if (seconds !== undefined) for (const sink of sinks) sink.l2(context.cache, context.operation, seconds)
}

// Node subscribes only the handlers given (no `asyncStart`, no `error`: nothing to do there);
// the casts below are for @types/node versions whose type asks for all five.
type LoaderHandlers = Parameters<typeof loaderChannel.subscribe>[0]
type L2Handlers = Parameters<typeof l2Channel.subscribe>[0]

const loaderHandlers: Partial<LoaderHandlers> = {
  start,
  end: (context: LoaderTraceContext) => void (settledSynchronously(context) && loaderEnded(context)),
  asyncEnd: loaderEnded,
}

const l2Handlers: Partial<L2Handlers> = {
  start,
  end: (context: L2TraceContext) => void (settledSynchronously(context) && l2Ended(context)),
  asyncEnd: l2Ended,
}

/** Adds a sink, subscribing to the channels with the first; the returned function removes it. */
export function addDurationSink(sink: DurationSink): () => void {
  sinks.add(sink)
  if (sinks.size === 1) {
    loaderChannel.subscribe(loaderHandlers as LoaderHandlers)
    l2Channel.subscribe(l2Handlers as L2Handlers)
  }
  return () => {
    if (!sinks.delete(sink) || sinks.size > 0) return
    loaderChannel.unsubscribe(loaderHandlers as LoaderHandlers)
    l2Channel.unsubscribe(l2Handlers as L2Handlers)
  }
}
