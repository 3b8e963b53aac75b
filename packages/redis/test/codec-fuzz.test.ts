import fc from 'fast-check'
import { compressSync } from 'lz4-napi'
import { Packr } from 'msgpackr'
import { describe, expect, it, vi } from 'vitest'
import { taskFixture } from '@tiercache/testkit'
import { createCodec, HEADER_BYTES } from '../src/codec.js'
import type * as Lz4 from 'lz4-napi'

// Every size the decoder hands to lz4 is recorded: the fuzz run proves that no declared size
// above maxValueBytes ever reaches the decompressor (lz4-napi allocates what the prefix says).
const declaredSizes: number[] = []
vi.mock('lz4-napi', async (importOriginal) => {
  const original = await importOriginal<typeof Lz4>()
  return {
    ...original,
    uncompressSync(data: Buffer) {
      declaredSizes.push(data.length >= 4 ? data.readUInt32LE(0) : -1)
      return original.uncompressSync(data)
    },
  }
})

const MAX_VALUE_BYTES = 64 * 1024
const codec = createCodec({ maxValueBytes: MAX_VALUE_BYTES, compressionThreshold: 64 })

const seeds = [
  taskFixture('task-progress') as unknown,
  taskFixture('task-list-page') as unknown,
  { at: new Date(0), map: new Map([[1, 'a']]), set: new Set([1]), big: 2n ** 70n, bytes: new Uint8Array(300).fill(7) },
  'short',
].map((value) => codec.encode({ value, expiresAt: 1, graceUntil: 2 }))
// Expired by expire() (flags bit 1), with lz4 and tags.
seeds.push(codec.encode({ value: taskFixture('task-progress'), expiresAt: 1, graceUntil: 2, tags: ['t'], tagVersion: 1, expired: true }))

// Version-1 entries (records defined inline, no section), which readers still decode.
const v1 = (body: Uint8Array, flags: number): Buffer => {
  const header = Buffer.alloc(HEADER_BYTES)
  header[0] = 1
  header[1] = flags
  return Buffer.concat([header, body])
}
const v1Packed = new Packr({ useRecords: true, moreTypes: true }).pack(
  taskFixture('task-list-page'),
)
seeds.push(v1(v1Packed, 0), v1(compressSync(Buffer.from(v1Packed)), 1))

const mutation = fc.record({
  seed: fc.integer({ min: 0, max: seeds.length - 1 }),
  edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
  cut: fc.option(fc.nat()),
  forgedSize: fc.option(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(0xffffffff), fc.constant(MAX_VALUE_BYTES + 1))),
})

interface Mutation {
  seed: number
  edits: [number, number][]
  cut: number | null
  forgedSize: number | null
}

function mutate({ seed, edits, cut, forgedSize }: Mutation): Buffer {
  let bytes = Buffer.from(seeds[seed]!)
  for (const [at, value] of edits) bytes[at % bytes.length] = value
  if (forgedSize !== null && bytes.length >= HEADER_BYTES + 4) {
    bytes[1] = 1
    bytes.writeUInt32LE(forgedSize, HEADER_BYTES)
  }
  if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1))
  return bytes
}

describe('codec fuzz', () => {
  it('decodes 10,000 random and mutated byte strings without throwing or over-allocating', () => {
    const before = process.memoryUsage().arrayBuffers
    let corrupt = 0
    const check = (bytes: Uint8Array) => {
      const result = codec.decode(bytes)
      if (!result.ok) corrupt += 1
    }
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      check(bytes)
    }), { numRuns: 4000 })
    fc.assert(fc.property(mutation, (m) => {
      check(mutate(m))
    }), { numRuns: 6000 })
    expect(corrupt).toBeGreaterThan(0)
    for (const seed of seeds) expect(codec.decode(seed).ok).toBe(true)
    expect(declaredSizes.length).toBeGreaterThan(0)
    expect(Math.max(...declaredSizes)).toBeLessThanOrEqual(MAX_VALUE_BYTES)
    // A forged prefix that reached lz4 would allocate up to 4 GiB.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(256 * 1024 * 1024)
  })
})
