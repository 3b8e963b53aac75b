// Number formatting and the column model shared by the terminal tables and REPORT.md.
import type { Figure, Row, Scenario } from './scenario.js'

export const FIGURE_ORDER: Figure[] = [
  'opsPerSec', 'p50Us', 'p99Us', 'maxUs', 'bytes', 'bytesPerEntry', 'loaderCalls', 'dbQueries', 'reductionPct', 'optimalReductionPct',
  'staleReads', 'errors', 'slowCalls', 'p99BeforeUs', 'p99AfterUs', 'maxAfterUs', 'recoveryMs', 'hitRatePct', 'loaderCallsPerSec', 'l2ReadsPerSec',
  'entries', 'residentEntries', 'processes', 'masters', 'heapBytesPerEntry', 'busMessagesPerNodePerSec',
]

export const FIGURE_LABEL: Record<Figure, string> = {
  opsPerSec: 'ops/s',
  p50Us: 'p50 µs',
  p99Us: 'p99 µs',
  maxUs: 'max µs',
  bytes: 'bytes',
  bytesPerEntry: 'bytes/entry',
  loaderCalls: 'loader calls',
  dbQueries: 'db queries',
  reductionPct: 'reduction %',
  optimalReductionPct: 'optimal %',
  staleReads: 'stale reads',
  errors: 'errors',
  slowCalls: 'calls > 1 s',
  p99BeforeUs: 'p99 before µs',
  p99AfterUs: 'p99 after µs',
  maxAfterUs: 'max after µs',
  recoveryMs: 'recovery ms',
  hitRatePct: 'hit rate %',
  loaderCallsPerSec: 'loader calls/s',
  l2ReadsPerSec: 'L2 reads/s',
  entries: 'entries',
  heapBytesPerEntry: 'heap B/entry',
  processes: 'processes',
  busMessagesPerNodePerSec: 'bus msgs/node/s',
  residentEntries: 'resident entries',
  masters: 'masters',
}

export function formatNumber(value: number, figure?: Figure): string {
  if (!Number.isFinite(value)) return String(value)
  if (figure === 'opsPerSec') {
    if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`
    if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k`
    return value.toFixed(0)
  }
  // Rounded down: a hit rate of 99.9996 % must not read as 100.
  if (figure === 'hitRatePct') return value >= 99 && value < 100 ? (Math.floor(value * 1000) / 1000).toFixed(3) : value.toFixed(2)
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US')
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

export function formatRatio(ratio: number): string {
  if (ratio >= 100) return `${ratio.toFixed(0)}×`
  if (ratio >= 10) return `${ratio.toFixed(1)}×`
  if (ratio >= 0.01 || ratio === 0) return `${ratio.toFixed(2)}×`
  // A peer at 1/150 of the baseline must not read as 0.00×.
  return `${ratio.toPrecision(2)}×`
}

/** Columns of a scenario's table: the declared ones, else every figure some row carries. */
export function columnsOf(scenario: Pick<Scenario, 'columns'> | undefined, rows: readonly Row[]): Figure[] {
  if (scenario?.columns) return scenario.columns
  return FIGURE_ORDER.filter((figure) => rows.some((row) => typeof row[figure] === 'number'))
}

/** The table as cells: header first. Group headers become a leading `group` column when rows have groups. */
export function tableCells(scenario: Pick<Scenario, 'columns' | 'ratioOf'> | undefined, rows: readonly Row[]): string[][] {
  const figures = columnsOf(scenario, rows)
  const hasGroups = rows.some((row) => row.group)
  const hasRatio = rows.some((row) => row.ratio !== undefined)
  const hasNote = rows.some((row) => row.note)
  const ratioLabel = `ratio (${FIGURE_LABEL[scenario?.ratioOf ?? 'opsPerSec']})`
  const header = [...(hasGroups ? ['group'] : []), 'name', 'variant', ...figures.map((f) => FIGURE_LABEL[f]), ...(hasRatio ? [ratioLabel] : []), ...(hasNote ? ['note'] : [])]
  const body = rows.map((row) => [
    ...(hasGroups ? [row.group ?? ''] : []),
    row.name,
    row.baseline ? `${row.variant} (baseline)` : row.variant,
    ...figures.map((f) => {
      const value = row[f]
      return typeof value === 'number' ? formatNumber(value, f) : ''
    }),
    ...(hasRatio ? [row.ratio === undefined ? '' : formatRatio(row.ratio)] : []),
    ...(hasNote ? [row.note ?? ''] : []),
  ])
  return [header, ...body]
}

/** Aligned plain-text table: text columns left, numbers right. */
export function textTable(cells: string[][]): string {
  if (cells.length === 0) return ''
  const widths = cells[0]!.map((_, col) => Math.max(...cells.map((row) => [...(row[col] ?? '')].length)))
  const numeric = cells[0]!.map((_, col) => cells.slice(1).every((row) => /^[-\d.,]*( [kM])?×?$/.test(row[col] ?? '')))
  const line = (row: string[]) =>
    row
      .map((cell, col) => {
        const pad = ' '.repeat(widths[col]! - [...cell].length)
        return numeric[col] ? pad + cell : cell + pad
      })
      .join('  ')
      .trimEnd()
  const [header, ...body] = cells
  return [line(header!), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function markdownTable(cells: string[][]): string {
  if (cells.length === 0) return ''
  const escape = (cell: string) => cell.replace(/\|/g, '\\|')
  const numeric = cells[0]!.map((_, col) => cells.slice(1).every((row) => /^[-\d.,]*( [kM])?×?$/.test(row[col] ?? '')))
  const [header, ...body] = cells
  return [
    `| ${header!.map(escape).join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : ':---')).join('|')}|`,
    ...body.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n')
}
