// The candidates of the codec scenario, one export per child process. Inputs (the fixture
// values and, for decoding, their encoded bytes) are built before timing; each value is checked
// once up front to round-trip.
//
// JSON and the tiercache codec run in one process (`interleaved`), in alternating short batches,
// for round trip, decode and encode apart: rows measured in different processes at different
// moments swing by ±30% on a loaded machine, which hides a 1.2× goal. The other candidates run
// in a process of their own each; their rows note their speed against JSON measured in that
// process, the same way (median of the per-round ratios).
import { createRequire } from 'node:module'
import { isDeepStrictEqual } from 'node:util'
import { measure } from '../measure.js'
import type { ChildContext, JsonObject, Row } from '../scenario.js'
import type { createCodec as CreateCodec } from '@tiercache/redis'

type RoundTrip = { encode(value: unknown): Uint8Array | string; decode(bytes: Uint8Array | string): unknown }

function fixtures(ctx: ChildContext): [string, JsonObject][] {
  return [
    ['task-progress', ctx.fixtures.taskProgress],
    ['task-list-page', ctx.fixtures.taskListPage],
  ]
}

const microsPerCall = (fn: () => unknown, calls: number): number => {
  let sink: unknown
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) sink = fn()
  const elapsed = Number(process.hrtime.bigint() - start) / 1000 / calls
  if (sink === undefined) throw new Error('nothing decoded')
  return elapsed
}

/** Round trips of `codec` relative to JSON.stringify + JSON.parse, interleaved in this process. */
function inProcessRatio(ctx: ChildContext, codec: RoundTrip, value: unknown): number {
  const json = () => JSON.parse(JSON.stringify(value)) as unknown
  const candidate = () => codec.decode(codec.encode(value))
  const rounds = ctx.quick ? 5 : 41
  const calls = ctx.quick ? 20 : 200
  const ratios: number[] = []
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so that neither always runs on a cache the other warmed.
    const [a, b] = round % 2 === 0 ? [json, candidate] : [candidate, json]
    const first = microsPerCall(a, calls)
    const second = microsPerCall(b, calls)
    ratios.push(round % 2 === 0 ? first / second : second / first)
  }
  ratios.sort((x, y) => x - y)
  return ratios[ratios.length >> 1]!
}

async function rowsFor(ctx: ChildContext, name: string, variant: string, codec: RoundTrip, extra: Partial<Row> = {}): Promise<Row[]> {
  const rows: Row[] = []
  for (const [group, value] of fixtures(ctx)) {
    const encoded = codec.encode(value)
    if (!isDeepStrictEqual(codec.decode(encoded), value)) throw new Error(`${name} ${variant}: ${group} does not round-trip`)
    const bytes = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.length
    let sink: unknown
    const m = await measure(
      () => {
        sink = codec.decode(codec.encode(value))
      },
      { timeMs: ctx.timeMs },
    )
    if (sink === undefined) throw new Error('nothing decoded')
    const note = extra.baseline ? undefined : `${inProcessRatio(ctx, codec, value).toFixed(2)}× JSON in-process`
    rows.push({ name, variant, group, bytes, opsPerSec: m.opsPerSec, p50Us: m.p50Us, p99Us: m.p99Us, ...(note ? { note } : {}), ...extra })
  }
  return rows
}

export async function json(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  return rowsFor(ctx, 'json', 'to a Buffer and back (what goes over the wire)', {
    encode: (v) => Buffer.from(JSON.stringify(v)),
    decode: (b) => JSON.parse((b as Buffer).toString()),
  })
}

/** One measured operation of a candidate: a function and what it returns (checked not to be undefined). */
type Op = () => unknown

/**
 * Per-call µs of `ops`, in `rounds` rounds of one batch each, in turn (the first of a round
 * alternates, so that none always runs on caches another warmed). A batch lasts about `batchMs`.
 */
function interleave(ops: readonly Op[], rounds: number, batchMs: number): number[][] {
  // Warm every op (JIT, caches), then size the batches on the slowest.
  for (const op of ops) microsPerCall(op, 200)
  const slowest = Math.max(...ops.map((op) => microsPerCall(op, 200)))
  const calls = Math.max(10, Math.round((batchMs * 1000) / slowest))
  const samples = ops.map((): number[] => [])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < ops.length; k++) {
      const i = (round + k) % ops.length
      samples[i]!.push(microsPerCall(ops[i]!, calls))
    }
  }
  return samples
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!
const quantile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/**
 * JSON and the tiercache L2 codec in one process with no Redis client loaded: round trip, decode
 * and encode of each fixture, interleaved (groups `<fixture>`, `<fixture> decode`, `<fixture> encode`).
 * Figures are per-call medians over the rounds; p50/p99 are of batch means.
 */
