import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bySlot, decodeId, encodeId, escapeGlob, familyGlob, keyBuilder, namespacePrefix, parseValueKey, slotOf } from '../src/keys.js'

/** The hash tag Redis Cluster would hash for a key: first `{` to the first `}` after it, if non-empty. */
function hashTag(key: string): string {
  const open = key.indexOf('{')
  if (open < 0) return key
  const close = key.indexOf('}', open + 1)
  if (close < 0 || close === open + 1) return key
  return key.slice(open + 1, close)
}

describe('key layout', () => {
  const keys = keyBuilder('jobs')

  it('writes value, lease and generation keys as documented', () => {
    expect(keys.value({ family: 'task:status@1', generation: '', id: 't1' })).toBe('jobs:task:status@1:{t1}')
    expect(keys.value({ family: 'task:list@2', generation: '7', id: 'p=1' })).toBe('jobs:task:list@2:g7:{p=1}')
    expect(keys.lease({ family: 'task:list@2', generation: '7', id: 'p=1' })).toBe('jobs:lease:task:list@2:{p=1}')
    expect(keys.generation('')).toBe('jobs:gen')
    expect(keys.generation('task:list@2')).toBe('jobs:gen:task:list@2')
    expect(keys.generation('host:tasks@1:h-1')).toBe('jobs:gen:host:tasks@1:h-1')
  })

  it('puts a value and its lease in the same slot, whatever the id holds', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.constantFrom('', '3', '{x}'), fc.constantFrom('a@1', 'a{b}@1', 'a}@1'), (id, generation, family) => {
        const key = { family, generation, id }
        const value = keys.value(key)
        const lease = keys.lease(key)
        expect(hashTag(value)).toBe(encodeId(id))
        expect(hashTag(lease)).toBe(encodeId(id))
        expect(slotOf(value)).toBe(slotOf(lease))
      }),
    )
  })

  it('encodes ids reversibly, so different ids never share a key', () => {
    fc.assert(
      fc.property(fc.string(), (id) => {
        const encoded = encodeId(id)
        expect(encoded).not.toMatch(/[{}]/)
        expect(encoded.length).toBeGreaterThan(0)
        expect(decodeId(encoded)).toBe(id)
      }),
    )
    const ids = ['', '%', '{', '}', '{}', '%7B', '%257B', 'a{b}c', '}{']
    const written = new Set(ids.map((id) => keys.value({ family: 'f@1', generation: '', id })))
    expect(written.size).toBe(ids.length)
  })

  it('hashes an empty id by a tag of its own, not the whole key', () => {
    const key = { family: 'f@1', generation: '', id: '' }
    expect(keys.value(key)).toBe('jobs:f@1:{%}')
    expect(slotOf(keys.value(key))).toBe(slotOf(keys.lease(key)))
  })

  it('computes Redis Cluster slots (CLUSTER KEYSLOT reference values)', () => {
    expect(slotOf('foo')).toBe(12182)
    expect(slotOf('bar')).toBe(5061)
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'))
    expect(slotOf('123456789')).toBe(0x31c3 & 16383)
  })

  it('reads the family back from value keys only', () => {
    expect(keys.familyOf('jobs:task:status@1:{t1}')).toBe('task:status@1')
    expect(keys.familyOf('jobs:task:list@2:g7:{p=1}')).toBe('task:list@2')
    expect(keys.familyOf(keys.value({ family: 'odd{name}@3', generation: '1', id: 'x' }))).toBe('odd{name}@3')
    expect(keys.familyOf('jobs:lease:task:list@2:{p=1}')).toBeUndefined()
    expect(keys.familyOf('jobs:gen')).toBeUndefined()
    expect(keys.familyOf('jobs:gen:task:list@2')).toBeUndefined()
    expect(keys.familyOf('other:task:status@1:{t1}')).toBeUndefined()
  })

  it('parses value keys back to the store key they were built from, and nothing else', () => {
    const prefix = namespacePrefix('jobs')
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom('', '3', 'n4', 'n4-3.7', '{x}', '%'),
        fc.constantFrom('a@1', 'task:status@12', 'odd{name}%@3', 'lease:x@1', 'gen:x@1'),
        (id, generation, family) => {
          const key = { family, generation, id }
          const parsed = parseValueKey(prefix, keys.value(key))
          // A family named `lease:…` or `gen:…` would write keys shaped like leases or generation keys.
          if (family.startsWith('lease:') || family.startsWith('gen:')) expect(parsed).toBeUndefined()
          else expect(parsed).toEqual(key)
        },
      ),
    )
    for (const redisKey of ['jobs:lease:task:list@2:{p=1}', 'jobs:gen', 'jobs:gen:task:list@2', 'other:a@1:{x}', 'jobs:a@1:{x', 'jobs:a@x:{x}', 'jobs:@1:{x}', 'jobs:a@1x:{x}', 'jobs:a@1:{x}{y}', 'jobs:a@1']) {
      expect(parseValueKey(prefix, redisKey), redisKey).toBeUndefined()
    }
    expect(namespacePrefix('n{1}')).toBe('n%7B1%7D:')
  })

  it('globs the value keys of a family, its parts escaped for the key and for MATCH', () => {
    expect(familyGlob('pg@1')).toBe('pg@1:*')
    expect(familyGlob('a*{b}@2')).toBe('a\\*%7Bb%7D@2:*')
  })

  it('groups keys by cluster slot, keys and indexes in input order', async () => {
    const redisKeys = ['a:{1}', 'b:{2}', 'c:{1}', 'd:{3}', 'e:{2}']
    const groups = await bySlot(redisKeys, async (slotKeys, indexes) => ({ slotKeys: [...slotKeys], indexes: [...indexes] }))
    expect(groups.map((g) => g.slotKeys).sort()).toEqual([['a:{1}', 'c:{1}'], ['b:{2}', 'e:{2}'], ['d:{3}']])
    for (const { slotKeys, indexes } of groups) {
      expect(indexes.map((i) => redisKeys[i])).toEqual(slotKeys)
      expect(new Set(slotKeys.map(slotOf)).size).toBe(1)
    }
    expect(await bySlot(['x:{1}', 'y:{1}'], async (slotKeys) => slotKeys.length)).toEqual([2])
    expect(await bySlot([], async () => 1)).toEqual([])
  })

  it('escapes glob metacharacters in user-supplied parts', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f')
    expect(escapeGlob('plain-part')).toBe('plain-part')
    expect(keyBuilder('n[1]').pattern('task:*')).toBe('n\\[1\\]:task:*')
  })
})
