// The candidates of the codec scenario, one export per child process. Inputs (the fixture
// values and, for decoding, their encoded bytes) are built before timing; a timed call is one
// encode plus one decode of the same value, checked once up front to round-trip.
//
// The ops/s ratio compares rows measured in different processes at different moments, which a
// loaded machine skews by ±50%. Each candidate row therefore also notes its speed against JSON
// measured in the same process, in alternating short runs (median of the per-round ratios).
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
  return [
    ...(await rowsFor(ctx, 'json', 'JSON.stringify + JSON.parse', { encode: (v) => JSON.stringify(v), decode: (s) => JSON.parse(s as string) }, { baseline: true })),
    ...(await rowsFor(ctx, 'json', 'to a Buffer and back (what goes over the wire)', {
      encode: (v) => Buffer.from(JSON.stringify(v)),
      decode: (b) => JSON.parse((b as Buffer).toString()),
    })),
  ]
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

export async function tiercache(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  // The codec's own entry point (built package), so that measuring it does not load ioredis into
  // the process. A computed specifier: typechecking from sources must not need the build.
  const entry: string = '@tiercache/redis/codec'
  const { createCodec } = (await import(entry)) as { createCodec: typeof CreateCodec }
  const codec = createCodec()
  const envelope = { expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 120_000 }
  return rowsFor(ctx, 'tiercache', 'L2 codec (envelope + record section + records + lz4 ≥ 1 KiB)', {
    encode: (value) => codec.encode({ value, ...envelope }),
    decode: (bytes) => {
      const result = codec.decode(bytes as Uint8Array)
      if (!result.ok) throw new Error(`tiercache codec: ${result.reason}`)
      return result.entry.value
    },
  })
}
