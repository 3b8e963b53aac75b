import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { isOrigin, sameOrigin } from '../src/admin-origin.js'
import { createSessions, SESSION_COOKIE, sessionCookie, sessionCookieOf } from '../src/admin-session.js'

const TOKEN = 'admin-token-0123456789abcdef'
const TTL = 60_000

function sessions(options: { token?: string; ttlMs?: number; t?: number } = {}) {
  const clock = { t: options.t ?? 1_700_000_000_000 }
  const made = createSessions({ token: options.token ?? TOKEN, ttlMs: options.ttlMs ?? TTL, now: () => clock.t })
  return { sessions: made, clock }
}

/** The cookie value's three parts: expiry, nonce, mac. */
function partsOf(value: string): [string, string, string] {
  const parts = value.split('.')
  expect(parts).toHaveLength(3)
  return parts as [string, string, string]
}

/** `text` with the character at `index` replaced by another of the base64url alphabet. */
function changeAt(text: string, index: number): string {
  const replacement = text[index] === 'A' ? 'B' : 'A'
  return text.slice(0, index) + replacement + text.slice(index + 1)
}

describe('admin sessions', () => {
  it('issues a session that is valid until its ttl has passed, then expired', () => {
    const { sessions: s, clock } = sessions()
    const start = clock.t
    const value = s.issue()
    expect(s.check(value)).toBe('valid')
    clock.t = start + TTL - 1
    expect(s.check(value)).toBe('valid')
    clock.t = start + TTL
    expect(s.check(value)).toBe('expired')
    clock.t = start + 10 * TTL
    expect(s.check(value)).toBe('expired')
  })

  it('encodes the expiry in base 36 and signs it with a nonce', () => {
    const { sessions: s, clock } = sessions()
    const value = s.issue()
    const [expires, nonce, mac] = partsOf(value)
    expect(parseInt(expires, 36)).toBe(clock.t + TTL)
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/)
    // Two sessions never share a nonce.
    expect(partsOf(s.issue())[1]).not.toBe(nonce)
  })

  it('reports a revoked session as expired, and leaves the others valid', () => {
    const { sessions: s } = sessions()
    const first = s.issue()
    const second = s.issue()
    s.revoke(first)
    expect(s.check(first)).toBe('expired')
    expect(s.check(second)).toBe('valid')
  })

  it('ignores revoking nothing, garbage or a session of another token', () => {
    const { sessions: s } = sessions()
    const other = sessions({ token: 'another-token-0123456789abcdef' }).sessions.issue()
    const value = s.issue()
    expect(() => s.revoke(undefined)).not.toThrow()
    expect(() => s.revoke('garbage')).not.toThrow()
    expect(() => s.revoke(other)).not.toThrow()
    expect(s.check(value)).toBe('valid')
  })

  it('revokes in its own instance only, and a second revoke keeps the session ended', () => {
    const { sessions: here, clock } = sessions()
    const there = createSessions({ token: TOKEN, ttlMs: TTL, now: () => clock.t })
    const value = here.issue()
    here.revoke(value)
    // Same token elsewhere: the cookie is still accepted there (revocation is per process).
    expect(there.check(value)).toBe('valid')
    here.revoke(value)
    expect(here.check(value)).toBe('expired')
  })

  it("answers 'none' without a cookie and 'invalid' to garbage", () => {
    const { sessions: s } = sessions()
    expect(s.check(undefined)).toBe('none')
    expect(s.check('')).toBe('none')
    for (const garbage of ['garbage', 'a.b.c', '...', `${s.issue()}x`, ` ${s.issue()}`, s.issue().replaceAll('.', ':')]) {
      expect(s.check(garbage), garbage).toBe('invalid')
    }
  })

  it("answers 'invalid' when one character of the mac, the nonce or the expiry changed", () => {
    const { sessions: s } = sessions()
    const value = s.issue()
    const [expires, nonce, mac] = partsOf(value)
    // The first character of the mac carries six bits of its first byte.
    expect(s.check(`${expires}.${nonce}.${changeAt(mac, 0)}`)).toBe('invalid')
    expect(s.check(`${expires}.${nonce}.${changeAt(mac, 20)}`)).toBe('invalid')
    expect(s.check(`${expires}.${changeAt(nonce, 0)}.${mac}`)).toBe('invalid')
    // A later expiry is not the one that was signed.
    const later = (parseInt(expires, 36) + 3_600_000).toString(36)
    expect(s.check(`${later}.${nonce}.${mac}`)).toBe('invalid')
    expect(s.check(value)).toBe('valid')
  })

  it("answers 'invalid' to a session signed with another token, even an expired one", () => {
    const { sessions: s, clock } = sessions()
    const other = createSessions({ token: 'another-token-0123456789abcdef', ttlMs: TTL, now: () => clock.t })
    const foreign = other.issue()
    expect(other.check(foreign)).toBe('valid')
    expect(s.check(foreign)).toBe('invalid')
    clock.t += 2 * TTL
    expect(s.check(foreign)).toBe('invalid')
    expect(other.check(foreign)).toBe('expired')
  })

  it('accepts the sessions of another instance holding the same token', () => {
    const { sessions: s, clock } = sessions()
    const twin = createSessions({ token: TOKEN, ttlMs: TTL, now: () => clock.t })
    expect(twin.check(s.issue())).toBe('valid')
  })

  it('gives the lifetime in whole seconds, at least 1', () => {
    expect(sessions({ ttlMs: 60_000 }).sessions.maxAgeSeconds).toBe(60)
    expect(sessions({ ttlMs: 28_800_000 }).sessions.maxAgeSeconds).toBe(28_800)
    expect(sessions({ ttlMs: 90_999 }).sessions.maxAgeSeconds).toBe(90)
    expect(sessions({ ttlMs: 500 }).sessions.maxAgeSeconds).toBe(1)
  })
})

