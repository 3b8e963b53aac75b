import type { Figure, Row } from './scenario.js'

const keyOf = (row: Row): string => row.ratioKey ?? row.group ?? ''

/** Sets `ratio` on every row that has the figure and whose group has a baseline with it. */
export function applyRatios(rows: Row[], ratioOf: Figure): Row[] {
  const baselines = new Map<string, number>()
  for (const row of rows) {
    const value = row[ratioOf]
    if (row.baseline && typeof value === 'number' && value !== 0) baselines.set(keyOf(row), value)
  }
  return rows.map((row) => {
    const base = baselines.get(keyOf(row))
    const value = row[ratioOf]
    if (base === undefined || typeof value !== 'number') return row
    return { ...row, ratio: value / base }
  })
}
