import type { StoreKey } from '@tiercache/core'

/*
 * Key layout (documented in this package's README, "Keys"):
 *
 *   value       <ns>:<family>[:g<generation>]:{<id>}
 *   lease       <ns>:lease:<family>:{<id>}
 *   generation  <ns>:gen            (the namespace's own, name '')
 *               <ns>:gen:<name>
 *   tags        <ns>:tags           (a hash: field '' the tag sequence, one field per tag)
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
  /** The namespace's tag hash. A family id always holds an `@`, so no value key is this. */
  readonly tags: string
  /** SCAN pattern for `<ns>:<glob>`: the namespace is glob-escaped, the glob is the caller's. */
  pattern(glob: string): string
  /** The family (`<name>@<version>`) of a value key of this namespace, undefined for other keys. */
  familyOf(redisKey: string): string | undefined
}

/** What every key of `namespace` starts with: the namespace as it stands in keys, then `:`. */
export function namespacePrefix(namespace: string): string {
  return `${escapePart(namespace)}:`
}

export function keyBuilder(namespace: string): KeyBuilder {
  const ns = escapePart(namespace)
  const valuePrefix = namespacePrefix(namespace)
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
    tags: `${ns}:tags`,
    pattern(glob) {
      return `${globNs}:${glob}`
    },
    familyOf(redisKey) {
      return parseValueKey(valuePrefix, redisKey)?.family
    },
  }
}

/**
 * The store key of a value key `<prefix><family>[:g<generation>]:{<id>}` (`prefix`: see
 * `namespacePrefix`). Undefined for leases, generation keys and
 * anything else this layout does not write. Family names hold no `@` and versions are digits, so
 * the last `@` ends the name; escaped parts hold no brace, so the only `{…}` is the tag.
 */
export function parseValueKey(prefix: string, redisKey: string): StoreKey | undefined {
  if (!redisKey.startsWith(prefix) || redisKey.charCodeAt(redisKey.length - 1) !== CLOSE_BRACE) return undefined
  const rest = redisKey.slice(prefix.length)
  if (rest.startsWith('lease:') || rest === 'gen' || rest.startsWith('gen:')) return undefined
  const tag = rest.indexOf(':{')
  if (tag < 0 || rest.indexOf('{', tag + 2) >= 0 || rest.indexOf('}', tag + 2) !== rest.length - 1) return undefined
  const head = rest.slice(0, tag)
  const at = head.lastIndexOf('@')
  if (at < 1) return undefined
  let end = at + 1
  while (end < head.length && isDigit(head.charCodeAt(end))) end++
  if (end === at + 1) return undefined
  let generation = ''
  if (end < head.length) {
    if (!head.startsWith(':g', end)) return undefined
    generation = unescapePart(head.slice(end + 2))
  }
  return { family: unescapePart(head.slice(0, end)), generation, id: decodeId(rest.slice(tag + 2, -1)) }
}

const CLOSE_BRACE = 0x7d

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

/** The glob, after the namespace, of every value key of `family` (some other family's may match too: parse to be sure). */
export function familyGlob(family: string): string {
  return `${escapeGlob(escapePart(family))}:*`
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

/**
 * Sends one command per cluster slot of `redisKeys` (a multi-key command must not cross slots),
 * all at once, and resolves their results, one per slot in no set order. `send` gets the keys of
 * one slot and their indexes in `redisKeys`, both in input order.
 */
export function bySlot<R>(redisKeys: readonly string[], send: (keys: readonly string[], indexes: readonly number[]) => Promise<R>): Promise<R[]> {
  const groups = new Map<number, number[]>()
  for (let i = 0; i < redisKeys.length; i++) {
    const slot = slotOf(redisKeys[i]!)
    const group = groups.get(slot)
    if (group) group.push(i)
    else groups.set(slot, [i])
  }
  if (groups.size === 1) {
    const [indexes] = groups.values()
    return Promise.all([send(redisKeys, indexes!)])
  }
  const sends: Promise<R>[] = []
  for (const indexes of groups.values()) sends.push(send(indexes.map((i) => redisKeys[i]!), indexes))
  return Promise.all(sends)
}
