/**
 * Request bodies of the admin handler. Its routes take none but the sign-in form's, yet a client
 * may send one anyway, and a hostile one may send a huge body or trickle one in to hold the
 * connection (slowloris). The handler acts only once the body has ended within the limits, so that
 * an operation never runs for a request still arriving; the body is kept for the sign-in form
 * alone, and discarded elsewhere.
 */
import type { IncomingMessage } from 'node:http'

export type BodyOutcome =
  /** The body ended (or there was none) within the limits. */
  | 'ended'
  /** More than `maxBytes` were declared or received. */
  | 'too-large'
  /** The body had not ended `timeoutMs` after the request arrived. */
  | 'timeout'
  /** The client went away before the body ended: there is no one to answer. */
  | 'aborted'

const EMPTY = Buffer.alloc(0)

export interface BodyLimits {
  maxBytes: number
  timeoutMs: number
}

/** Whether the declared `content-length` alone is over the limit, so the body need not be read. */
export function declaresTooLarge(req: IncomingMessage, maxBytes: number): boolean {
  // node:http has already refused a content-length that is not a plain decimal number.
  const declared = req.headers['content-length']
  return declared !== undefined && Number(declared) > maxBytes
}

/**
 * Reads the body, and calls `done` once with the outcome, as soon as it is known: a body passing
 * `maxBytes` is not read further. With `keep`, `done` gets the body once it ended (else an empty
 * buffer). The timer is cleared whatever the outcome, so that no request leaves one behind to keep
 * the process alive.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits, keep: boolean, done: (outcome: BodyOutcome, body: Buffer) => void): void {
  // Read to its end already (a framework's body parser ran first): there is nothing to wait for,
  // and no 'end' to come (nor the body: a form the framework parsed is not seen here).
  if (req.readableEnded) {
    done('ended', EMPTY)
    return
  }
  const chunks: Buffer[] = []
  let received = 0
  let settled = false
  const settle = (outcome: BodyOutcome): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    req.off('data', onData)
    req.off('end', onEnd)
    req.off('close', onClose)
    // Stop reading what is left: the answer closes the connection.
    if (outcome !== 'ended') req.pause()
    done(outcome, outcome === 'ended' && keep ? Buffer.concat(chunks) : EMPTY)
  }
  const onData = (chunk: Buffer): void => {
    received += chunk.length
    if (received > limits.maxBytes) settle('too-large')
    else if (keep) chunks.push(chunk)
  }
  const onEnd = (): void => settle('ended')
  // 'close' before 'end' means the request was torn down (the client went away). A request read
  // to its end before this call also closes without an 'end' to come: hence the check above.
  const onClose = (): void => settle('aborted')
  const timer = setTimeout(() => settle('timeout'), limits.timeoutMs)
  req.on('data', onData)
  req.on('end', onEnd)
  req.on('close', onClose)
  // Stays attached: a stream 'error' without a listener would be thrown, and take the process down.
  req.on('error', () => settle('aborted'))
}