describe('session cookie helpers', () => {
  it('names the cookie tiercache_admin', () => {
    expect(SESSION_COOKIE).toBe('tiercache_admin')
  })

  it('finds the session cookie among others in a Cookie header', () => {
    expect(sessionCookieOf(undefined)).toBeUndefined()
    expect(sessionCookieOf('')).toBeUndefined()
    expect(sessionCookieOf('tiercache_admin=abc')).toBe('abc')
    expect(sessionCookieOf('theme=dark; tiercache_admin=abc.def; lang=en')).toBe('abc.def')
    expect(sessionCookieOf('theme=dark;tiercache_admin=abc  ;lang=en')).toBe('abc')
    expect(sessionCookieOf('tiercache_admin=')).toBe('')
    // Only the exact name counts, and the first occurrence wins.
    expect(sessionCookieOf('xtiercache_admin=1; tiercache_admin_old=2')).toBeUndefined()
    expect(sessionCookieOf('tiercache_admin; other=1')).toBeUndefined()
    expect(sessionCookieOf('tiercache_admin=first; tiercache_admin=second')).toBe('first')
    // A value holding '=' is kept whole.
    expect(sessionCookieOf('tiercache_admin=a=b')).toBe('a=b')
  })

  it('builds an HttpOnly, SameSite=Strict Set-Cookie with Path and Max-Age, Secure when asked', () => {
    const plain = sessionCookie('v.a.l', { path: '/cache', maxAge: 28_800, secure: false })
    expect(plain).toBe('tiercache_admin=v.a.l; Path=/cache; Max-Age=28800; HttpOnly; SameSite=Strict')
    const attributes = plain.split('; ')
    expect(attributes).toContain('HttpOnly')
    expect(attributes).toContain('SameSite=Strict')
    expect(attributes).not.toContain('Secure')
    const secure = sessionCookie('v.a.l', { path: '/admin/cache', maxAge: 60, secure: true })
    expect(secure.split('; ')).toEqual(['tiercache_admin=v.a.l', 'Path=/admin/cache', 'Max-Age=60', 'HttpOnly', 'SameSite=Strict', 'Secure'])
  })

  it('clears the cookie with an empty value and Max-Age=0', () => {
    const cleared = sessionCookie('', { path: '/cache', maxAge: 0, secure: false })
    expect(cleared.startsWith('tiercache_admin=;')).toBe(true)
    expect(cleared.split('; ')).toContain('Max-Age=0')
    expect(sessionCookieOf(cleared.split('; ')[0])).toBe('')
  })

  it('round-trips an issued session through Set-Cookie and Cookie', () => {
    const { sessions: s } = sessions()
    const value = s.issue()
    const header = sessionCookie(value, { path: '/cache', maxAge: s.maxAgeSeconds, secure: false })
    // A browser sends back the name=value pair alone.
    const sent = `other=1; ${header.split('; ')[0] as string}`
    expect(s.check(sessionCookieOf(sent))).toBe('valid')
  })
})

