/**
 * Cross-site request forgery. A cookie is sent by the browser whoever made the page that asks,
 * so a request that changes something and is authenticated by the session cookie (rather than a
 * bearer header, which no other site can make a browser send) must come from a page of the admin
 * handler's own origin. Browsers state it in `Origin` on every POST and DELETE; a request without
 * one is refused.
 *
 * The own origin is the `Host` the request was sent to, or, behind a proxy that rewrites it, the
 * configured `allowedOrigins`. Comparing with `Host` is safe against DNS rebinding: a page served
 * under another name never holds this host's cookie.
 */
import type { IncomingMessage } from 'node:http'

/** Whether `origin` is a bare origin (`scheme://host[:port]`), as `allowedOrigins` must be. */
export function isOrigin(origin: string): boolean {
  try {
    const url = new URL(origin)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin
  } catch {
    return false
  }
}

/** Whether the request's `Origin` is the handler's own. */
export function sameOrigin(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  const origin = req.headers.origin
  if (typeof origin !== 'string' || origin === 'null') return false
  if (allowed !== undefined) return allowed.includes(origin)
  const host = req.headers.host
  if (typeof host !== 'string' || host === '') return false
  try {
    // Parsed alike, so that case and a default port (`:80` over http) do not tell them apart.
    const from = new URL(origin)
    return from.host === new URL(`${from.protocol}//${host}`).host
  } catch {
    return false
  }
}
