/*
 * The L2 wire format. One Redis string value per entry:
 *
 *   offset  size  field
 *   0       1     format version, 1
 *   1       1     flags: bit 0 = the body is lz4-compressed; every other bit must be 0
 *   2       8     expiresAt, float64 big-endian, epoch ms (logical expiry)
 *   10      8     graceUntil, float64 big-endian, epoch ms (stale copies servable until here)
 *   18      n     body: the msgpack of the value, or when bit 0 is set an lz4-napi block
 *                 (`compressSync`): 4-byte little-endian uncompressed size, then the lz4 block
 *
 * Encoding, step by step:
 *   1. msgpack the value (msgpackr, configuration below).
 *   2. Refuse it with ValueTooLargeError when the msgpack exceeds `maxValueBytes`.
 *   3. At or above `compressionThreshold` bytes, lz4 it and keep the result only if it is smaller.
 *   4. Write the 18-byte header, then the body.
 *
 * Decoding, step by step (bytes from Redis are untrusted: anything that fails is `corrupt`):
 *   1. At least 18 bytes, version 1, no unknown flag bits, both times are numbers.
 *   2. lz4 flag: at least 4 + 1 body bytes, and the declared size ≤ `maxValueBytes` BEFORE
 *      decompressing (lz4-napi allocates whatever the prefix says: a forged prefix would cost
 *      up to 4 GiB); after decompressing, the output is exactly the declared size.
 *   3. msgpack-decode the body; it must consume every byte.
 *
 * msgpackr configuration, measured on the task fixtures (../shared/fixtures), compact JSON 3769 B
 * (task-progress) and 4752 B (task-list-page):
 *
 *   config                          task-progress  +lz4   task-list-page  +lz4
 *   useRecords: false                    3105 B    1187 B      4082 B      836 B
 *   useRecords: true                     2046 B    1089 B      2432 B      825 B
 *   useRecords: true, bundleStrings      2139 B    1171 B      2557 B      868 B
 *
 * Records win on size (arrays of same-shaped objects write their keys once) and on speed: a
 * records round trip (pack + unpack) ran 1.3–1.6× JSON.stringify + JSON.parse on both fixtures,
 * plain maps about 1.0×. Without `structures` the record definitions are written inline in each
 * message, so the format stays self-describing and nodes share no state (shared structures would
 * be faster still, but every node would have to agree on them). Only records + lz4 meets
 * "≤ 30% of JSON" on task-progress (1089 B = 29%); lz4 costs about a third of the round trip
 * (compress ≈ 8 µs, decompress ≈ 4 µs for 2 KB, plus the allocations), which is the price of the
 * default 1 KiB threshold: raise it to trade bytes for speed. `bundleStrings` was larger (31% with
 * lz4) and not faster; `structuredClone` slower. `moreTypes` keeps Sets, typed
 * arrays and errors; maps decode as Maps, objects as objects (records), Dates as timestamps,
 * BigInts as int64 or, beyond 64 bits, as msgpackr's bigint extension. msgpackr renames an
 * `__proto__` key to `__proto_`, so decoded bytes cannot reach a prototype. Known loss: `-0`
 * comes back as `0` (msgpack integers have no sign of zero).
 */
import { compressSync, uncompressSync } from 'lz4-napi'
import { Packr } from 'msgpackr'
import type { RemoteEntry } from '@tiercache/core'
import { SerializationError, ValueTooLargeError } from './errors.js'

export const FORMAT_VERSION = 1
export const HEADER_BYTES = 18
const FLAG_LZ4 = 0b1
const KNOWN_FLAGS = FLAG_LZ4
const LZ4_SIZE_PREFIX = 4

/** Why bytes were not an entry. */
export type CorruptReason = 'short' | 'version' | 'flags' | 'envelope' | 'lz4-size' | 'lz4' | 'msgpack'

export type DecodeResult =
  | { readonly ok: true; readonly entry: RemoteEntry }
  | { readonly ok: false; readonly reason: CorruptReason; readonly error?: unknown }

