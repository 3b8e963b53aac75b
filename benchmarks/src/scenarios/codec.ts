import type { Row, Scenario } from '../scenario.js'

// JSON and the tiercache codec run interleaved in one child (no Redis client loaded there): the
// ratio the goal reads holds still. The other candidates run in a child of their own each
// (codec-candidates.ts): a codec sharing a heap and JIT profile with another library's measures
// differently than it runs in a service.
const CHILDREN = [
  ['interleaved', 'JSON and the tiercache codec, interleaved'],
  ['json', 'JSON to a Buffer'],
  ['msgpackr', 'msgpackr'],
] as const

export const scenario: Scenario = {
  id: 'codec',
  title: 'Codec: bytes and encode+decode speed',
  measures:
    'bytes written to Redis and encode+decode round trips per second for task-progress (≈3.8 KB JSON) and task-list-page (≈4.8 KB JSON): JSON, msgpackr (defaults, records, +lz4) and the tiercache L2 codec (18-byte envelope + record section + msgpackr records + lz4 above 1 KiB). JSON and the tiercache codec run in one process, interleaved in short batches, median of the rounds, for the round trip (group `<fixture>`), decode alone (`<fixture> decode`: what every process that misses L1 pays) and encode alone (`<fixture> encode`). msgpackr and JSON to a Buffer run in processes of their own; their notes give their speed against JSON measured in that process, interleaved. Run alone: `pnpm bench --only codec`.',
  ratioOf: 'opsPerSec',
  columns: ['opsPerSec', 'p50Us', 'p99Us', 'bytes'],
  goal: 'tiercache codec bytes ≤ 30% of JSON; encode+decode ≥ 1.2× JSON (interleaved in one process)',
  async run(ctx) {
    const rows: Row[] = []
    for (const [child, label] of CHILDREN) {
      ctx.log(`${label} …`)
      rows.push(...(await ctx.runInChild('scenarios/codec-candidates.ts', child, {}, { timeoutMs: ctx.quick ? 60_000 : 300_000 })))
    }
    // Bytes against JSON, per fixture, in the note (the ratio column compares ops/s).
    for (const row of rows) {
      const json = rows.find((other) => other.baseline && other.group === row.group)
      if (!row.baseline && json?.bytes && row.bytes) {
        const pct = `${Math.round((row.bytes / json.bytes) * 100)}% of JSON bytes`
        row.note = row.note ? `${pct}; ${row.note}` : pct
      }
    }
    return rows
  },
}
