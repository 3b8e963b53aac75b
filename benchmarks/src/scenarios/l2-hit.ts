import { baselineRows, peerRows, sideBySide } from '../peers/index.js'
import type { Row, Scenario } from '../scenario.js'

export const scenario: Scenario = {
  id: 'l2-hit',
  title: 'L2 hit: L1 miss, value in Redis',
  measures:
    'reads of task-progress values that miss L1 and hit Redis, over 1,000 rotating keys, one at a time and 64 in flight; tiercache next to bare ioredis GET + JSON.parse and the peers; and cache.get against GET + JSON.parse paired round by round in one process (the figure that holds on a noisy machine). Run alone: `pnpm bench --only l2-hit`.',
  ratioOf: 'opsPerSec',
  goal: 'tiercache ≥ 0.9× baseline one at a time (paired: the median per-round ratio), ≥ 1.0× with 64 in flight',
  async run(ctx) {
    const jobs: (() => Promise<Row[]>)[] = [
      () => baselineRows('l2-hit', ctx),
      () => ctx.runInChild('scenarios/l2-hit-tiercache.ts', 'tiercacheL2Hit', {}, { timeoutMs: ctx.quick ? 60_000 : 300_000 }),
      () => peerRows('l2-hit', ctx),
    ]
    return sideBySide(ctx, jobs)
  },
}
