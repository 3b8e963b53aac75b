/**
 * The duration histograms: a tap that notes when a loader or L2 call starts and records its
 * seconds when it settles (failures included, so the loader histogram's count is the cache's
 * `loaderCalls`). Start times live in WeakMaps keyed by the trace context, which the channel
 * hands to every event of one call: a call that never settles leaves nothing behind.
 */
import type { Attributes } from '@opentelemetry/api'
import type { L2TraceContext, LoaderTraceContext } from '@tiercache/core'
import { attributesBy } from './attributes.js'
import type { Tap } from './hub.js'
import type { DurationInstruments } from './instruments.js'

export function durationTap(instruments: DurationInstruments, base: Attributes): Tap {
  const loaderStarts = new WeakMap<LoaderTraceContext, number>()
  const l2Starts = new WeakMap<L2TraceContext, number>()
  const byFamily = attributesBy(base, 'family')
  const byOperation = attributesBy(base, 'operation')
  return {
    loader: {
      start: (ctx) => void loaderStarts.set(ctx, performance.now()),
      finish: (ctx) => {
        const started = loaderStarts.get(ctx)
        if (started === undefined) return // started before this tap was attached
        loaderStarts.delete(ctx)
        instruments.loader.record((performance.now() - started) / 1000, byFamily(ctx.family))
      },
    },
    l2: {
      start: (ctx) => void l2Starts.set(ctx, performance.now()),
      finish: (ctx) => {
        const started = l2Starts.get(ctx)
        if (started === undefined) return
        l2Starts.delete(ctx)
        instruments.l2.record((performance.now() - started) / 1000, byOperation(ctx.operation))
      },
    },
  }
}
