// The benchmark suite's entry point: `pnpm bench [--quick] [--only <id>[,<id>…]]`.
// Starts what it needs (redis-server via the testkit), runs every scenario in order, prints a
// progress line and a table per scenario, and writes results/latest.json and results/REPORT.md.
// `--publish` also writes that report as docs/benchmarks.md; `--publish-last` publishes the last
// full run's results without running again.
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedis, taskFixtures, type RedisServer } from '@tiercache/testkit'
import { childPool } from './child.js'
import { FlagsError, parseFlags, USAGE } from './flags.js'
import { tableCells, textTable } from './format.js'
import { collectMeta } from './meta.js'
import { applyRatios } from './ratios.js'
import { publishedTarget, resultsTarget, writeReport, type LatestJson, type ScenarioResult } from './report.js'
import type { Fixtures, ScenarioContext } from './scenario.js'
import { SCENARIO_IDS, loadScenario } from './scenarios/index.js'

const BENCH_ROOT = fileURLToPath(new URL('..', import.meta.url))
const REPO_ROOT = resolve(BENCH_ROOT, '..')
const RESULTS_DIR = join(BENCH_ROOT, 'results')
const DOCS_DIR = join(REPO_ROOT, 'docs')

/** Publishes results/latest.json as it is: the figures of the run that wrote it. */
async function publishLast(): Promise<number> {
  const file = join(RESULTS_DIR, 'latest.json')
  if (!existsSync(file)) {
    console.error(`nothing to publish: ${join('benchmarks', 'results', 'latest.json')} does not exist; run \`pnpm bench --publish\``)
    return 1
  }
  const latest = JSON.parse(readFileSync(file, 'utf8')) as LatestJson
  const missing = SCENARIO_IDS.filter((id) => latest.scenarios[id]?.status !== 'ok')
  if (latest.meta.quick || missing.length > 0) {
    console.error(`the last run is not a full run${latest.meta.quick ? ' (--quick)' : `: ${missing.join(', ')} did not run or failed`}; run \`pnpm bench --publish\``)
    return 1
  }
  const results: ScenarioResult[] = []
  for (const id of SCENARIO_IDS) {
    const loaded = await loadScenario(id)
    const scenario = 'scenario' in loaded ? loaded.scenario : undefined
    const saved = latest.scenarios[id]!
    results.push({ id, ...(scenario ? { scenario } : {}), rows: saved.rows, status: saved.status, durationMs: saved.durationMs })
  }
  writeReport(publishedTarget(DOCS_DIR), latest.meta, results)
  console.log(`wrote docs/benchmarks.md from the run of ${latest.meta.date}`)
  return 0
}


const withDeadline = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} exceeded its ${Math.round(ms / 1000)} s deadline`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

async function main(): Promise<number> {
  let flags
  try {
    flags = parseFlags(process.argv.slice(2))
  } catch (error) {
    if (!(error instanceof FlagsError)) throw error
    console.error(`${error.message}\n${USAGE}`)
    return error.help ? 0 : 2
  }
  if (flags.publish === 'last') return publishLast()
  const fixtures: Fixtures = taskFixtures()
  const started = performance.now()
  const meta = collectMeta(REPO_ROOT, flags.quick)
  const ids = flags.only ?? [...SCENARIO_IDS]
  const timeMs = flags.quick ? 100 : 2000
  // A hung peer or scenario must not hold the run (CI runs --quick after the tests).
  const scenarioDeadlineMs = flags.quick ? 120_000 : 20 * 60_000
  console.log(`tiercache benchmarks${flags.quick ? ' (--quick)' : ''}: ${ids.join(', ')}`)
  console.log(`Node ${meta.node} · ${meta.cpu} · ${meta.machine.cores} cores · ${meta.machine.memoryGiB} GiB`)

  const redis = await startRedis()
  const redisVersion = /redis_version:([^\r\n]+)/.exec(await redis.command('INFO', 'server'))?.[1]
  if (redisVersion) meta.versions['redis-server'] = redisVersion
  const results: ScenarioResult[] = []
  let failed = 0
  try {
    for (const [index, id] of ids.entries()) {
      const prefix = `[${index + 1}/${ids.length}] ${id}`
      const t0 = performance.now()
      const loaded = await loadScenario(id)
      if ('unavailable' in loaded) {
        console.log(`${prefix}: ${loaded.unavailable}`)
        results.push({ id, rows: [], status: 'unavailable', message: loaded.unavailable, durationMs: 0 })
        continue
      }
      const { scenario } = loaded
      console.log(`${prefix}: ${scenario.title} …`)
      const pool = childPool()
      const privateServers: RedisServer[] = []
      const log = (message: string) => console.log(`    ${message}`)
      const ctx: ScenarioContext = {
        quick: flags.quick,
        timeMs,
        redis: { host: redis.host, port: redis.port, url: redis.url },
        keyPrefix: `bench:${id}:`,
        fixtures,
        repoRoot: REPO_ROOT,
        runInChild: (module, exportName, args, options = {}) =>
          pool.run(
            module,
            exportName,
            args,
            { quick: flags.quick, redis: options.redis ?? ctx.redis, fixtures, timeMs, keyPrefix: `bench:${id}:${exportName}:${Math.random().toString(36).slice(2, 8)}:` },
            options,
            log,
          ),
        startRedis: async () => {
          const server = await startRedis()
          privateServers.push(server)
          return server
        },
        log,
      }
      try {
        const rows = applyRatios(await withDeadline(scenario.run(ctx), scenarioDeadlineMs, id), scenario.ratioOf ?? 'opsPerSec')
        const result: ScenarioResult = { id, scenario, rows, status: 'ok', durationMs: performance.now() - t0 }
        results.push(result)
        console.log(`${prefix}: done in ${(result.durationMs / 1000).toFixed(1)} s\n`)
        console.log(textTable(tableCells(scenario, rows)).replace(/^/gm, '  '))
        if (scenario.goal) console.log(`  goal: ${scenario.goal}`)
        console.log('')
      } catch (error) {
        failed++
        const message = (error as Error)?.stack ?? String(error)
        results.push({ id, scenario, rows: [], status: 'failed', message: (error as Error)?.message ?? message, durationMs: performance.now() - t0 })
        console.error(`${prefix}: FAILED\n${message}\n`)
      } finally {
        pool.killAll()
        await Promise.allSettled(privateServers.map((server) => server.stop()))
      }
    }
  } finally {
    await redis.stop()
  }
  meta.durationMs = Math.round(performance.now() - started)
  writeReport(resultsTarget(RESULTS_DIR), meta, results)
  console.log(`wrote ${join('benchmarks', 'results', 'latest.json')} and ${join('benchmarks', 'results', 'REPORT.md')} (${(meta.durationMs / 1000).toFixed(1)} s)`)
  if (failed > 0) console.error(`${failed} scenario(s) failed`)
  if (flags.publish === 'run') {
    if (failed > 0) console.error('not published: a published report has every scenario')
    else {
      writeReport(publishedTarget(DOCS_DIR), meta, results)
      console.log('wrote docs/benchmarks.md')
    }
  }
  return failed > 0 ? 1 : 0
}

// Exit explicitly: a peer client left open by a failed scenario must not keep the run alive.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
