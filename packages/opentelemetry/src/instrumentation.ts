/** What both entry points return. */
export interface Instrumentation {
  /**
   * Stops this instrumentation: its observable callback leaves the meter, its taps leave the
   * trace channels (unsubscribed once no cache is instrumented). Idempotent.
   */
  close(): void
}

/** An instrumentation whose `close` runs `stop` once. */
export function instrumentation(stop: () => void): Instrumentation {
  let closed = false
  return Object.freeze({
    close() {
      if (closed) return
      closed = true
      stop()
    },
  })
}
