/**
 * Browser sessions of the admin handler: what the sign-in form trades the token for, so that a
 * page can call the routes without the token in its script or its URL.
 *
 * A session is a cookie `<expires>.<nonce>.<mac>`: the expiry (epoch ms, base 36), 16 random
 * bytes, and an HMAC-SHA256 of both under a key derived from the admin token. Nothing is stored
 * to accept one, so every process holding the same token accepts the sessions of the others
 * (behind a load balancer), and changing the token ends them all. Signing out clears the cookie
 * in the browser and revokes the session in the process that served it (a bounded list of
 * revoked nonces, each kept until its expiry); another process would accept a copy of that
 * cookie until it expires, which is why the lifetime is bounded.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** The cookie's name. */
export const SESSION_COOKIE = 'tiercache_admin'

/** Revoked sessions remembered at most: the oldest expiry goes first past this. */
const MAX_REVOKED = 10_000

export type SessionCheck =
  /** No session cookie was presented. */
  | 'none'
  | 'valid'
  /** Signed by this token, but past its expiry (or revoked): the normal end of a session. */
  | 'expired'
  /** Not a session this token signed. */
  | 'invalid'

export interface Sessions {
  /** A new session's cookie value. */
  issue(): string
  check(value: string | undefined): SessionCheck
  /** Ends a session in this process (before its expiry). */
  revoke(value: string | undefined): void
  /** The session lifetime, in whole seconds (the cookie's Max-Age). */
  readonly maxAgeSeconds: number
}

export interface SessionOptions {
  token: string
  ttlMs: number
  /** Wall clock (epoch ms): sessions are compared across processes. */
  now: () => number
}

const SHAPE = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/

export function createSessions(options: SessionOptions): Sessions {
  const { ttlMs, now } = options
  // A key of its own: a MAC under the token itself would be an oracle on the token.
  const key = createHmac('sha256', options.token).update('tiercache admin session v1').digest()
  const mac = (body: string): Buffer => createHmac('sha256', key).update(body).digest()
  /** Nonce → expiry of the sessions signed out here. Map order is insertion order. */
  const revoked = new Map<string, number>()

  const parse = (value: string): { expires: number; nonce: string } | undefined => {
    const match = SHAPE.exec(value)
    if (match === null) return undefined
    const [, expires, nonce, signature] = match as unknown as [string, string, string, string]
    const presented = Buffer.from(signature, 'base64url')
    const expected = mac(`${expires}.${nonce}`)
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined
    return { expires: parseInt(expires, 36), nonce }
  }

  const prune = (at: number): void => {
    for (const [nonce, expires] of revoked) if (expires <= at) revoked.delete(nonce)
    while (revoked.size > MAX_REVOKED) {
      const oldest = revoked.keys().next()
      if (oldest.done === true) break
      revoked.delete(oldest.value)
    }
  }

  return {
    maxAgeSeconds: Math.max(1, Math.floor(ttlMs / 1000)),
    issue() {
      const expires = (now() + ttlMs).toString(36)
      const nonce = randomBytes(16).toString('base64url')
      return `${expires}.${nonce}.${mac(`${expires}.${nonce}`).toString('base64url')}`
    },
    check(value) {
      if (value === undefined || value === '') return 'none'
      const session = parse(value)
      if (session === undefined) return 'invalid'
      return session.expires <= now() || revoked.has(session.nonce) ? 'expired' : 'valid'
    },
    revoke(value) {
      const session = value === undefined ? undefined : parse(value)
      if (session === undefined) return
      const at = now()
      if (session.expires <= at) return
      revoked.set(session.nonce, session.expires)
      prune(at)
    },
  }
}

/** The session cookie's value in a `Cookie` header, or undefined. */
export function sessionCookieOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim()
  }
  return undefined
}

export interface CookieAttributes {
  path: string
  /** Seconds; 0 clears the cookie. */
  maxAge: number
  secure: boolean
}

/**
 * A `Set-Cookie` value for the session. HttpOnly: no script reads it. SameSite=Strict: no other
 * site's page makes the browser send it. Secure over TLS: never sent in the clear.
 */
export function sessionCookie(value: string, attributes: CookieAttributes): string {
  const secure = attributes.secure ? '; Secure' : ''
  return `${SESSION_COOKIE}=${value}; Path=${attributes.path}; Max-Age=${attributes.maxAge}; HttpOnly; SameSite=Strict${secure}`
}