export async function interleaved(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const codec = await tiercacheCodec()
  const rounds = ctx.quick ? 11 : 61
  const batchMs = ctx.quick ? 1 : 3
  const rows: Row[] = []
  for (const [fixture, value] of fixtures(ctx)) {
    const text = JSON.stringify(value)
    const bytes = codec.encode(value)
    if (!isDeepStrictEqual(codec.decode(bytes), value)) throw new Error(`tiercache codec: ${fixture} does not round-trip`)
    const kinds = [
      { group: fixture, what: 'encode + decode', json: () => JSON.parse(JSON.stringify(value)), tiercache: () => codec.decode(codec.encode(value)) },
      { group: `${fixture} decode`, what: 'decode', json: () => JSON.parse(text), tiercache: () => codec.decode(bytes) },
      { group: `${fixture} encode`, what: 'encode', json: () => JSON.stringify(value), tiercache: () => codec.encode(value) },
    ]
    for (const kind of kinds) {
      const [jsonUs, codecUs] = interleave([kind.json, kind.tiercache], rounds, batchMs) as [number[], number[]]
      const ratios = jsonUs.map((us, i) => us / codecUs[i]!)
      const figures = (us: number[]) => ({ opsPerSec: 1e6 / median(us), p50Us: median(us), p99Us: quantile(us, 0.99) })
      rows.push({
        name: 'json',
        variant: `JSON.${kind.what === 'decode' ? 'parse' : kind.what === 'encode' ? 'stringify' : 'stringify + JSON.parse'}`,
        group: kind.group,
        baseline: true,
        ...figures(jsonUs),
        ...(kind.what === 'decode' ? {} : { bytes: Buffer.byteLength(text) }),
        note: `${rounds} rounds interleaved with the tiercache codec in one process`,
      })
      rows.push({
        name: 'tiercache',
        variant: `L2 codec ${kind.what}`,
        group: kind.group,
        ...figures(codecUs),
        ...(kind.what === 'decode' ? {} : { bytes: bytes.length }),
        note: `${median(ratios).toFixed(2)}× JSON (median of ${rounds} interleaved rounds; IQR ${quantile(ratios, 0.25).toFixed(2)}–${quantile(ratios, 0.75).toFixed(2)}×)`,
      })
    }
  }
  return rows
}

interface PackrLike {
  pack(value: unknown): Buffer
  unpack(bytes: Buffer): unknown
}

interface CodecLibraries {
  Packr: new (options: object) => PackrLike
  compressSync(data: Buffer): Buffer
  uncompressSync(data: Buffer): Buffer
}

/** msgpackr and lz4-napi exactly as @tiercache/redis resolves them: the copies its codec runs on. */
function codecLibraries(): CodecLibraries {
  const require = createRequire(new URL('../../../packages/redis/package.json', import.meta.url))
  return { ...(require('msgpackr') as Pick<CodecLibraries, 'Packr'>), ...(require('lz4-napi') as Omit<CodecLibraries, 'Packr'>) }
}

export async function msgpackr(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const { Packr, compressSync, uncompressSync } = codecLibraries()
  const plain = new Packr({ useRecords: false })
  const records = new Packr({ useRecords: true, moreTypes: true })
  return [
    ...(await rowsFor(ctx, 'msgpackr', 'useRecords: false', { encode: (v) => plain.pack(v), decode: (b) => plain.unpack(b as Buffer) })),
    ...(await rowsFor(ctx, 'msgpackr', 'useRecords: false + lz4', {
      encode: (v) => compressSync(plain.pack(v)),
      decode: (b) => plain.unpack(uncompressSync(b as Buffer)),
    })),
    ...(await rowsFor(ctx, 'msgpackr', 'records, moreTypes', { encode: (v) => records.pack(v), decode: (b) => records.unpack(b as Buffer) })),
    ...(await rowsFor(ctx, 'msgpackr', 'records, moreTypes + lz4', {
      encode: (v) => compressSync(records.pack(v)),
      decode: (b) => records.unpack(uncompressSync(b as Buffer)),
    })),
  ]
}

/** The tiercache L2 codec on the fixture values, in a fixed envelope: `encode(value)`, `decode(bytes)` → value. */
async function tiercacheCodec(): Promise<{ encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown }> {
  // The codec's own entry point (built package), so that measuring it does not load ioredis into
  // the process. A computed specifier: typechecking from sources must not need the build.
  const entry: string = '@tiercache/redis/codec'
  const { createCodec } = (await import(entry)) as { createCodec: typeof CreateCodec }
  const codec = createCodec()
  const envelope = { expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 120_000 }
  return {
    encode: (value) => codec.encode({ value, ...envelope }),
    decode: (bytes) => {
      const result = codec.decode(bytes)
      if (!result.ok) throw new Error(`tiercache codec: ${result.reason}`)
      return result.entry.value
    },
  }
}
