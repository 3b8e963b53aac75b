// results/latest.json, results/REPORT.md and the SVG charts next to it; with `--publish`, the
// same report as docs/benchmarks.md (charts and figures in docs/benchmarks/), the page a reader
// sees before running anything.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { FIGURE_LABEL, markdownTable, tableCells } from './format.js'
import type { RunMeta } from './meta.js'
import type { Figure, Row, Scenario } from './scenario.js'
import { barChartSvg, microsFormat, ratioFormat } from './svg.js'

export interface ScenarioResult {
  id: string
  scenario?: Scenario
  rows: Row[]
  /** Why the scenario has no rows, or what went wrong. */
  status: 'ok' | 'unavailable' | 'failed'
  message?: string
  durationMs: number
}

export interface LatestJson {
  meta: RunMeta
  scenarios: Record<string, { title?: string; measures?: string; ratioOf?: string; status: ScenarioResult['status']; message?: string; durationMs: number; rows: Row[] }>
}

export function latestJson(meta: RunMeta, results: readonly ScenarioResult[]): LatestJson {
  const scenarios: LatestJson['scenarios'] = {}
  for (const result of results) {
    scenarios[result.id] = {
      title: result.scenario?.title,
      measures: result.scenario?.measures,
      ratioOf: result.scenario?.ratioOf ?? 'opsPerSec',
      status: result.status,
      ...(result.message ? { message: result.message } : {}),
      durationMs: Math.round(result.durationMs),
      rows: result.rows,
    }
  }
  return { meta, scenarios }
}

const rowLabel = (row: Row) => [row.group, row.name, row.variant].filter(Boolean).join(' · ')

function charts(result: ScenarioResult): { file: string; svg: string; alt: string }[] {
  const out: { file: string; svg: string; alt: string }[] = []
  const ratioOf = result.scenario?.ratioOf ?? 'opsPerSec'
  const withRatio = result.rows.filter((row) => typeof row.ratio === 'number')
  if (withRatio.length > 1) {
    out.push({
      file: `${result.id}-ratio.svg`,
      alt: `${result.id}: ${FIGURE_LABEL[ratioOf]} relative to the baseline`,
      svg: barChartSvg({
        title: `${result.id}: ${FIGURE_LABEL[ratioOf]} / baseline (dashed line = 1×)`,
        series: ['ratio'],
        bars: withRatio.map((row) => ({ label: rowLabel(row), values: [row.ratio] })),
        format: ratioFormat,
        reference: 1,
      }),
    })
  }
  const outage = result.rows.some((row) => typeof row.p99BeforeUs === 'number')
  const series: { label: string; figure: Figure }[] = outage
    ? [
        { label: 'p99 before', figure: 'p99BeforeUs' },
        { label: 'p99 during', figure: 'p99Us' },
        { label: 'max during', figure: 'maxUs' },
        { label: 'p99 after', figure: 'p99AfterUs' },
      ]
    : [
        { label: 'p50', figure: 'p50Us' },
        { label: 'p99', figure: 'p99Us' },
      ]
  const withLatency = result.rows.filter((row) => series.some(({ figure }) => typeof row[figure] === 'number'))
  if (withLatency.length > 0) {
    out.push({
      file: `${result.id}-latency.svg`,
      alt: `${result.id}: ${series.map((s) => s.label).join(', ')} latency per row`,
      svg: barChartSvg({
        title: `${result.id}: latency per operation (shorter is better)`,
        series: series.map((s) => s.label),
        bars: withLatency.map((row) => ({ label: rowLabel(row), values: series.map(({ figure }) => row[figure]) })),
        format: microsFormat,
      }),
    })
  }
  return out
}

const HOW_TO_READ = `## How to read this

- Every scenario has a **baseline** row (the bare thing tiercache is built on, or the plain
  alternative: lru-cache, an ioredis GET + JSON.parse, JSON strings). \`ratio\` is a row's figure
  divided by its group's baseline figure, for the figure named in the ratio column's header
  (usually ops/s, so **above 1× is faster**; for bytes and latency, **below 1× is smaller/faster**).
  Rows in different groups (e.g. \`one at a time\` and \`64 in flight\`) are not comparable.
- \`p50 µs\` / \`p99 µs\` are per operation. For sub-microsecond operations the timed function runs
  a batch of calls and the percentiles are of batch means, so p99 understates single-call outliers.
- Peers (bentocache, cacheable, cache-manager) and each library's candidates run in their own
  Node process, so one library's client or codec does not slow another's.
- A quick run (\`--quick\`) measures for a fraction of a second per row: use it as a smoke test,
  not for figures. Machines are noisy; compare ratios within one run rather than absolute
  numbers across runs.
- "not available" means the scenario's code is not in this build yet; "failed" carries the error.
`

