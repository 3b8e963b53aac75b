// What a fleet of 10, 100 and 1,000 processes costs Redis, from the `scale` rows of a run
// (results/latest.json) and a read/write mix: `pnpm scaling [--reads N] [--writes N] [--l1-hit P]
// [--l2-hit P] [--value-bytes N] [--file results/latest.json]`. docs/scaling.md explains the model.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Row } from './scenario.js'

/** What each process does, per second. */
export interface Mix {
  /** Reads per process per second. */
  reads: number
  /** Writes (set, delete, invalidate: one bus message each) per process per second. */
  writes: number
  /** Share of reads L1 answers (0..1). */
  l1Hit: number
  /** Share of L1 misses Redis answers (0..1); the rest load from the database. */
  l2Hit: number
  /** Encoded bytes of one value in Redis (the codec's, not JSON's). */
  valueBytes: number
}

/** The measured figures the model takes from a run. */
export interface Measured {
  /** Idle messages each node's subscriber connection receives per second (its own heartbeats). */
  idleMessagesPerNode: number
  /** At how many processes that was measured. */
  atProcesses: number
  /** L2 hits per second one client process drove a single Redis node to (64 in flight). */
  l2HitsPerSecOneNode: number | undefined
  /** The same on the 3-master cluster. */
  l2HitsPerSecCluster: number | undefined
}

export interface FleetCost {
  processes: number
  /** Commands Redis executes per second. */
  commandsPerSec: number
  /** Pub/sub messages Redis delivers per second (heartbeats and invalidations). */
  deliveriesPerSec: number
  /** Bytes Redis sends per second: values read, messages delivered. */
  bytesOutPerSec: number
  /** Bytes Redis receives per second: values written, messages published. */
  bytesInPerSec: number
}

// Sizes on the wire, measured on the bus's encoder with a 16-character instance id and a
// task-shaped key; RESP framing of a delivered message (`message`, channel, payload) included.
const HEARTBEAT_BYTES = 45 + 60
const INVALIDATION_BYTES = 85 + 50
/** A GET or SET of one key: the command and the key, without the value. */
const COMMAND_BYTES = 60
/** The data connection's stall probe: one PING a second (`stallProbeInterval`). */
const PINGS_PER_SEC = 1

/** Reads the figures the model needs from a run's rows; throws when the run has no `scale` rows. */
export function measuredOf(rows: readonly Row[]): Measured {
  const fleets = rows.filter((row) => row.group === 'processes' && row.busMessagesPerNodePerSec !== undefined && row.processes !== undefined)
  if (fleets.length === 0) throw new Error('no scale rows with busMessagesPerNodePerSec: run `pnpm bench --only scale` first')
  const largest = fleets.reduce((a, b) => (b.processes! > a.processes! ? b : a))
  const cluster = rows.filter((row) => row.group === 'cluster' && row.opsPerSec !== undefined)
  return {
    idleMessagesPerNode: largest.busMessagesPerNodePerSec!,
    atProcesses: largest.processes!,
    l2HitsPerSecOneNode: cluster.find((row) => row.masters === 1)?.opsPerSec,
    l2HitsPerSecCluster: cluster.find((row) => (row.masters ?? 0) > 1)?.opsPerSec,
  }
}

/**
 * The model. Per process and second: L1 misses are one GET each; misses of Redis too are a lease
 * (SET NX) and the value's SET; a write is one command and one PUBLISH, which Redis delivers to
 * every process (the writer's own included: it drops it by its source). Heartbeats are the idle
 * rate measured per node, each one published and delivered once. Deliveries of invalidations grow
 * with N²; everything else with N.
 */
export function fleetCost(processes: number, mix: Mix, measured: Measured): FleetCost {
  const misses = mix.reads * (1 - mix.l1Hit)
  const loads = misses * (1 - mix.l2Hit)
  const heartbeats = measured.idleMessagesPerNode
  const perProcessCommands = misses + 2 * loads + 2 * mix.writes + heartbeats + PINGS_PER_SEC
  const deliveries = processes * heartbeats + processes * mix.writes * processes
  const bytesOut = processes * (misses * (mix.valueBytes + COMMAND_BYTES)) + processes * heartbeats * HEARTBEAT_BYTES + processes * mix.writes * processes * INVALIDATION_BYTES
  const bytesIn = processes * (perProcessCommands * COMMAND_BYTES + (loads + mix.writes) * mix.valueBytes)
  return { processes, commandsPerSec: processes * perProcessCommands, deliveriesPerSec: deliveries, bytesOutPerSec: bytesOut, bytesInPerSec: bytesIn }
}