export interface CodecOptions {
  /** Bodies of at least this many bytes are lz4-compressed when that makes them smaller. @default 1024 */
  readonly compressionThreshold?: number
  /** Largest value (msgpack bytes, before compression) written or accepted. @default 8 MiB */
  readonly maxValueBytes?: number
}

export interface Codec {
  readonly compressionThreshold: number
  readonly maxValueBytes: number
  /** Throws ValueTooLargeError or SerializationError; `label` names the key in the error. */
  encode(entry: RemoteEntry, label?: string): Buffer
  /** Never throws. */
  decode(bytes: Uint8Array): DecodeResult
}

export const CODEC_DEFAULTS = Object.freeze({ compressionThreshold: 1024, maxValueBytes: 8 * 1024 * 1024 })

/** Options for msgpackr; exported so benchmarks measure exactly what the store writes. */
export const PACKR_OPTIONS = Object.freeze({ useRecords: true, moreTypes: true })

export function createCodec(options: CodecOptions = {}): Codec {
  const compressionThreshold = options.compressionThreshold ?? CODEC_DEFAULTS.compressionThreshold
  const maxValueBytes = options.maxValueBytes ?? CODEC_DEFAULTS.maxValueBytes
  const packr = new Packr({ ...PACKR_OPTIONS })

  const encode = (entry: RemoteEntry, label?: string): Buffer => {
    let packed: Buffer
    try {
      packed = packr.pack(entry.value)
    } catch (error) {
      throw new SerializationError(`cannot encode the value${label ? ` of "${label}"` : ''}: ${(error as Error).message}`, { cause: error })
    }
    if (packed.length > maxValueBytes) throw new ValueTooLargeError(packed.length, maxValueBytes, label)
    let body: Buffer = packed
    let flags = 0
    if (packed.length >= compressionThreshold) {
      const compressed = compressSync(packed)
      if (compressed.length < packed.length) {
        body = compressed
        flags = FLAG_LZ4
      }
    }
    const out = Buffer.allocUnsafe(HEADER_BYTES + body.length)
    out[0] = FORMAT_VERSION
    out[1] = flags
    out.writeDoubleBE(entry.expiresAt, 2)
    out.writeDoubleBE(entry.graceUntil, 10)
    out.set(body, HEADER_BYTES)
    return out
  }

  const decode = (bytes: Uint8Array): DecodeResult => {
    if (bytes.length < HEADER_BYTES + 1) return { ok: false, reason: 'short' }
    if (bytes[0] !== FORMAT_VERSION) return { ok: false, reason: 'version' }
    const flags = bytes[1]!
    if ((flags & ~KNOWN_FLAGS) !== 0) return { ok: false, reason: 'flags' }
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    const expiresAt = buffer.readDoubleBE(2)
    const graceUntil = buffer.readDoubleBE(10)
    if (Number.isNaN(expiresAt) || Number.isNaN(graceUntil)) return { ok: false, reason: 'envelope' }
    let body: Buffer
    if ((flags & FLAG_LZ4) !== 0) {
      if (buffer.length < HEADER_BYTES + LZ4_SIZE_PREFIX + 1) return { ok: false, reason: 'short' }
      const declared = buffer.readUInt32LE(HEADER_BYTES)
      if (declared > maxValueBytes || declared === 0) return { ok: false, reason: 'lz4-size' }
      try {
        body = uncompressSync(buffer.subarray(HEADER_BYTES))
      } catch (error) {
        return { ok: false, reason: 'lz4', error }
      }
      if (body.length !== declared) return { ok: false, reason: 'lz4' }
    } else {
      body = buffer.subarray(HEADER_BYTES)
    }
    let value: unknown
    try {
      value = packr.unpack(body)
    } catch (error) {
      return { ok: false, reason: 'msgpack', error }
    }
    return { ok: true, entry: { value, expiresAt, graceUntil } }
  }

  return { compressionThreshold, maxValueBytes, encode, decode }
}