/** Where a report goes: the markdown file, and the directory of its charts and raw figures. */
export interface ReportTarget {
  markdownFile: string
  /** Holds latest.json and the charts. */
  assetsDir: string
  /** assetsDir as the markdown file links it ('' when they share a directory). */
  assetsHref: string
  title: string
  producedBy: string
}

/** The run's own report: benchmarks/results/. */
export const resultsTarget = (dir: string): ReportTarget => ({
  markdownFile: join(dir, 'REPORT.md'),
  assetsDir: dir,
  assetsHref: '',
  title: 'tiercache benchmark report',
  producedBy: 'Produced by `pnpm bench` (see benchmarks/README.md).',
})

/** The published page: docs/benchmarks.md, its charts and figures in docs/benchmarks/. */
export const publishedTarget = (docsDir: string): ReportTarget => ({
  markdownFile: join(docsDir, 'benchmarks.md'),
  assetsDir: join(docsDir, 'benchmarks'),
  assetsHref: 'benchmarks/',
  title: 'Benchmarks',
  producedBy:
    'The figures of the last full run of the benchmark suite, published by `pnpm bench --publish` (see [benchmarks/README.md](../benchmarks/README.md) for what each scenario measures and how to run one). Ratios compare rows measured side by side in that run, on that machine.',
})

export function writeReport(target: ReportTarget, meta: RunMeta, results: readonly ScenarioResult[]): void {
  const dir = target.assetsDir
  mkdirSync(dir, { recursive: true })
  mkdirSync(dirname(target.markdownFile), { recursive: true })
  // Charts of an earlier run must not sit next to a report that no longer shows them.
  for (const file of readdirSync(dir)) if (/-(ratio|latency)\.svg$/.test(file)) rmSync(join(dir, file))
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(latestJson(meta, results), null, 2) + '\n')
  const lines: string[] = [
    `# ${target.title}`,
    '',
    `Run ${meta.date}${meta.quick ? ' (**--quick**: smoke-test figures)' : ''} · Node ${meta.node} · ${meta.cpu} · ${meta.machine.cores} cores · ${meta.machine.memoryGiB} GiB · ${meta.machine.os} ${meta.machine.arch}`,
    '',
    `Versions: ${Object.entries(meta.versions).map(([name, version]) => `${name} ${version}`).join(', ')}`,
    '',
    `${target.producedBy} Raw figures: [latest.json](${target.assetsHref}latest.json).`,
    '',
    '| scenario | status | rows | time |',
    '|:---|:---|---:|---:|',
    ...results.map((r) => `| [${r.id}](#${r.id}) | ${r.status === 'ok' ? 'ok' : `${r.status}: ${(r.message ?? '').split('\n')[0]!.replace(/\|/g, '\\|')}`} | ${r.rows.length} | ${(r.durationMs / 1000).toFixed(1)} s |`),
    '',
    HOW_TO_READ,
  ]
  for (const result of results) {
    lines.push(`## ${result.id}`, '')
    if (result.scenario) lines.push(`**${result.scenario.title}.** ${result.scenario.measures}`, '')
    if (result.status !== 'ok') lines.push(`> ${result.status}: ${(result.message ?? '').split('\n').join(' ')}`, '')
    if (result.rows.length > 0) lines.push(markdownTable(tableCells(result.scenario, result.rows)), '')
    if (result.scenario?.goal) lines.push(`Goal: ${result.scenario.goal}`, '')
    for (const chart of charts(result)) {
      writeFileSync(join(dir, chart.file), chart.svg)
      lines.push(`![${chart.alt}](${target.assetsHref}${chart.file})`, '')
    }
  }
  writeFileSync(target.markdownFile, lines.join('\n'))
}
