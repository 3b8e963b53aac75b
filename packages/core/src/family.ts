import { z } from 'zod'
import type { Duration } from './duration.js'
import { InvalidOptionsError } from './errors.js'
import type { GetOrSetOptions, SetOptions } from './options.js'

/** What a loader receives. */
export interface LoaderContext<V> {
  /** The key inside its family (what `key(params)` returned, or the plain key). */
  readonly key: string
  /** The expired copy still within grace, if any: useful for conditional fetches. */
  readonly staleValue: V | undefined
  /** Aborted when `hardTimeout` fires. */
  readonly signal: AbortSignal
}

export type Loader<V> = (context: LoaderContext<V>) => V | Promise<V>

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
}

/** A typed handle over one family. */
export interface Family<P, V> {
  /** `<name>@<version>`. */
  readonly id: string
  get(params: P): Promise<V | undefined>
  /** L1 only, synchronous. */
  peek(params: P): V | undefined
  set(params: P, value: V, options?: SetOptions): Promise<void>
  getOrSet(params: P, loader: Loader<V>, options?: GetOrSetOptions): Promise<V>
  getMany(params: readonly P[]): Promise<(V | undefined)[]>
  setMany(entries: readonly { params: P; value: V; options?: SetOptions }[]): Promise<void>
  delete(params: P | readonly P[]): Promise<void>
  /** Invalidates every key of the family at once (generational families). */
  invalidate(): Promise<void>
  /** Invalidates every key of one group (families with `generational: { group }`). */
  invalidateGroup(group: string): Promise<void>
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
})

/** Validates a family definition; errors name `family.<option>`. */
export function validateFamilyDefinition<P, V>(definition: FamilyDefinition<P, V>): void {
  const parsed = definitionSchema.safeParse(definition)
  if (parsed.success) return
  const issue = parsed.error.issues[0] as z.core.$ZodIssue
  throw new InvalidOptionsError(['family', ...issue.path].join('.'), issue.message, { cause: parsed.error })
}