/** A request as far as the origin check reads one: its headers. */
const request = (headers: Record<string, string | undefined>): IncomingMessage => ({ headers }) as unknown as IncomingMessage

describe('admin origin check', () => {
  it('tells a bare origin from anything else', () => {
    for (const origin of ['https://ops.example.com', 'http://localhost:8080', 'http://127.0.0.1:3000', 'https://[::1]:8443']) {
      expect(isOrigin(origin), origin).toBe(true)
    }
    for (const origin of [
      '',
      'ops.example.com',
      'https://ops.example.com/',
      'https://ops.example.com/path',
      'https://ops.example.com?x=1',
      'https://ops.example.com#x',
      'https://user@ops.example.com',
      'https://OPS.example.com',
      // Not in its normal form: the default port is dropped from an origin.
      'http://ops.example.com:80',
      'ftp://ops.example.com',
      'javascript:alert(1)',
      'null',
    ]) {
      expect(isOrigin(origin), origin).toBe(false)
    }
  })

  it('accepts an Origin matching Host, with or without the default port and whatever the case', () => {
    expect(sameOrigin(request({ origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' }), undefined)).toBe(true)
    expect(sameOrigin(request({ origin: 'http://ops.example.com', host: 'ops.example.com:80' }), undefined)).toBe(true)
    expect(sameOrigin(request({ origin: 'http://ops.example.com', host: 'ops.example.com' }), undefined)).toBe(true)
    expect(sameOrigin(request({ origin: 'https://ops.example.com', host: 'ops.example.com:443' }), undefined)).toBe(true)
    expect(sameOrigin(request({ origin: 'http://OPS.Example.com', host: 'ops.example.com' }), undefined)).toBe(true)
  })

  it('refuses an Origin of another host or port', () => {
    expect(sameOrigin(request({ origin: 'http://evil.example', host: '127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'http://127.0.0.1:8081', host: '127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'https://ops.example.com', host: 'ops.example.com:80' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'http://ops.example.com.evil.example', host: 'ops.example.com' }), undefined)).toBe(false)
  })

  it('refuses a missing Origin, a null one, a missing Host and a malformed Origin', () => {
    expect(sameOrigin(request({ host: '127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'null', host: '127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'http://127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'http://127.0.0.1:8080', host: '' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'not an origin', host: '127.0.0.1:8080' }), undefined)).toBe(false)
    expect(sameOrigin(request({ origin: 'null' }), ['null'])).toBe(false)
    expect(sameOrigin(request({}), ['https://ops.example.com'])).toBe(false)
  })

  it('compares with allowedOrigins alone when they are given', () => {
    const allowed = ['https://ops.example.com', 'http://localhost:8080']
    expect(sameOrigin(request({ origin: 'https://ops.example.com', host: 'internal:3000' }), allowed)).toBe(true)
    expect(sameOrigin(request({ origin: 'http://localhost:8080', host: 'internal:3000' }), allowed)).toBe(true)
    // The request's own Host no longer counts, and the list is compared exactly.
    expect(sameOrigin(request({ origin: 'http://internal:3000', host: 'internal:3000' }), allowed)).toBe(false)
    expect(sameOrigin(request({ origin: 'https://evil.example', host: 'internal:3000' }), allowed)).toBe(false)
    expect(sameOrigin(request({ origin: 'https://OPS.example.com', host: 'internal:3000' }), allowed)).toBe(false)
  })
})
