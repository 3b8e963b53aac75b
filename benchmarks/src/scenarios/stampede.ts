// stampede: 1,000 concurrent getOrSet on one cold key, in 1 process and spread over 4 processes
// (250 each), with a 50 ms loader: how many times the loader runs. Run alone:
// `pnpm bench --only stampede`. Single-flight covers one process; leases cover several.
// bentocache (memory L1 + redis L2, each process its own instance) runs the same load.
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { startNodeProcess, type NodeProcess } from '@tiercache/testkit'
import type { Row, Scenario, ScenarioContext } from '../scenario.js'

const NODE = fileURLToPath(new URL('./propagation-node.ts', import.meta.url))
const CALLERS = 1_000
const LOADER_MS = 50

type Library = 'tiercache' | 'bentocache'

async function stampede(ctx: Pick<ScenarioContext, 'redis' | 'keyPrefix'>, library: Library, processes: number, round: number): Promise<Row> {
  const namespace = `${ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')}-${process.pid}-${round}`
  const nodes: NodeProcess[] = []
  try {
    nodes.push(...(await Promise.all(Array.from({ length: processes }, () => startNodeProcess(NODE)))))
    if (library === 'tiercache') await Promise.all(nodes.map((node) => node.call('init', { url: ctx.redis.url, namespace })))
    else await Promise.all(nodes.map((node) => node.call('bentoInit', { host: ctx.redis.host, port: ctx.redis.port, prefix: namespace })))
    const started = performance.now()
    const command = library === 'tiercache' ? 'getOrSet' : 'bentoGetOrSet'
    const ok = await Promise.all(nodes.map((node) => node.call<boolean>(command, { key: 'cold', count: CALLERS / processes, delayMs: LOADER_MS })))
    const elapsedMs = performance.now() - started
    const calls = await Promise.all(nodes.map((node) => node.call<number>('loaderCalls')))
    const loaderCalls = calls.reduce((x, y) => x + y, 0)
    const wrong = ok.filter((x) => !x).length
    return {
      name: library,
      variant: `${CALLERS} callers over ${processes} process${processes > 1 ? 'es' : ''}`,
      loaderCalls,
      maxUs: elapsedMs * 1000,
      note: wrong ? `${wrong} process(es) got a wrong value` : `${LOADER_MS} ms loader; maxUs = time until every caller had the value`,
    }
  } finally {
    await Promise.all(nodes.map((node) => node.stop()))
  }
}

export const scenario: Scenario = {
  id: 'stampede',
  title: 'Stampede on one cold key',
  measures: `loader calls for ${CALLERS} concurrent getOrSet on one cold key, in 1 and over 4 processes; \`pnpm bench --only stampede\``,
  ratioOf: 'loaderCalls',
  columns: ['loaderCalls', 'maxUs'],
  goal: '1 loader call for any number of processes',
  async run(ctx) {
    const rows: Row[] = []
    let round = 0
    for (const library of ['tiercache', 'bentocache'] as const) {
      for (const processes of [1, 4]) rows.push({ ...(await stampede(ctx, library, processes, ++round)), group: `${processes} process${processes > 1 ? 'es' : ''}`, baseline: library === 'tiercache' })
    }
    return rows
  },
}
