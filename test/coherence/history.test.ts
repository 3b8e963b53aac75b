import { describe, expect, it } from 'vitest'
import { checkHistory, type NodeTimeline, type WriteRecord } from './history.js'

const nodes: Record<string, NodeTimeline> = {
  a: { instanceId: 'A', applied: [], recoveries: [] },
  b: { instanceId: 'B', applied: [{ source: 'A', seq: 2, at: 100 }], recoveries: [] },
}
const w = (value: string | null, start: number, ack: number, seq: number, node = 'a', clean = true): WriteRecord => ({ node, key: 'k', value, start, ack, seq, clean })

describe('checkHistory', () => {
  it('flags a read that returns an older value after the newer write was applied', () => {
    const writes = [w('v1', 0, 10, 1), w('v2', 50, 60, 2)]
    const result = checkHistory(writes, [{ node: 'b', key: 'k', value: 'v1', start: 110, end: 111 }], nodes)
    expect(result.violations).toHaveLength(1)
    expect(result.violations[0]!.known!.value).toBe('v2')
  })

  it('accepts the known value, a concurrent later write, and anything before the message was applied', () => {
    const writes = [w('v1', 0, 10, 1), w('v2', 50, 60, 2), w('v3', 55, 200, 7, 'b')]
    const reads = [
      { node: 'b', key: 'k', value: 'v2', start: 110, end: 111 },
      { node: 'b', key: 'k', value: 'v3', start: 210, end: 211 },
      { node: 'b', key: 'k', value: 'v1', start: 90, end: 91 },
    ]
    const result = checkHistory(writes, reads, nodes)
    expect(result.violations).toEqual([])
    expect(result.readsWithKnownRemoteWrite).toBe(2)
  })

  it('a recovery makes every write acknowledged before it known; a delete must read as null', () => {
    const timeline = { ...nodes, b: { instanceId: 'B', applied: [], recoveries: [300] } }
    const writes = [w('v1', 0, 10, 1), w(null, 100, 110, 2)]
    expect(checkHistory(writes, [{ node: 'b', key: 'k', value: 'v1', start: 310, end: 311 }], timeline).violations).toHaveLength(1)
    expect(checkHistory(writes, [{ node: 'b', key: 'k', value: null, start: 310, end: 311 }], timeline).violations).toEqual([])
  })

  it('ignores writes that failed, and flags values nobody wrote', () => {
    const writes = [w('v1', 0, 10, 1), w('v2', 50, 60, 2, 'a', false)]
    expect(checkHistory(writes, [{ node: 'b', key: 'k', value: 'v1', start: 110, end: 111 }], nodes).violations).toEqual([])
    expect(checkHistory(writes, [{ node: 'b', key: 'k', value: 'v9', start: 110, end: 111 }], nodes).violations[0]!.reason).toMatch(/never written/)
  })

  it('own writes are known once acknowledged', () => {
    const writes = [w('v1', 0, 10, 1, 'b'), w('v2', 20, 30, 3, 'b')]
    expect(checkHistory(writes, [{ node: 'b', key: 'k', value: 'v1', start: 40, end: 41 }], nodes).violations).toHaveLength(1)
  })
})