const si = (value: number): string => {
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)} G`
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)} M`
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k`
  return value.toFixed(0)
}

/** The markdown table of docs/scaling.md for these fleet sizes. */
export function scalingTable(mix: Mix, measured: Measured, fleets: readonly number[] = [10, 100, 1_000]): string {
  const lines = [
    `Mix per process: ${mix.reads} reads/s (L1 hit ${(mix.l1Hit * 100).toFixed(0)} %, Redis hit ${(mix.l2Hit * 100).toFixed(0)} % of the rest), ${mix.writes} writes/s, ${mix.valueBytes} B per value; idle bus ${measured.idleMessagesPerNode.toFixed(1)} messages/s per node (measured at ${measured.atProcesses} processes).`,
    '',
    '| processes | Redis commands/s | pub/sub deliveries/s | Redis out | Redis in |',
    '|---:|---:|---:|---:|---:|',
  ]
  for (const n of fleets) {
    const cost = fleetCost(n, mix, measured)
    lines.push(`| ${n.toLocaleString('en-US')} | ${si(cost.commandsPerSec)} | ${si(cost.deliveriesPerSec)} | ${si(cost.bytesOutPerSec)}B/s | ${si(cost.bytesInPerSec)}B/s |`)
  }
  if (measured.l2HitsPerSecOneNode !== undefined) {
    lines.push('', `Measured in the same run: one client process drove a single Redis to ${si(measured.l2HitsPerSecOneNode)} L2 hits/s (64 in flight)${measured.l2HitsPerSecCluster === undefined ? '' : `, a 3-master cluster to ${si(measured.l2HitsPerSecCluster)}/s`}.`)
  }
  return lines.join('\n')
}

export const DEFAULT_MIX: Mix = { reads: 1_000, writes: 10, l1Hit: 0.9, l2Hit: 0.95, valueBytes: 120 }

/**
 * The mix and the results file from the command line. A relative `--file` is taken from `cwd`,
 * where the command was typed (pnpm runs the script in benchmarks/ and says where it was invoked
 * in INIT_CWD); the literal `--` that pnpm forwards is skipped.
 */
export function parseArgs(argv: readonly string[], cwd: string = process.env.INIT_CWD ?? process.cwd()): { mix: Mix; file: string } {
  const mix = { ...DEFAULT_MIX }
  let file = join(fileURLToPath(new URL('..', import.meta.url)), 'results', 'latest.json')
  const flags: Record<string, keyof Mix> = { '--reads': 'reads', '--writes': 'writes', '--l1-hit': 'l1Hit', '--l2-hit': 'l2Hit', '--value-bytes': 'valueBytes' }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    if (flag === '--') continue
    const value = argv[++i]
    if (flag === '--file') {
      if (value === undefined || value === '') throw new Error('--file: expected a path (got nothing)')
      file = resolve(cwd, value)
      continue
    }
    const field = flags[flag]
    const number = Number(value)
    if (field === undefined) throw new Error(`unknown option ${flag}: expected ${[...Object.keys(flags), '--file'].join(', ')}`)
    if (value === undefined || !Number.isFinite(number) || number < 0) throw new Error(`${flag}: expected a number ≥ 0 (got ${value ?? 'nothing'})`)
    if ((field === 'l1Hit' || field === 'l2Hit') && number > 1) throw new Error(`${flag}: expected a share between 0 and 1 (got ${value})`)
    mix[field] = number
  }
  return { mix, file }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const { mix, file } = parseArgs(process.argv.slice(2))
    const results = JSON.parse(readFileSync(file, 'utf8')) as { scenarios?: Record<string, { rows?: Row[] }> }
    const rows = results.scenarios?.scale?.rows ?? []
    console.log(scalingTable(mix, measuredOf(rows)))
  } catch (error) {
    console.error(`scaling: ${(error as Error).message}`)
    process.exitCode = 1
  }
}
