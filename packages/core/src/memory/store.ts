import { systemClock } from '../defaults.js'
import type { Clock, LeaseGrant, RemoteEntry, RemoteStore, StoreInfo, StoreInfoOptions, StoreKey } from '../ports.js'

interface Lease {
  readonly token: string
  readonly expiresAt: number
}

/** The data behind memory stores; stores with different namespaces may share one. */
export interface MemoryBackend {
  readonly values: Map<string, RemoteEntry>
  readonly leases: Map<string, Lease>
  readonly generations: Map<string, number>
  /** Tag versions by `<namespace>:tag:<tag>`, and each namespace's tag sequence by `<namespace>:tags`. */
  readonly tags: Map<string, number>
}

export function memoryBackend(): MemoryBackend {
  return { values: new Map(), leases: new Map(), generations: new Map(), tags: new Map() }
}

export interface MemoryStoreOptions {
  /** Prefix of every key. @default 'tiercache' */
  namespace?: string
  /** Decides expiry and lease lifetimes. @default systemClock */
  clock?: Clock
  /** Share data between stores (e.g. to check namespace isolation). @default a private backend */
  backend?: MemoryBackend
}

/** A memory store plus what tests need to look inside. */
export interface MemoryStore extends RemoteStore {
  readonly namespace: string
  /** Live values of this namespace. */
  readonly size: number
  /** Full keys (`<namespace>:<family>[:g<generation>]:{<id>}`) of live values. */
  keys(): string[]
  /** The stored entry behind a key, expired or not. */
  raw(key: StoreKey): RemoteEntry | undefined
  readonly backend: MemoryBackend
}

