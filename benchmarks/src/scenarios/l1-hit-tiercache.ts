// tiercache rows of l1-hit, measured in their own child process against the BUILT package
// (`pnpm --filter @tiercache/core build`): getOrSet, get and peek on one L1-resident
// task-progress value, with the same loops as the lru-cache baseline (peers/common.ts).
import { createTieredCache } from '@tiercache/core'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, measureL1Async, measureL1Sync } from '../peers/common.js'

export async function tiercacheL1Hit(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const cache = createTieredCache({ ttl: '1h' })
  try {
    const key = `${ctx.keyPrefix}resident`
    const value = ctx.fixtures.taskProgress
    const loader = () => value
    await cache.getOrSet(key, loader)
    const getOrSet = await measureL1Async((k) => cache.getOrSet(k, loader), key, ctx, 'tiercache getOrSet')
    const get = await measureL1Async((k) => cache.get(k), key, ctx, 'tiercache get')
    const peek = await measureL1Sync((k) => cache.peek(k), key, ctx, 'tiercache peek')
    if (cache.stats().total.loaderCalls !== 1) throw new Error('tiercache l1-hit: the loader ran again while measuring')
    return [
      { name: 'tiercache', variant: 'getOrSet (awaited)', ...l1Figures(getOrSet) },
      { name: 'tiercache', variant: 'get (awaited)', ...l1Figures(get) },
      { name: 'tiercache', variant: 'peek (sync)', ...l1Figures(peek) },
    ]
  } finally {
    await cache.close()
  }
}
