/**
 * The spans: a tap that starts `tiercache.loader` and `tiercache.l2.<operation>` spans as
 * children of the caller's active context, makes them active while the call runs (through the
 * hub's bound store), and ends them when the call settles, with the error recorded and status
 * ERROR when it failed. A span is started on `enter` (before the call runs) or, where a Node
 * version does not apply bound stores through `run`, on `start`; either way once per call.
 */
import { type Attributes, context, type Exception, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { L2TraceContext, LoaderTraceContext } from '@tiercache/core'
import type { Tap } from './hub.js'
import type { ResolvedTracing } from './options.js'

export const LOADER_SPAN = 'tiercache.loader'
export const L2_SPAN_PREFIX = 'tiercache.l2.'

export interface SpanTap extends Tap {
  /** Ends the spans of calls still running: detached, the tap would never hear them settle. */
  endOpen(): void
}

export function spanTap(tracing: ResolvedTracing, cacheName: string): SpanTap {
  const { tracer, attributes: extra, spanKeys } = tracing
  // Strong references, unlike the timers' WeakMaps: an open span must be ended, and close()
  // needs to find the ones still open. An entry lives as long as its call runs.
  const open = new Map<object, Span>()

  const begin = (ctx: object, name: string, kind: SpanKind, attributes: Attributes) => {
    if (open.has(ctx)) return undefined
    const parent = context.active()
    const span = tracer.startSpan(name, { kind, attributes }, parent)
    open.set(ctx, span)
    return trace.setSpan(parent, span)
  }
  const loaderSpan = (ctx: LoaderTraceContext) => {
    const attributes: Attributes = { 'tiercache.cache': cacheName, 'tiercache.family': ctx.family, 'tiercache.keys': ctx.keys }
    if (spanKeys) attributes['tiercache.key'] = ctx.key
    return begin(ctx, LOADER_SPAN, SpanKind.INTERNAL, Object.assign(attributes, extra))
  }
  const l2Span = (ctx: L2TraceContext) =>
    begin(ctx, `${L2_SPAN_PREFIX}${ctx.operation}`, SpanKind.CLIENT, { 'tiercache.cache': cacheName, 'tiercache.operation': ctx.operation, ...extra })
  const finish = (ctx: { error?: unknown }) => {
    const span = open.get(ctx)
    if (span === undefined) return
    open.delete(ctx)
    if ('error' in ctx) {
      const error = ctx.error
      span.recordException(asException(error))
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
    }
    span.end()
  }

  return {
    loader: { enter: loaderSpan, start: (ctx) => void loaderSpan(ctx), finish },
    l2: { enter: l2Span, start: (ctx) => void l2Span(ctx), finish },
    endOpen() {
      for (const span of open.values()) span.end()
      open.clear()
    },
  }
}

/** Loaders may reject with anything; `recordException` takes an error-like value or a string. */
function asException(error: unknown): Exception {
  if (error instanceof Error || typeof error === 'string') return error
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') return error as Exception
  return String(error)
}
