import { z } from 'zod'
import type { Duration } from './duration.js'
import { InvalidOptionsError } from './errors.js'
import type { AdaptiveTtl } from './load/adaptive-ttl.js'
import { type EntrySettings, type GetOrSetOptions, type SetOptions, splitSetOptions, type WriteOptions } from './options.js'
import type { FamilyCounters } from './stats.js'
import type { FamilyTags, TagOptions } from './tags/tag-options.js'

/** What a loader receives. */
export interface LoaderContext<V> {
  /** The key inside its family (what `key(params)` returned, or the plain key). */
  readonly key: string
  /** The expired copy still within grace, if any: useful for conditional fetches. */
  readonly staleValue: V | undefined
  /** Aborted when `hardTimeout` fires. */
  readonly signal: AbortSignal
  /**
   * The TTL of the value this load returns, in place of the call's, family's or cache's (a
   * finished task's view rarely changes: give it a long one). Writes still invalidate it.
   */
  setTtl(ttl: Duration): void
  /** The grace of the value this load returns, likewise. */
  setGrace(grace: Duration): void
}

export type Loader<V> = (context: LoaderContext<V>) => V | Promise<V>

/** What a batch loader receives beside the missing keys (or params). */
export interface BatchLoaderContext<K = unknown> {
  /** Aborted when `hardTimeout` fires. */
  readonly signal: AbortSignal
  /** The TTL of the value loaded for `item` (one of the missing keys or params), as `LoaderContext.setTtl`. */
  setTtl(item: K, ttl: Duration): void
  /** The grace of the value loaded for `item`, likewise. */
  setGrace(item: K, grace: Duration): void
}

/**
 * Loads the missing keys (or params) of `getOrSetMany`, in the order given: their values in that
 * order, or a `Map` from each key (or param) to its value. One left out is not cached.
 */
export type BatchLoader<K, V> = (missing: K[], context: BatchLoaderContext<K>) => readonly (V | undefined)[] | ReadonlyMap<K, V> | Promise<readonly (V | undefined)[] | ReadonlyMap<K, V>>

/** A schema with zod's `safeParse` (any zod 4 schema). */
export interface ValueSchema<V> {
  safeParse(value: unknown): { success: true; data: V } | { success: false; error: unknown }
}

/** Declares a typed family of keys. */
export interface FamilyDefinition<P, V> {
  /** Name in keys and stats, e.g. `task:status`. No `@`, `{` or `}`. */
  name: string
  /** Bump when the value shape changes: other versions' entries are never read or deleted. @default 1 */
  version?: number
  /** @default the cache's ttl */
  ttl?: Duration
  /** @default the cache's grace */
  grace?: Duration
  /** The key inside the family for these params. Must be stable (same params → same string). */
  key: (params: P) => string
  /** Validates values read from L2; a value that fails is a miss, deleted and counted. */
  schema?: ValueSchema<V>
  /**
   * Generational keys: `invalidate()` bumps the family's generation (O(1)); with `group`,
   * `invalidateGroup(group)` bumps only that group's generation (e.g. per host).
   * @default false
   */
  generational?: boolean | { group: (params: P) => string }
  /**
   * The tags of an entry of these params and this value (a task's hosts are in its value), next
   * to those a call gives: `invalidateTags([tag])` drops the entry on every process. Called for
   * every value written or loaded; it must return an array of non-empty strings.
   */
  tags?: (params: P, value: V) => readonly string[]
  /** Eager refresh for the family's loads (see `EntryOptions.eagerRefresh`). @default the cache's */
  eagerRefresh?: number
  /**
   * TTLs that follow the reads: a loaded value of a key this process reads often lives towards
   * `max`, one it reads rarely towards `min` (a per-process frequency estimate, no Redis traffic).
   * Replaces `ttl` for loaded values; `set` keeps `ttl`, a loader's `ctx.setTtl` wins. @default off
   */
  adaptiveTtl?: { min: Duration; max: Duration }
}

