import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeId, encodeId, escapeGlob, keyBuilder, slotOf } from '../src/keys.js'

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

  it('escapes glob metacharacters in user-supplied parts', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f')
    expect(escapeGlob('plain-part')).toBe('plain-part')
    expect(keyBuilder('n[1]').pattern('task:*')).toBe('n\\[1\\]:task:*')
  })
})