/**
 * An in-process `RemoteStore` with the Redis store's semantics: keys expire at `graceUntil`,
 * leases are voided by `set`/`delete`, generations start at 0. Several caches may share one
 * instance to act as processes sharing a Redis; `close()` leaves the data alone for that reason.
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const namespace = options.namespace ?? 'tiercache'
  const clock = options.clock ?? systemClock
  const backend = options.backend ?? memoryBackend()
  const { values, leases, generations, tags } = backend
  const prefix = `${namespace}:`
  let tokens = 0

  const valueKey = (k: StoreKey) => `${prefix}${k.family}${k.generation === '' ? '' : `:g${k.generation}`}:{${k.id}}`
  const leaseKey = (k: StoreKey) => `${prefix}lease:${k.family}:{${k.id}}`
  const generationKey = (name: string) => (name === '' ? `${prefix}gen` : `${prefix}gen:${name}`)

  const read = (full: string): RemoteEntry | undefined => {
    const entry = values.get(full)
    if (entry === undefined) return undefined
    if (entry.graceUntil <= clock.now()) {
      values.delete(full)
      return undefined
    }
    return entry
  }
  /** The entry as a store keeps it: what the codec round-trips, nothing else. */
  const stored = (entry: RemoteEntry, expiresAt: number, expired: boolean): RemoteEntry => {
    const times = { value: entry.value, expiresAt, graceUntil: entry.graceUntil }
    const tagged = entry.tags === undefined ? times : { ...times, tags: entry.tags, tagVersion: entry.tagVersion ?? 0 }
    return expired ? { ...tagged, expired: true } : tagged
  }
  const write = (key: StoreKey, entry: RemoteEntry) => {
    values.set(valueKey(key), stored(entry, entry.expiresAt, entry.expired === true))
    leases.delete(leaseKey(key))
  }
  const liveKeys = () => [...values.keys()].filter((k) => k.startsWith(prefix) && read(k) !== undefined)

  return {
    namespace,
    backend,
    get size() {
      return liveKeys().length
    },
    keys: liveKeys,
    raw: (key) => values.get(valueKey(key)),
    async get(key) {
      return read(valueKey(key))
    },
    async getMany(keys) {
      return keys.map((key) => read(valueKey(key)))
    },
    async set(key, entry) {
      write(key, entry)
    },
    async setMany(entries) {
      for (const { key, entry } of entries) write(key, entry)
    },
    async delete(keys) {
      for (const key of keys) {
        values.delete(valueKey(key))
        leases.delete(leaseKey(key))
      }
    },
    // A load under way may have read what the expiry says changed: its fill must not land.
    async expire(keys, at) {
      for (const key of keys) {
        const full = valueKey(key)
        const entry = read(full)
        leases.delete(leaseKey(key))
        if (entry !== undefined) values.set(full, stored(entry, Math.min(entry.expiresAt, at), true))
      }
    },
    // The tag sequence stays: entries written later carry versions that must keep meaning the same.
    async clear() {
      for (const map of [values, leases, generations] as Map<string, unknown>[]) {
        for (const key of [...map.keys()]) if (key.startsWith(prefix)) map.delete(key)
      }
    },
    async acquireLease(key, ttlMs): Promise<LeaseGrant> {
      const full = leaseKey(key)
      const held = leases.get(full)
      if (held !== undefined && held.expiresAt > clock.now()) return { granted: false }
      const token = `${namespace}-${++tokens}-${Math.random().toString(36).slice(2)}`
      leases.set(full, { token, expiresAt: clock.now() + ttlMs })
      return { granted: true, token }
    },
    async fillWithLease(key, token, entry) {
      const full = leaseKey(key)
      const held = leases.get(full)
      if (held === undefined || held.token !== token || held.expiresAt <= clock.now()) return false
      write(key, entry)
      return true
    },
    async getGenerations(names) {
      return names.map((name) => generations.get(generationKey(name)) ?? 0)
    },
    async bumpGeneration(name) {
      const full = generationKey(name)
      const next = (generations.get(full) ?? 0) + 1
      generations.set(full, next)
      return next
    },
    async getTagVersions(names) {
      return { sequence: tags.get(`${prefix}tags`) ?? 0, versions: names.map((tag) => tags.get(`${prefix}tag:${tag}`) ?? 0) }
    },
    async invalidateTags(names) {
      const version = (tags.get(`${prefix}tags`) ?? 0) + 1
      tags.set(`${prefix}tags`, version)
      for (const tag of names) tags.set(`${prefix}tag:${tag}`, version)
      return version
    },
    async purgeFamily(family, keep) {
      const head = `${prefix}${family}`
      let deleted = 0
      for (const key of [...values.keys()]) {
        if (!key.startsWith(head)) continue
        const rest = key.slice(head.length)
        // `:{id}` (no generation) or `:g<generation>:{id}`.
        const generation = rest.startsWith(':{') ? '' : rest.startsWith(':g') ? rest.slice(2, rest.indexOf(':{')) : undefined
        if (generation === undefined || generation === keep || generation.startsWith(`${keep}.`)) continue
        values.delete(key)
        deleted++
      }
      return deleted
    },
    async deleteByPattern(glob) {
      const pattern = globToRegExp(glob)
      let deleted = 0
      for (const key of [...values.keys()]) {
        if (key.startsWith(prefix) && pattern.test(key.slice(prefix.length))) {
          values.delete(key)
          deleted++
        }
      }
      return deleted
    },
    async info(options?: StoreInfoOptions): Promise<StoreInfo> {
      const keysByFamily: Record<string, number> = {}
      if (options?.keys === false) return { keysByFamily, connection: 'ready' }
      for (const key of liveKeys()) {
        const family = key.slice(prefix.length).split(':{')[0]?.replace(/:g[^:]*$/, '') ?? ''
        keysByFamily[family] = (keysByFamily[family] ?? 0) + 1
      }
      return { keysByFamily, connection: 'ready' }
    },
    async close() {},
  }
}

/** Redis glob subset: `*`, `?`, `[...]`, backslash escapes. */
function globToRegExp(glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*') source += '.*'
    else if (c === '?') source += '.'
    else if (c === '\\' && i + 1 < glob.length) source += `\\${glob[++i]}`
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end === -1) source += '\\['
      else {
        source += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else source += c.replace(/[.+^${}()|\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, 's')
}
