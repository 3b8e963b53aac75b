import type { StoreKey } from '@tiercache/core'

/*
 * Key layout (documented in this package's README, "Keys"):
 *
 *   value       <ns>:<family>[:g<generation>]:{<id>}
 *   lease       <ns>:lease:<family>:{<id>}
 *   generation  <ns>:gen            (the namespace's own, name '')
 *               <ns>:gen:<name>
 *
 * Redis Cluster hashes only what sits between the first `{` and the first `}` after it. A raw
 * `{` or `}` anywhere before or inside the tag would move the tag, so value and lease could land
 * in different slots (the fill script would fail with CROSSSLOT) and two ids could share a key.
 * Every part we write is therefore percent-escaped for `%`, `{` and `}`: the only braces in a key
 * are the tag's own, the encoding is reversible (no collisions), and an empty id is written as a
 * lone `%` (never produced by the escaping) because `{}` would make Redis hash the whole key.
 */

const NEEDS_ESCAPE = /[%{}]/

function escapePart(part: string): string {
  if (!NEEDS_ESCAPE.test(part)) return part
  return part.replace(/[%{}]/g, (char) => (char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'))
}

function unescapePart(part: string): string {
  if (!part.includes('%')) return part
  return part.replace(/%(25|7B|7D)/g, (_, hex: string) => (hex === '25' ? '%' : hex === '7B' ? '{' : '}'))
}

/** The hash tag content for an id: never empty, never containing a brace. */
export function encodeId(id: string): string {
  return id === '' ? '%' : escapePart(id)
}

/** Inverse of `encodeId`. */
export function decodeId(encoded: string): string {
  return encoded === '%' ? '' : unescapePart(encoded)
}

/** Builds the keys of one namespace. Parts are escaped once here, so callers pass raw strings. */
export interface KeyBuilder {
  readonly namespace: string
  value(key: StoreKey): string
  lease(key: StoreKey): string
  generation(name: string): string
  /** SCAN pattern for `<ns>:<glob>`: the namespace is glob-escaped, the glob is the caller's. */
  pattern(glob: string): string
  /** The family (`<name>@<version>`) of a value key of this namespace, undefined for other keys. */
  familyOf(redisKey: string): string | undefined
}

export function keyBuilder(namespace: string): KeyBuilder {
  const ns = escapePart(namespace)
  const valuePrefix = `${ns}:`
  const leasePrefix = `${ns}:lease:`
  const genKey = `${ns}:gen`
  const genPrefix = `${ns}:gen:`
  const globNs = escapeGlob(ns)
  return {
    namespace,
    value(key) {
      const family = escapePart(key.family)
      const tag = encodeId(key.id)
      return key.generation === ''
        ? `${valuePrefix}${family}:{${tag}}`
        : `${valuePrefix}${family}:g${escapePart(key.generation)}:{${tag}}`
    },
    lease(key) {
      return `${leasePrefix}${escapePart(key.family)}:{${encodeId(key.id)}}`
    },
    generation(name) {
      return name === '' ? genKey : `${genPrefix}${escapePart(name)}`
    },
    pattern(glob) {
      return `${globNs}:${glob}`
    },
    familyOf(redisKey) {
      if (!redisKey.startsWith(valuePrefix)) return undefined
      if (redisKey.startsWith(leasePrefix) || redisKey === genKey || redisKey.startsWith(genPrefix)) return undefined
      const tagStart = redisKey.indexOf(':{', valuePrefix.length)
      if (tagStart < 0) return undefined
      const head = redisKey.slice(valuePrefix.length, tagStart)
      // `<name>@<version>` then an optional `:g<generation>`; the version holds no colon.
      const at = head.lastIndexOf('@')
      if (at < 0) return undefined
      const colon = head.indexOf(':', at)
      return unescapePart(colon < 0 ? head : head.slice(0, colon))
    },
  }
}

/** Escapes the glob metacharacters of Redis MATCH (`* ? [ ] \`) in a user-supplied key part. */
export function escapeGlob(part: string): string {
  return part.replace(/[*?[\]\\]/g, '\\$&')
}

// CRC16-CCITT (XMODEM), the hash of Redis Cluster: slot = crc16(tag) mod 16384.
const CRC_TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

/** The cluster slot of a key, honouring the hash-tag rule exactly as Redis does. */
export function slotOf(key: string): number {
  const bytes = Buffer.from(key, 'utf8')
  let start = 0
  let end = bytes.length
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) {
      start = open + 1
      end = close
    }
  }
  return crc16(bytes, start, end) & 16383
}

/** Groups item indexes by the slot of their key (insertion order kept within a group). */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): Map<number, number[]> {
  const groups = new Map<number, number[]>()
  for (let i = 0; i < items.length; i++) {
    const slot = slotOf(keyOf(items[i]!))
    const group = groups.get(slot)
    if (group) group.push(i)
    else groups.set(slot, [i])
  }
  return groups
}
