/**
 * The `tags` option of writes and loads, and its checks: one place that says what a tag list is.
 * Entry options (`SetOptions`, `GetOrSetOptions`) stay what the cache's own defaults can be, so
 * `tags` is split off them before they are resolved.
 */
import { InvalidOptionsError } from '../errors.js'

/** Tags of one entry (`set`, `setMany` entries, `getOrSet`, and the same on family handles). */
export interface TagOptions {
  /**
   * Labels of the entry: `invalidateTags([tag])` drops it on every process. Up to 64 non-empty
   * strings of at most 256 characters (with the family's `tags()`).
   */
  tags?: readonly string[]
}

/** Tags one entry carries at most. */
export const MAX_TAGS = 64
/** Characters one tag has at most. */
export const MAX_TAG_LENGTH = 256

const NO_TAGS: readonly string[] = Object.freeze([])

/** Checks a tag list; `path` names it in the error. */
export function checkTags(value: unknown, path: string): readonly string[] {
  if (!Array.isArray(value)) throw new InvalidOptionsError(path, `expected an array of strings (got ${value === null ? 'null' : typeof value})`)
  if (value.length > MAX_TAGS) throw new InvalidOptionsError(path, `expected at most ${MAX_TAGS} tags (got ${value.length})`)
  for (const tag of value) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
      throw new InvalidOptionsError(path, `expected non-empty strings of at most ${MAX_TAG_LENGTH} characters (got ${typeof tag === 'string' ? JSON.stringify(tag.slice(0, 40)) : typeof tag})`)
    }
  }
  return value as readonly string[]
}

/** Splits `tags` off an options object; `tags` is checked, the rest left for its own resolver. */
export function splitTags<O extends object>(options: (O & TagOptions) | undefined, path = 'options'): { tags: readonly string[] | undefined; rest: O | undefined } {
  if (options === undefined || typeof options !== 'object' || options === null || !('tags' in options)) return { tags: undefined, rest: options }
  const { tags, ...rest } = options
  const checked = tags === undefined ? undefined : checkTags(tags, `${path}.tags`)
  return { tags: checked, rest: Object.keys(rest).length === 0 ? undefined : (rest as O) }
}

/** The tags of an entry: its own and its family's, each once; `undefined` when there are none. */
export function entryTags(own: readonly string[] | undefined, family: readonly string[] | undefined): readonly string[] | undefined {
  const all = own === undefined ? (family ?? NO_TAGS) : family === undefined ? own : [...own, ...family]
  if (all.length === 0) return undefined
  const unique = Object.freeze([...new Set(all)])
  if (unique.length > MAX_TAGS) throw new InvalidOptionsError('tags', `an entry carries at most ${MAX_TAGS} tags, with its family's (got ${unique.length})`)
  return unique
}

/** A family's `tags(params, value)`. */
export type FamilyTags = (params: unknown, value: unknown) => readonly string[]

/** The tags of an entry of `params` and `value`: the call's own and its family's, checked. */
export function tagsOfEntry(own: readonly string[] | undefined, family: FamilyTags | undefined, params: unknown, value: unknown): readonly string[] | undefined {
  return entryTags(own, family === undefined ? undefined : checkTags(family(params, value), 'family.tags'))
}

/** Tags used with a store that cannot carry them. */
export function unsupportedTags(): InvalidOptionsError {
  return new InvalidOptionsError('tags', 'the L2 store cannot carry tags: it needs getTagVersions() and invalidateTags()')
}
