import type { Row, Scenario } from '../scenario.js'

export const scenario: Scenario = {
  id: 'tags',
  title: 'Tags: what a tag costs a hit, and what an invalidation costs',
  measures:
    'L1 hits (get of a resident task-progress value) untagged, with 1 and 4 tags, and with 4 tags after other tags were invalidated, side by side in one child; invalidateTags with 1,000 and 100,000 tagged task-status entries in Redis (quick: 1,000 and 10,000). Run alone: `pnpm bench --only tags`.',
  ratioOf: 'opsPerSec',
  goal: 'an L1 hit with tags ≥ 0.9× untagged; invalidateTags flat in the number of tagged entries (100,000 ≈ 1,000)',
  async run(ctx) {
    const rows: Row[] = []
    rows.push(...(await ctx.runInChild('scenarios/tags-tiercache.ts', 'tiercacheTagHits', {})))
    const entries = ctx.quick ? [1_000, 10_000] : [1_000, 100_000]
    rows.push(...(await ctx.runInChild('scenarios/tags-tiercache.ts', 'tiercacheTagInvalidation', { entries }, { timeoutMs: 180_000 })))
    return rows
  },
}