/** A typed handle over one family. */
export interface Family<P, V> {
  /** `<name>@<version>`. */
  readonly id: string
  get(params: P): Promise<V | undefined>
  /** L1 only, synchronous. */
  peek(params: P): V | undefined
  /** `options.background`: see `WriteOptions`. */
  set(params: P, value: V, options?: SetOptions & TagOptions & WriteOptions): Promise<void>
  getOrSet(params: P, loader: Loader<V>, options?: GetOrSetOptions & TagOptions): Promise<V>
  getMany(params: readonly P[]): Promise<(V | undefined)[]>
  setMany(entries: readonly { params: P; value: V; options?: SetOptions & TagOptions }[], options?: WriteOptions): Promise<void>
  delete(params: P | readonly P[], options?: WriteOptions): Promise<void>
  /** Soft invalidation (see `TieredCache.expire`). */
  expire(params: P | readonly P[], options?: WriteOptions): Promise<void>
  /** Batch read-through (see `TieredCache.getOrSetMany`); `loader` gets the missing params. */
  getOrSetMany(params: readonly P[], loader: BatchLoader<P, V>, options?: GetOrSetOptions & TagOptions): Promise<(V | undefined)[]>
  /** Invalidates every key of the family at once (generational families). */
  invalidate(options?: WriteOptions): Promise<void>
  /** Invalidates every key of one group (families with `generational: { group }`). */
  invalidateGroup(group: string, options?: WriteOptions): Promise<void>
  /**
   * Deletes the family's values in L2 that older generations left (after `invalidate()`, or a
   * namespace bump): they can no longer be read and would only wait for their TTL. Values of an
   * older group generation under the current family generation are not told apart by the store
   * and expire with their TTL. Resolves the number deleted; 0 without L2 or a store that cannot.
   * L2 trouble rejects (an operator's call, not a reader's).
   */
  purge(): Promise<number>
}

const definitionSchema = z.object({
  name: z
    .string({ error: 'expected a string' })
    .min(1, 'expected a non-empty string')
    .refine((name) => !/[@{}]/.test(name) && !name.includes('\u0001'), 'must not contain @, { or }'),
  version: z.number().int('expected a positive integer').positive('expected a positive integer').optional(),
  ttl: z.union([z.number(), z.string()]).optional(),
  grace: z.union([z.number(), z.string()]).optional(),
  key: z.custom<(params: unknown) => string>((v) => typeof v === 'function', { error: 'expected a function (params) => string' }),
  schema: z
    .custom<ValueSchema<unknown>>((v) => typeof (v as { safeParse?: unknown } | null)?.safeParse === 'function', {
      error: 'expected a zod schema',
    })
    .optional(),
  generational: z
    .union([
      z.boolean(),
      z.object({ group: z.custom<(params: unknown) => string>((v) => typeof v === 'function', { error: 'expected a function (params) => string' }) }),
    ])
    .optional(),
  tags: z.custom<(params: unknown, value: unknown) => readonly string[]>((v) => typeof v === 'function', { error: 'expected a function (params, value) => string[]' }).optional(),
  eagerRefresh: z.unknown().optional(),
  adaptiveTtl: z
    .strictObject(
      { min: z.union([z.number(), z.string()], { error: 'expected a duration' }), max: z.union([z.number(), z.string()], { error: 'expected a duration' }) },
      { error: "expected { min, max } durations, like { min: '30s', max: '10m' }" },
    )
    .optional(),
})

/** Validates a family definition; errors name `family.<option>`. */
export function validateFamilyDefinition<P, V>(definition: FamilyDefinition<P, V>): void {
  const parsed = definitionSchema.safeParse(definition)
  if (parsed.success) return
  const issue = parsed.error.issues[0] as z.core.$ZodIssue
  throw new InvalidOptionsError(['family', ...issue.path].join('.'), issue.message, { cause: parsed.error })
}

/** What the engine knows of one family: built once per `family()` call, read on every call. */
export interface FamilyContext {
  /** `<name>@<version>`. */
  readonly id: string
  readonly counters: FamilyCounters
  readonly settings: EntrySettings
  readonly schema: ValueSchema<unknown> | undefined
  readonly generational: boolean
  readonly group: ((params: never) => string) | undefined
  /** The family's `tags(params, value)`, if it has one. */
  readonly tags: FamilyTags | undefined
  /** The plain-key verbs' family: its L1 keys are the caller's keys, unchanged. */
  readonly isDefault: boolean
  /** `adaptiveTtl`: the TTL of a loaded value by how often this process reads its key. */
  readonly adaptive: AdaptiveTtl | undefined
}

/** One written entry, as the write path takes it. */
export interface WriteItem {
  readonly id: string
  readonly params: unknown
  readonly value: unknown
  readonly options?: (SetOptions & TagOptions) | undefined
}

/** One deleted key. */
export interface KeyItem {
  readonly id: string
  readonly params: unknown
}

