/**
 * The only builder of keys.
 *
 * - L1 keys. The default family's are the caller's keys as given, so the plain-key hit path builds
 *   no string. A family's are `\u0001<family>\u0001<tag>\u0001<id>`, where the tag holds the
 *   family's (and the group's) generation: a bump makes every older L1 key unreachable at once.
 *   They carry no namespace generation: a namespace bump drops the whole L1 instead.
 * - Store keys: `{ family, generation, id }`, the generation being the namespace part `n<N>`
 *   (absent while it is 0) joined by `-` to the tag. The store lays them out in bytes.
 * - `l1KeyOfStoreKey` maps a store key back to its L1 key, for buses that learn of changed store
 *   keys (Redis client tracking) rather than of L1 keys.
 *
 * A key whose generations are not in memory has no L1 or store key yet (`undefined`): the caller
 * reads them first (`Generations.ensure`) or, when L2 cannot tell, skips the cache.
 */
import type { FamilyContext } from './family.js'
import type { Generations } from './l2/generations.js'
import type { StoreKey } from './ports.js'

/** The plain-key verbs' family. */
export const DEFAULT_FAMILY = 'default@1'
/** Separates the parts of L1 keys; family names cannot contain it. */
export const SEP = '\u0001'

export class Keys {
  readonly #generations: Generations

  constructor(generations: Generations) {
    this.#generations = generations
  }

  l1Key(fc: FamilyContext, id: string, params: unknown): string | undefined {
    if (fc.isDefault) return id
    const tag = this.#tag(fc, params)
    return tag === undefined ? undefined : `${SEP}${fc.id}${SEP}${tag}${SEP}${id}`
  }

  storeKey(fc: FamilyContext, id: string, params: unknown): StoreKey | undefined {
    const namespace = this.#generations.value('')
    const tag = this.#tag(fc, params)
    if (namespace === undefined || tag === undefined) return undefined
    return { family: fc.id, generation: storeGeneration(namespace, tag), id }
  }

  /** The store key, reading the generations it needs first; `undefined` when L2 cannot tell them. */
  async resolveStoreKey(fc: FamilyContext, id: string, params: unknown): Promise<StoreKey | undefined> {
    const key = this.storeKey(fc, id, params)
    if (key !== undefined) return key
    const ok = await this.#generations.ensure(this.allGenerationNames(fc, params))
    return ok ? this.storeKey(fc, id, params) : undefined
  }

  /** The generations the keys of these params depend on, besides the namespace's (`''`). */
  generationNames(fc: FamilyContext, params: readonly unknown[]): string[] {
    const names = new Set<string>()
    if (fc.generational) names.add(fc.id)
    if (fc.group !== undefined) for (const p of params) names.add(`${fc.id}:${fc.group(p as never)}`)
    return [...names]
  }

  /** Every generation a key of these params needs, the namespace's first. */
  allGenerationNames(fc: FamilyContext, params: unknown): string[] {
    return ['', ...this.generationNames(fc, [params])]
  }

  #tag(fc: FamilyContext, params: unknown): string | undefined {
    if (!fc.generational) return ''
    const family = this.#generations.value(fc.id)
    if (family === undefined) return undefined
    if (fc.group === undefined) return `${family}`
    const group = this.#generations.value(`${fc.id}:${fc.group(params as never)}`)
    return group === undefined ? undefined : `${family}.${group}`
  }
}

/** A store key's generation: the namespace part (absent while it is 0) and the tag. */
function storeGeneration(namespace: number, tag: string): string {
  return namespace === 0 ? tag : tag === '' ? `n${namespace}` : `n${namespace}-${tag}`
}

/**
 * The generation the family's store keys carry at these generation values, without a group part:
 * what `family.purge()` keeps (an older one can no longer be read).
 */
export function familyStoreGeneration(fc: FamilyContext, namespace: number, family: number): string {
  return storeGeneration(namespace, fc.generational ? `${family}` : '')
}

/** The L1 key of a store key: what a bus applies when it learns that a store key changed. */
export function l1KeyOfStoreKey(key: StoreKey): string {
  if (key.family === DEFAULT_FAMILY) return key.id
  const tag = key.generation.replace(/^n\d+-?/, '')
  return `${SEP}${key.family}${SEP}${tag}${SEP}${key.id}`
}
