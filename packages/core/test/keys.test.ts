// Keys: the one builder of L1 and store keys, and the mapping from a store key back to its L1 key
// that buses use when they learn of changed store keys (Redis client tracking).
import { describe, expect, it } from 'vitest'
import type { FamilyContext } from '../src/family.js'
import { Generations } from '../src/l2/generations.js'
import { DEFAULT_FAMILY, Keys, l1KeyOfStoreKey } from '../src/keys.js'
import { baseSettings, resolveOptions } from '../src/options.js'
import { FamilyCounters } from '../src/stats.js'

const settings = baseSettings(resolveOptions())
const family = (id: string, generational: boolean, group?: (p: never) => string): FamilyContext => ({
  id,
  counters: new FamilyCounters(),
  settings,
  schema: undefined,
  generational,
  group,
  tags: undefined,
  isDefault: id === DEFAULT_FAMILY,
  adaptive: undefined,
})

describe('keys', () => {
  const generations = new Generations(undefined, { now: () => 0 }, () => {})
  const keys = new Keys(generations)
  const plain = family(DEFAULT_FAMILY, false)
  const status = family('task:status@1', false)
  const list = family('task:list@1', true)
  const hostTasks = family('host:tasks@1', true, ((p: { host: string }) => p.host) as (p: never) => string)

  it('maps every store key back to the L1 key of the same entry, whatever the generations', () => {
    const cases: [FamilyContext, string, unknown][] = [
      [plain, 'k', undefined],
      [status, 'task-1', undefined],
      [list, 'page=1', undefined],
      [hostTasks, 'h-1:page=1', { host: 'h-1' }],
    ]
    for (const [namespace, listGen, groupGen] of [
      [0, 0, 0],
      [3, 0, 0],
      [0, 7, 2],
      [12, 5, 9],
    ] as const) {
      generations.apply('', namespace)
      generations.apply('task:list@1', listGen)
      generations.apply('host:tasks@1', listGen)
      generations.apply('host:tasks@1:h-1', groupGen)
      for (const [fc, id, params] of cases) {
        const storeKey = keys.storeKey(fc, id, params)
        expect(storeKey).toBeDefined()
        expect(l1KeyOfStoreKey(storeKey!)).toBe(keys.l1Key(fc, id, params))
      }
    }
  })

  it('keeps the default family\'s L1 keys as given, and tags generational ones with their generations', () => {
    generations.apply('', 20)
    generations.apply('task:list@1', 8)
    expect(keys.l1Key(plain, 'k', undefined)).toBe('k')
    expect(keys.storeKey(plain, 'k', undefined)).toEqual({ family: DEFAULT_FAMILY, generation: 'n20', id: 'k' })
    expect(keys.storeKey(list, 'p', undefined)).toEqual({ family: 'task:list@1', generation: 'n20-8', id: 'p' })
    // The L1 key carries the family generation, not the namespace's: a namespace bump drops L1 whole.
    expect(keys.l1Key(list, 'p', undefined)).toBe('\u0001task:list@1\u00018\u0001p')
  })
})
