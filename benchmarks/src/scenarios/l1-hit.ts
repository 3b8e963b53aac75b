import { baselineRows, peerRows } from '../peers/index.js'
import type { Row, Scenario } from '../scenario.js'

export const scenario: Scenario = {
  id: 'l1-hit',
  title: 'L1 hit: reading a resident key',
  measures:
    'get of an L1-resident task-progress value (batches of 256 awaited calls), tiercache next to bare lru-cache (sync and inside an async function) and the peers with defaults and their fastest no-copy settings. Run alone: `pnpm bench --only l1-hit`.',
  ratioOf: 'opsPerSec',
  goal: 'tiercache getOrSet ≥ 1.0× lru-cache get in an async function; peek ≥ 0.7× sync get; ≥ 10× the fastest peer setting',
  async run(ctx) {
    const rows: Row[] = []
    rows.push(...(await baselineRows('l1-hit', ctx)))
    rows.push(...(await ctx.runInChild('scenarios/l1-hit-tiercache.ts', 'tiercacheL1Hit', {})))
    rows.push(...(await peerRows('l1-hit', ctx)))
    return rows
  },
}
