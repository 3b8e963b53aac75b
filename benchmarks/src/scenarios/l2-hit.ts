import { baselineRows, peerRows } from '../peers/index.js'
import type { Row, Scenario } from '../scenario.js'

export const scenario: Scenario = {
  id: 'l2-hit',
  title: 'L2 hit: L1 miss, value in Redis',
  measures:
    'reads of task-progress values that miss L1 and hit Redis, over 1,000 rotating keys, one at a time and 64 in flight; tiercache next to bare ioredis GET + JSON.parse and the peers. Run alone: `pnpm bench --only l2-hit`.',
  ratioOf: 'opsPerSec',
  goal: 'tiercache ≥ 0.9× baseline one at a time, ≥ 1.0× with 64 in flight',
  async run(ctx) {
    const rows: Row[] = []
    rows.push(...(await baselineRows('l2-hit', ctx)))
    // tiercache rows plug in here (a ChildEntry run through ctx.runInChild, like the peers).
    rows.push(...(await peerRows('l2-hit', ctx)))
    return rows
  },
}
