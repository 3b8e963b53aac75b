import { pack } from 'msgpackr'
import type { Invalidation } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { defaultTrackedKeyMapper } from '../src/redis-bus.js'
import { decodeBusMessage, encodeBusMessage, encodeBusTemplate, encodeHeartbeat, MAX_KEYS_PER_MESSAGE } from '../src/bus-message.js'

describe('bus wire format', () => {
  it('reads a generation written as a msgpack uint64 (how Redis scripts write values past 2^32)', () => {
    const uint64 = Buffer.from([0xcf, 0, 0, 1, 0, 0, 0, 0, 0])
    const parts = encodeBusTemplate('node-1', 1, 1, [{ op: 'generation', name: 'g', value: 0 }])
    expect(decodeBusMessage(Buffer.concat([parts[0]!, uint64, parts[1]!]))).toMatchObject({ ok: true, message: { ops: [{ op: 'generation', name: 'g', value: 2 ** 40 }] } })
  })

  it('a template joined with the bumped values is the message encodeBusMessage makes with them', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}`) // a long delete: wide array headers
    const cases: [readonly number[], readonly Invalidation[]][] = [
      [[], [{ op: 'delete', keys: ['a'] }]],
      [[5], [{ op: 'expire', keys: ['a', 'ключ'] }, { op: 'generation', name: 'g', value: 5 }, { op: 'expire', keys }]],
      [[7, 70_000, 2 ** 40], [{ op: 'generation', name: 'g1', value: 7 }, { op: 'delete', keys }, { op: 'generation', name: 'ключ', value: 70_000 }, { op: 'generation', name: '', value: 2 ** 40 }]],
      [[1], Array.from({ length: 20 }, (_, i): Invalidation => (i === 19 ? { op: 'generation', name: 'last', value: 1 } : { op: 'clear' }))],
      // A tags op's version is known when it is published: written inline, no cut.
      [[3], [{ op: 'tags', tags: ['t1', 't2'], version: 2 ** 33 }, { op: 'generation', name: 'g', value: 3 }, { op: 'tags', tags: ['t3'], version: 4 }]],
    ]
    for (const [values, ops] of cases) {
      const placeholders = ops.map((op): Invalidation => (op.op === 'generation' ? { ...op, value: 0 } : op))
      const parts = encodeBusTemplate('node-1', 5, 1_764_216_000_000, placeholders)
      expect(parts).toHaveLength(values.length + 1)
      const joined = Buffer.concat(parts.flatMap((part, i) => (i < values.length ? [part, pack(values[i])] : [part])))
      expect(joined.equals(encodeBusMessage('node-1', 5, 1_764_216_000_000, ops))).toBe(true)
      expect(decodeBusMessage(joined)).toEqual({ ok: true, message: { source: 'node-1', seq: 5, ts: 1_764_216_000_000, ops } })
    }
  })

  it('round-trips every op kind', () => {
    const ops = [
      { op: 'delete', keys: ['a', 'b:{c}'] },
      { op: 'expire', keys: ['a', '\u0001task:status@1\u0001\u0001t1', 'ключ'] },
      { op: 'expire', keys: [] },
      { op: 'generation', name: 'task:list', value: 12 },
      { op: 'tags', tags: ['host:h1', 'тег'], version: 9 },
      { op: 'clear' },
    ] as const
    const decoded = decodeBusMessage(encodeBusMessage('node-1', 41, 1_764_216_000_000, ops))
    expect(decoded).toEqual({ ok: true, message: { source: 'node-1', seq: 41, ts: 1_764_216_000_000, ops } })
  })

  it("writes an expire op as ['e', keys]", () => {
    const bytes = encodeBusMessage('node-1', 3, 1, [{ op: 'expire', keys: ['k1', 'k2'] }])
    expect(bytes.equals(pack([1, 'node-1', 3, 1, [['e', ['k1', 'k2']]]]))).toBe(true)
    expect(decodeBusMessage(pack([1, 's', 1, 1, [['e', ['k']], ['d', ['j']]]]))).toEqual({
      ok: true,
      message: { source: 's', seq: 1, ts: 1, ops: [{ op: 'expire', keys: ['k'] }, { op: 'delete', keys: ['j'] }] },
    })
  })

  it('a heartbeat is a message without ops', () => {
    expect(decodeBusMessage(encodeHeartbeat('node-1', 7, 1))).toEqual({ ok: true, message: { source: 'node-1', seq: 7, ts: 1, ops: [] } })
  })

  it.each([
    ['a truncated message', Buffer.from([0x95, 0x01]), 'undecodable'],
    ['an object', pack({ v: 1 }), 'shape'],
    ['a future version', pack([2, 's', 1, 1, []]), 'version'],
    ['a long source', pack([1, 'x'.repeat(129), 1, 1, []]), 'shape'],
    ['a fractional seq', pack([1, 's', 1.5, 1, []]), 'shape'],
    ['a string ts', pack([1, 's', 1, 'now', []]), 'shape'],
    ['extra fields in an op', pack([1, 's', 1, 1, [['c', 1]]]), 'shape'],
    ['a non-string key', pack([1, 's', 1, 1, [['d', [1]]]]), 'shape'],
    ['a generation without value', pack([1, 's', 1, 1, [['g', 'n']]]), 'shape'],
    ['too many keys', pack([1, 's', 1, 1, [['d', Array.from({ length: MAX_KEYS_PER_MESSAGE + 1 }, () => 'k')]]]), 'shape'],
    ['an expire op without keys', pack([1, 's', 1, 1, [['e']]]), 'shape'],
    ['an expire op with keys not in an array', pack([1, 's', 1, 1, [['e', 'k']]]), 'shape'],
    ['an expire op with a non-string key', pack([1, 's', 1, 1, [['e', ['k', 1]]]]), 'shape'],
    ['an expire op with extra fields', pack([1, 's', 1, 1, [['e', ['k'], 1]]]), 'shape'],
    ['an expire op with keys as a map', pack([1, 's', 1, 1, [['e', { 0: 'k' }]]]), 'shape'],
    // The bound counts the keys of every op of the message, expires and deletes alike.
    ['too many keys over an expire and a delete', pack([1, 's', 1, 1, [['e', Array.from({ length: MAX_KEYS_PER_MESSAGE }, () => 'k')], ['d', ['k']]]]), 'shape'],
    ['a malformed expire op next to a known one', pack([1, 's', 1, 1, [['d', ['k']], ['e', [null]]]]), 'shape'],
    ['a tags op without version', pack([1, 's', 1, 1, [['t', ['a']]]]), 'shape'],
    ['a tags op with no tags', pack([1, 's', 1, 1, [['t', [], 1]]]), 'shape'],
    ['a tags op with an empty tag', pack([1, 's', 1, 1, [['t', [''], 1]]]), 'shape'],
    ['a tags op with a non-string tag', pack([1, 's', 1, 1, [['t', [7], 1]]]), 'shape'],
    ['a tags op with 65 tags', pack([1, 's', 1, 1, [['t', Array.from({ length: 65 }, (_, i) => `t${i}`), 1]]]), 'shape'],
    ['a tags op with a negative version', pack([1, 's', 1, 1, [['t', ['a'], -1]]]), 'shape'],
    ['a tags op with a fractional version', pack([1, 's', 1, 1, [['t', ['a'], 1.5]]]), 'shape'],
    // What a receiver of an older version does with a message holding a tags op: drops all of it.
    ['an unknown op next to a known one', pack([1, 's', 1, 1, [['d', ['k']], ['x', 1]]]), 'shape'],
  ])('rejects %s', (_name, payload, reason) => {
    expect(decodeBusMessage(payload)).toEqual({ ok: false, reason })
  })
})

describe('defaultTrackedKeyMapper', () => {
  const map = defaultTrackedKeyMapper('ns')
  it.each([
    ['ns:default@1:{task-1}', 'task-1'],
    ['ns:default@1:{%}', ''],
    ['ns:default@1:{a%7Bb%7D}', 'a{b}'],
    ['ns:task:status@1:{t1}', '\u0001task:status@1\u0001\u0001t1'],
    ['ns:task:list@2:g3.7:{page-1}', '\u0001task:list@2\u00013.7\u0001page-1'],
    ['ns:task:list@2:gn4-3.7:{page-1}', '\u0001task:list@2\u00013.7\u0001page-1'],
    ['ns:default@1:gn4:{task-1}', 'task-1'],
  ])('maps the value key %s to its L1 key', (redisKey, l1Key) => {
    expect(map(redisKey)).toBe(l1Key)
  })

  it.each(['ns:lease:task:status@1:{t1}', 'ns:gen', 'ns:gen:task:list@2', 'other:default@1:{x}', 'ns:not-a-value-key', 'nsx:default@1:{x}'])('ignores %s', (redisKey) => {
    expect(map(redisKey)).toBeUndefined()
  })
})
