import { pack } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { coalesce, decodeBusMessage, encodeBusMessage, encodeHeartbeat, MAX_KEYS_PER_MESSAGE } from '../src/bus-message.js'

describe('bus wire format', () => {
  it('round-trips every op kind', () => {
    const ops = [
      { op: 'delete', keys: ['a', 'b:{c}'] },
      { op: 'generation', name: 'task:list', value: 12 },
      { op: 'clear' },
    ] as const
    const decoded = decodeBusMessage(encodeBusMessage('node-1', 41, 1_764_216_000_000, ops))
    expect(decoded).toEqual({ ok: true, message: { source: 'node-1', seq: 41, ts: 1_764_216_000_000, ops } })
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
  ])('rejects %s', (_name, payload, reason) => {
    expect(decodeBusMessage(payload)).toEqual({ ok: false, reason })
  })
})

describe('coalesce', () => {
  it('merges every delete into the first, deduplicated, and keeps other ops in order', () => {
    expect(
      coalesce([
        { op: 'delete', keys: ['a', 'b'] },
        { op: 'generation', name: 'g', value: 1 },
        { op: 'delete', keys: ['b', 'c'] },
        { op: 'clear' },
        { op: 'clear' },
        { op: 'generation', name: 'g', value: 2 },
      ]),
    ).toEqual([{ op: 'delete', keys: ['a', 'b', 'c'] }, { op: 'generation', name: 'g', value: 1 }, { op: 'clear' }, { op: 'generation', name: 'g', value: 2 }])
  })

  it('leaves a single op alone', () => {
    const op = { op: 'delete', keys: ['a'] } as const
    expect(coalesce([op])[0]).toBe(op)
  })
})
