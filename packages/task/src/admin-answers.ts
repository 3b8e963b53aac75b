/**
 * How the admin handler writes its answers: JSON for the routes, never cached, never sniffed, and
 * errors as `{ error: { code, message } }`; HTML for the dashboard and its sign-in form alone.
 */
import type { ServerResponse } from 'node:http'
import type { BodyOutcome } from './body-limits.js'

type Headers = Record<string, string>

export function send(res: ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    'cache-control': 'no-store',
    // Answers are JSON only: a client must not sniff one into something it would run.
    'x-content-type-options': 'nosniff',
    ...headers,
  })
  res.end(payload)
}

export const failure = (res: ServerResponse, status: number, code: string, message: string, headers?: Headers): void =>
  send(res, status, { error: { code, message } }, headers)

/**
 * An answer given before the body was read to its end: what is left of the request is unknown, so
 * the connection is closed after it (node:http ends the socket once the answer is flushed).
 */
export const refuse = (res: ServerResponse, status: number, code: string, message: string): void =>
  failure(res, status, code, message, { connection: 'close' })

/** The answers to a body that did not end within the limits. */
export const REFUSED: Record<Exclude<BodyOutcome, 'ended' | 'aborted'>, [number, string, string]> = {
  'too-large': [413, 'E_BODY_TOO_LARGE', 'the request body is too large (the routes take none)'],
  timeout: [408, 'E_BODY_TIMEOUT', 'the request body did not arrive in time'],
}

/** An HTML page (the dashboard or the sign-in form), with the headers `admin-page.ts` gives it. */
export function sendPage(res: ServerResponse, status: number, html: string, headers: Headers): void {
  res.writeHead(status, { 'content-length': String(Buffer.byteLength(html)), ...headers })
  res.end(html)
}

/** 303 See Other to `location` (relative to the request's URL), e.g. after the sign-in form posted. */
export function redirect(res: ServerResponse, location: string, headers: Headers = {}): void {
  res.writeHead(303, { location, 'content-length': '0', 'cache-control': 'no-store', ...headers })
  res.end()
}
