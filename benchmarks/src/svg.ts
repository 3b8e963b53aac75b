// Hand-written SVG bar charts (no chart library): horizontal bars, one line per row, readable
// on GitHub. Wide ranges (an L1 hit next to a Redis round trip) use a log scale.
import { formatNumber, formatRatio } from './format.js'

export interface Bar {
  label: string
  /** One value per series; undefined leaves a gap. */
  values: (number | undefined)[]
}

export interface BarChart {
  title: string
  series: string[]
  bars: Bar[]
  format: (value: number) => string
  /** Draws a reference line (1× for ratios). */
  reference?: number
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759']
const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

export function barChartSvg(chart: BarChart): string {
  const values = chart.bars.flatMap((bar) => bar.values).filter((v): v is number => typeof v === 'number' && v > 0)
  // ≈6.6 px per character at 12 px; longer labels are cut with an ellipsis rather than clipped.
  const labelWidth = Math.min(560, 12 + 6.6 * Math.max(10, ...chart.bars.map((bar) => bar.label.length)))
  const maxChars = Math.floor((labelWidth - 12) / 6.6)
  const fit = (label: string) => (label.length <= maxChars ? label : `${label.slice(0, maxChars - 1)}…`)
  const plotWidth = 440
  const valueWidth = 90
  const barHeight = 14
  const rowGap = 8
  const top = 44
  const rowHeight = chart.series.length * barHeight + rowGap
  const height = top + chart.bars.length * rowHeight + 16
  const width = labelWidth + plotWidth + valueWidth
  const max = Math.max(...values, chart.reference ?? 0, 1e-12)
  const min = Math.min(...values, chart.reference ?? Infinity)
  const log = values.length > 0 && max / Math.max(min, 1e-12) > 30
  const lo = log ? Math.pow(10, Math.floor(Math.log10(Math.max(min, 1e-12)))) : 0
  const scale = (v: number) =>
    log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(max) - Math.log10(lo) || 1) : v / max
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system,Segoe UI,Helvetica,Arial,sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="8" y="18" font-size="14" font-weight="600">${escapeXml(chart.title)}${log ? ' (log scale)' : ''}</text>`,
  ]
  chart.series.forEach((name, i) => {
    const x = labelWidth + i * 130
    parts.push(`<rect x="${x}" y="26" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`, `<text x="${x + 14}" y="35">${escapeXml(name)}</text>`)
  })
  chart.bars.forEach((bar, row) => {
    const y = top + row * rowHeight
    parts.push(`<text x="${labelWidth - 6}" y="${y + (chart.series.length * barHeight) / 2 + 4}" text-anchor="end">${escapeXml(fit(bar.label))}</text>`)
    bar.values.forEach((value, i) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) return
      const w = Math.max(1, scale(value) * plotWidth)
      const by = y + i * barHeight
      parts.push(
        `<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${barHeight - 2}" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${by + barHeight - 4}">${escapeXml(chart.format(value))}</text>`,
      )
    })
  })
  if (chart.reference !== undefined) {
    const x = labelWidth + scale(chart.reference) * plotWidth
    parts.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${height - 12}" stroke="#333" stroke-dasharray="4 3"/>`)
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

export const ratioFormat = (v: number) => formatRatio(v)
export const microsFormat = (v: number) => `${formatNumber(v)} µs`