/** The engine's verbs for a family, as the handle calls them (the cache implements them). */
export interface FamilyOps {
  getOrSet(fc: FamilyContext, id: string, params: unknown, loader: Loader<unknown>, options?: GetOrSetOptions & TagOptions): Promise<unknown>
  get(fc: FamilyContext, id: string, params: unknown): Promise<unknown>
  peek(fc: FamilyContext, id: string, params: unknown): unknown
  getMany(fc: FamilyContext, ids: readonly string[], params: readonly unknown[]): Promise<unknown[]>
  set(fc: FamilyContext, items: readonly WriteItem[], options?: WriteOptions): Promise<void>
  delete(fc: FamilyContext, items: readonly KeyItem[], options?: WriteOptions): Promise<void>
  expire(fc: FamilyContext, items: readonly KeyItem[], options?: WriteOptions): Promise<void>
  getOrSetMany(fc: FamilyContext, ids: readonly string[], params: readonly unknown[] | undefined, loader: BatchLoader<unknown, unknown>, options?: GetOrSetOptions & TagOptions): Promise<unknown[]>
  bump(fc: FamilyContext, name: string, options?: WriteOptions): Promise<void>
  purge(fc: FamilyContext): Promise<number>
}

/** The typed handle `cache.family()` returns: turns params into ids, and nothing else. */
export class FamilyHandle<P, V> implements Family<P, V> {
  readonly id: string
  readonly #ops: FamilyOps
  readonly #fc: FamilyContext
  readonly #key: (params: P) => string

  constructor(ops: FamilyOps, fc: FamilyContext, key: (params: P) => string) {
    this.id = fc.id
    this.#ops = ops
    this.#fc = fc
    this.#key = key
  }

  get(params: P): Promise<V | undefined> {
    return this.#ops.get(this.#fc, this.#key(params), params) as Promise<V | undefined>
  }

  peek(params: P): V | undefined {
    return this.#ops.peek(this.#fc, this.#key(params), params) as V | undefined
  }

  set(params: P, value: V, options?: SetOptions & TagOptions & WriteOptions): Promise<void> {
    const { entry, write } = splitSetOptions(options)
    return this.#ops.set(this.#fc, [{ id: this.#key(params), params, value, options: entry }], write)
  }

  getOrSet(params: P, loader: Loader<V>, options?: GetOrSetOptions & TagOptions): Promise<V> {
    return this.#ops.getOrSet(this.#fc, this.#key(params), params, loader as Loader<unknown>, options) as Promise<V>
  }

  getMany(params: readonly P[]): Promise<(V | undefined)[]> {
    return this.#ops.getMany(
      this.#fc,
      params.map((p) => this.#key(p)),
      params,
    ) as Promise<(V | undefined)[]>
  }

  setMany(entries: readonly { params: P; value: V; options?: SetOptions & TagOptions }[], options?: WriteOptions): Promise<void> {
    return this.#ops.set(
      this.#fc,
      entries.map((e) => ({ id: this.#key(e.params), params: e.params, value: e.value, options: e.options })),
      options,
    )
  }

  delete(params: P | readonly P[], options?: WriteOptions): Promise<void> {
    return this.#ops.delete(this.#fc, this.#keyItems(params), options)
  }

  expire(params: P | readonly P[], options?: WriteOptions): Promise<void> {
    return this.#ops.expire(this.#fc, this.#keyItems(params), options)
  }

  /** One params or several, as the keys a delete or an expiry names. */
  #keyItems(params: P | readonly P[]): KeyItem[] {
    const list = Array.isArray(params) ? (params as readonly P[]) : [params as P]
    return list.map((p) => ({ id: this.#key(p), params: p }))
  }

  getOrSetMany(params: readonly P[], loader: BatchLoader<P, V>, options?: GetOrSetOptions & TagOptions): Promise<(V | undefined)[]> {
    return this.#ops.getOrSetMany(
      this.#fc,
      params.map((p) => this.#key(p)),
      params,
      loader as BatchLoader<unknown, unknown>,
      options,
    ) as Promise<(V | undefined)[]>
  }

  invalidate(options?: WriteOptions): Promise<void> {
    if (!this.#fc.generational) {
      return Promise.reject(new InvalidOptionsError('family.generational', `family ${this.id} is not generational: invalidate() needs generational: true`))
    }
    return this.#ops.bump(this.#fc, this.#fc.id, options)
  }

  purge(): Promise<number> {
    return this.#ops.purge(this.#fc)
  }

  invalidateGroup(group: string, options?: WriteOptions): Promise<void> {
    if (this.#fc.group === undefined) {
      return Promise.reject(
        new InvalidOptionsError('family.generational', `family ${this.id} has no groups: invalidateGroup() needs generational: { group }`),
      )
    }
    return this.#ops.bump(this.#fc, `${this.#fc.id}:${group}`, options)
  }
}
