// tiercache rows of the tags scenario, in their own child process against the BUILT packages.
//
// L1 hit: `cache.get` of one L1-resident task-progress value, untagged (the baseline) and with
// 1 and 4 tags; "4 tags, 100 others invalidated since" is the slow test (each tag looked up, the
// entry's T being below the latest version). The variants are timed in alternating slices, the
// order turned every round, and each row keeps its median: side by side in one window, so the
// ratios hold when the machine swings.
//
// invalidateTags: N task-status entries in Redis (and up to 10,000 in L1), all tagged `all` and
// one of 100 group tags; the time of `invalidateTags([tag])` is measured with N = 1,000 and
// N = 100,000 (quick: 10,000). It should not depend on N: the call is one script and one message,
// whatever the number of entries the tag reaches.
import { createRedisCache } from '@tiercache/redis'
import type { ChildContext, Row } from '../scenario.js'
import { l1Figures, measureL1Async } from '../peers/common.js'
import { measure } from '../measure.js'

const ROUNDS = 4
const BATCH = 1_000
const GROUPS = 100

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

export async function tiercacheTagHits(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const namespace = ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')
  const cache = createRedisCache({ redis: { host: ctx.redis.host, port: ctx.redis.port }, namespace, ttl: '1h', l2Timeout: '1s' })
  try {
    await cache.ready()
    const value = ctx.fixtures.taskProgress
    const variants: { variant: string; key: string; tags: string[] | undefined }[] = [
      { variant: 'get, untagged', key: 'plain', tags: undefined },
      { variant: 'get, 1 tag', key: 'one', tags: ['host:h1'] },
      { variant: 'get, 4 tags', key: 'four', tags: ['host:h1', 'host:h2', 'host:h3', 'tenant:t1'] },
      { variant: 'get, 4 tags, 100 others invalidated since', key: 'later', tags: ['host:h1', 'host:h2', 'host:h3', 'tenant:t1'] },
    ]
    for (const v of variants.slice(0, 3)) await cache.set(v.key, value, v.tags === undefined ? undefined : { tags: v.tags })
    const last = variants[3] as (typeof variants)[3]
    await cache.set(last.key, value, { tags: last.tags as string[] })
    for (let i = 0; i < 100; i++) await cache.invalidateTags([`other:${i}`])
    // The first three were written before those invalidations too: write them again after, so only
    // the last one takes the slow test.
    for (const v of variants.slice(0, 3)) await cache.set(v.key, value, v.tags === undefined ? undefined : { tags: v.tags })
    const slices = new Map<string, ReturnType<typeof l1Figures>[]>()
    const timeMs = Math.max(50, ctx.timeMs / ROUNDS)
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + round) % variants.length] as (typeof variants)[0]
        const m = await measureL1Async((k) => cache.get(k), v.key, { timeMs }, `tiercache ${v.variant}`)
        slices.set(v.variant, [...(slices.get(v.variant) ?? []), l1Figures(m)])
      }
    }
    const { l2Hits, loaderCalls } = cache.stats().total
    if (l2Hits !== 0 || loaderCalls !== 0) throw new Error(`tiercache tags: expected L1 hits only (l2Hits ${l2Hits}, loader ${loaderCalls})`)
    await cache.store.clear()
    return variants.map((v, i) => {
      const figures = slices.get(v.variant) as ReturnType<typeof l1Figures>[]
      const pick = (f: keyof ReturnType<typeof l1Figures>) => median(figures.map((x) => x[f]))
      return {
        name: 'tiercache',
        variant: v.variant,
        group: 'L1 hit',
        ...(i === 0 ? { baseline: true } : {}),
        opsPerSec: pick('opsPerSec'),
        p50Us: pick('p50Us'),
        p99Us: pick('p99Us'),
        maxUs: pick('maxUs'),
      }
    })
  } finally {
    await cache.close()
  }
}

export async function tiercacheTagInvalidation(args: { entries: number[] }, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const [index, entries] of args.entries.entries()) {
    const namespace = `${ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')}-${entries}`
    const cache = createRedisCache({ redis: { host: ctx.redis.host, port: ctx.redis.port }, namespace, ttl: '1h', l2Timeout: '2s' })
    try {
      await cache.ready()
      const value = ctx.fixtures.taskStatus
      for (let start = 0; start < entries; start += BATCH) {
        const batch = []
        for (let i = start; i < Math.min(entries, start + BATCH); i++) batch.push({ key: `task:${i}`, value, options: { tags: ['all', `group:${i % GROUPS}`] } })
        await cache.setMany(batch)
      }
      let round = 0
      const m = await measure(() => cache.invalidateTags([`group:${round++ % GROUPS}`]), { timeMs: ctx.timeMs / 2 })
      // The entries are there, and each invalidation reached its share of them.
      if ((await cache.get(`task:${entries - 1}`)) !== undefined) throw new Error('tiercache tags: an invalidated entry was still served')
      rows.push({
        name: 'tiercache',
        variant: `invalidateTags, ${entries.toLocaleString('en')} tagged entries`,
        group: 'invalidateTags',
        ...(index === 0 ? { baseline: true } : {}),
        opsPerSec: m.opsPerSec,
        p50Us: m.p50Us,
        p99Us: m.p99Us,
        maxUs: m.maxUs,
      })
      await cache.store.clear()
    } finally {
      await cache.close()
    }
  }
  return rows
}
