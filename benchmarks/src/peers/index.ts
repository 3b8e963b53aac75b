// Peer and baseline rows for l1-hit and l2-hit. Each library runs in its own child process.
import type { Row, ScenarioContext } from '../scenario.js'

export const PEERS = ['bentocache', 'cacheable', 'cache-manager'] as const
export type Peer = (typeof PEERS)[number]

type PeerScenario = 'l1-hit' | 'l2-hit'
const ENTRY: Record<PeerScenario, string> = { 'l1-hit': 'l1Hit', 'l2-hit': 'l2Hit' }

async function rowsOf(module: string, label: string, scenario: PeerScenario, ctx: ScenarioContext): Promise<Row[]> {
  ctx.log(`${label} …`)
  try {
    return await ctx.runInChild(module, ENTRY[scenario], undefined, { timeoutMs: ctx.quick ? 60_000 : 300_000 })
  } catch (error) {
    // One broken peer must not cost the other rows: report it as a row with a note.
    const message = (error as Error).message.split('\n')[0] ?? String(error)
    ctx.log(`${label} failed: ${message}`)
    return [{ name: label, variant: 'failed', note: message.slice(0, 200) }]
  }
}

/**
 * Baseline, tiercache and peer rows in one call. `--quick` is a smoke run: the children run side
 * by side, since overlapping their start-up (≈2 s each on a busy machine) matters more there
 * than figures, which a quick run does not claim. Otherwise one child at a time.
 */
export async function sideBySide(ctx: ScenarioContext, jobs: readonly (() => Promise<Row[]>)[]): Promise<Row[]> {
  if (ctx.quick) return (await Promise.all(jobs.map((job) => job()))).flat()
  const rows: Row[] = []
  for (const job of jobs) rows.push(...(await job()))
  return rows
}

/** The bare baseline rows (lru-cache for l1-hit, ioredis GET + JSON.parse for l2-hit). */
export function baselineRows(scenario: PeerScenario, ctx: ScenarioContext): Promise<Row[]> {
  return rowsOf('peers/baseline.ts', scenario === 'l1-hit' ? 'lru-cache' : 'ioredis', scenario, ctx)
}

/** The rows of bentocache, cacheable and cache-manager (defaults and their fastest no-copy settings), one child each. */
export async function peerRows(scenario: PeerScenario, ctx: ScenarioContext, peers: readonly Peer[] = PEERS): Promise<Row[]> {
  return sideBySide(
    ctx,
    peers.map((peer) => () => rowsOf(`peers/${peer}.ts`, peer, scenario, ctx)),
  )
}
