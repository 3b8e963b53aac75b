/**
 * The package's one subscriber to the `tiercache:loader` and `tiercache:l2` tracing channels.
 * Every instrumented cache attaches its taps here, and the hub routes each call to the taps of
 * the cache named in its context (`ctx.cache`). It subscribes while at least one tap is attached
 * and unsubscribes when the last one leaves: the cache wraps and publishes its loader and L2 calls
 * only while somebody listens, so an uninstrumented process pays nothing.
 *
 * A call ends on `asyncEnd` once its promise settles, or on `end` when the call threw
 * synchronously (`error` then `end`, and no `asyncEnd` follows).
 *
 * Taps that make spans active (`enter`) are served by a store bound to the start channels, so
 * the span is the active context while the loader or the L2 call runs: see `ActiveContextStore`.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { TracingChannelSubscribers } from 'node:diagnostics_channel'
import { type Context, context, diag } from '@opentelemetry/api'
import { InvalidOptionsError, type L2TraceContext, type LoaderTraceContext, l2Channel, loaderChannel } from '@tiercache/core'
import type { InstrumentedCache } from './options.js'

/** What a tap does with one kind of call. Its methods must not throw; the hub guards them anyway. */
export interface CallTap<C extends object> {
  /** Before the call runs: the OpenTelemetry context to run it in (its span active), if any. */
  enter?(ctx: C): Context | undefined
  start(ctx: C): void
  /** The call settled, or threw: `'error' in ctx` then. */
  finish(ctx: C): void
}

export interface Tap {
  readonly loader?: CallTap<LoaderTraceContext>
  readonly l2?: CallTap<L2TraceContext>
}

interface Registration {
  readonly cache: InstrumentedCache
  /** Replaced, never changed in place: a tap attached or detached during an event leaves the loop running over it intact. */
  taps: readonly Tap[]
}

const byName = new Map<string, Registration>()
let subscribed = false
let entering = 0

/**
 * The store bound to the start channels while a tap makes spans active. A channel applies a
 * bound store to the call by calling the store's `run(value, fn)` (as Node 20 does); this one
 * enters the value as the OpenTelemetry context instead (`context.with`), so the span is active
 * under whatever context manager the application registered, and `trace.getActiveSpan()` in the
 * loader is its span. Should a Node version apply stores otherwise, the override goes unused and
 * nothing breaks: spans still get the caller's context as parent, they are just not active.
 */
class ActiveContextStore extends AsyncLocalStorage<Context | undefined> {
  override run<R, A extends unknown[]>(value: Context | undefined, fn: (...args: A) => R, ...args: A): R {
    return value === undefined ? fn(...args) : context.with(value, fn, undefined, ...args)
  }
}

const store = new ActiveContextStore()

/** Throws when another cache with the same name is instrumented: their calls could not be told apart. */
export function checkAttachable(cache: InstrumentedCache): void {
  const registration = byName.get(cache.name)
  if (registration !== undefined && registration.cache !== cache) {
    throw new InvalidOptionsError(
      'cache.name',
      `another cache named "${cache.name}" is instrumented: the trace channels and the cache attribute tell caches apart by name, so give each cache its own name option (or close the other's instrumentation first)`,
    )
  }
}

/** Routes the cache's calls to `tap` until the returned function is called (once). */
export function attach(cache: InstrumentedCache, tap: Tap): () => void {
  checkAttachable(cache)
  let registration = byName.get(cache.name)
  if (registration === undefined) byName.set(cache.name, (registration = { cache, taps: [] }))
  registration.taps = [...registration.taps, tap]
  const enters = tap.loader?.enter !== undefined || tap.l2?.enter !== undefined
  if (enters && entering++ === 0) {
    loaderChannel.start.bindStore(store, enterLoader)
    l2Channel.start.bindStore(store, enterL2)
  }
  if (!subscribed) {
    loaderChannel.subscribe(loaderHandlers)
    l2Channel.subscribe(l2Handlers)
    subscribed = true
  }
  const own = registration
  return () => {
    own.taps = own.taps.filter((t) => t !== tap)
    if (own.taps.length === 0 && byName.get(cache.name) === own) byName.delete(cache.name)
    if (enters && --entering === 0) {
      loaderChannel.start.unbindStore(store)
      l2Channel.start.unbindStore(store)
    }
    if (byName.size === 0 && subscribed) {
      loaderChannel.unsubscribe(loaderHandlers)
      l2Channel.unsubscribe(l2Handlers)
      subscribed = false
    }
  }
}

type Side<C extends object> = (tap: Tap) => CallTap<C> | undefined
const loaderSide: Side<LoaderTraceContext> = (tap) => tap.loader
const l2Side: Side<L2TraceContext> = (tap) => tap.l2

/**
 * The three events a tap needs. Node skips the events a handler object leaves out, so
 * `asyncStart` and `error` cost nothing (the error is on the context by `asyncEnd`).
 */
function handlers<C extends { readonly cache: string }>(side: Side<C>): TracingChannelSubscribers<C> {
  const subscribers: Partial<TracingChannelSubscribers<C>> = {
    start: (ctx) => each(side, ctx, 'start'),
    // A synchronous throw: `error` came first and no `asyncEnd` follows. A call that returned its
    // promise has no error yet at `end`.
    end: (ctx) => {
      if ('error' in ctx) each(side, ctx, 'finish')
    },
    asyncEnd: (ctx) => each(side, ctx, 'finish'),
  }
  return subscribers as TracingChannelSubscribers<C>
}

const loaderHandlers = handlers(loaderSide)
const l2Handlers = handlers(l2Side)

function each<C extends { readonly cache: string }>(side: Side<C>, ctx: C, event: 'start' | 'finish'): void {
  const registration = byName.get(ctx.cache)
  if (registration === undefined) return
  for (const tap of registration.taps) {
    const call = side(tap)
    if (call === undefined) continue
    // A subscriber that throws is rethrown by Node on the next tick, as an uncaught exception:
    // a faulty exporter must not bring the service down.
    try {
      call[event](ctx)
    } catch (error) {
      diag.error(`@tiercache/opentelemetry: a ${event} handler threw`, error)
    }
  }
}

/** The context the call runs in: the first entering tap's (one span can be active at a time). */
function enter<C extends { readonly cache: string }>(side: Side<C>, ctx: C): Context | undefined {
  const registration = byName.get(ctx.cache)
  if (registration === undefined) return undefined
  let entered: Context | undefined
  for (const tap of registration.taps) {
    const call = side(tap)
    if (call?.enter === undefined) continue
    // Node reports a throwing transform as an uncaught exception too.
    try {
      const own = call.enter(ctx)
      entered ??= own
    } catch (error) {
      diag.error('@tiercache/opentelemetry: starting a span threw', error)
    }
  }
  return entered
}

const enterLoader = (ctx: LoaderTraceContext): Context | undefined => enter(loaderSide, ctx)
const enterL2 = (ctx: L2TraceContext): Context | undefined => enter(l2Side, ctx)
