/*
 * The L2 wire format. One Redis string value per entry:
 *
 *   offset  size  field
 *   0       1     format version: 2, or 3 for an entry with tags (1 is still read, see below)
 *   1       1     flags: bit 0 = the body is lz4-compressed; bit 1 = expired early by
 *                 `expire()` (served within its grace while one reload runs); every other bit
 *                 must be 0
 *   2       8     expiresAt, float64 big-endian, epoch ms (logical expiry)
 *   10      8     graceUntil, float64 big-endian, epoch ms (stale copies servable until here)
 *   18      t     version 3 only: the tag section (below); t = 0 in version 2
 *   18 + t  n     body, or when bit 0 is set an lz4-napi block of the body (`compressSync`):
 *                 4-byte little-endian uncompressed size, then the lz4 block
 *
 *   tags    size  field (version 3)
 *   0       8     tagVersion, float64 big-endian: the tag sequence the writer knew (a safe
 *                 non-negative integer)
 *   8       2     count, uint16 big-endian, 1–64
 *   10      …     per tag: uint16 big-endian byte length (1–1024), then the tag's UTF-8 bytes
 *
 * A tagged entry costs 8 + 2 + Σ (2 + UTF-8 length) bytes more than untagged; an untagged entry
 * is version 2, byte for byte what it was. The tag section is never compressed: a reader checks
 * the tags without touching the body.
 *
 * Rolling upgrade to version 3: a reader that knows only version 2 takes a version-3 entry for
 * corrupt (a miss: deleted and reloaded, and the reload writes it back as version 3 when its
 * writer tags it). So deploy the version that reads version 3 to every process first, then start
 * tagging.
 *
 * The expired bit is set in place by the store's SOFT_EXPIRE script (SETRANGE of bytes 1–9: flags
 * and expiresAt), so an entry keeps its version, tags, body and TTL; a write of a new value clears
 * it. Entries never expired are byte for byte what they were. Rolling upgrade: a reader that does
 * not know the bit takes such an entry for corrupt (reason `flags`: a miss, deleted and reloaded,
 * so the soft invalidation becomes a hard one there). So, as for version 3, deploy the version
 * that reads the bit to every process first, then call `expire()`.
 *
 *   body    size  field
 *   0       4     S, little-endian: length of the record section (0 when the value has no records)
 *   4       S     record section: msgpack array of key arrays; entry i is record id 0x40 + i
 *   4 + S   m     msgpack of the value, its objects written as records referring to those ids
 *                 (msgpackr, configuration below; shapes beyond 32 are defined inline)
 *
 * Version 1, still decoded: the body is the msgpack of the value alone, records defined inline.
 * A reader that knows only version 1 takes a version-2 entry for corrupt (a miss; the entry is
 * deleted and reloaded): during a rolling upgrade, old and new nodes reload each other's writes.
 *
 * Encoding, step by step:
 *   1. msgpack the value with an empty shared-structure list, so that every record shape of this
 *      value (and only of this value) is listed in the section; write the list as msgpack.
 *   2. Refuse it with ValueTooLargeError when the body (4 + S + m) exceeds `maxValueBytes`.
 *   3. At or above `compressionThreshold` bytes, lz4 the body and keep the result only if smaller.
 *   4. Write the 18-byte header, then the body.
 *
 * Decoding, step by step (bytes from Redis are untrusted: anything that fails is `corrupt`):
 *   1. At least 18 bytes, version 1, 2 or 3, no unknown flag bits, both times are numbers;
 *      version 3: a whole tag section within the bounds above (else `tags`).
 *   2. lz4 flag: at least 4 + 1 body bytes, and the declared size ≤ `maxValueBytes` BEFORE
 *      decompressing (lz4-napi allocates whatever the prefix says: a forged prefix would cost
 *      up to 4 GiB); after decompressing, the output is exactly the declared size.
 *   3. Version 2: S leaves at least one value byte; the section is a list of 1–32 lists of
 *      strings (else `section`). Its decoder (a msgpackr Unpackr holding those structures) is
 *      looked up by the section's bytes, built on a miss; a codec keeps 256 of them.
 *   4. msgpack-decode the value; it must consume every byte.
 *
 * Why the section. A self-describing msgpackr message defines its records inline, and decoding
 * one builds fresh record readers every time (msgpackr compiles a reader per record shape after
 * three objects — then discards it with the message). Naming the shapes up front, in bytes that
 * are identical for every value of the same shapes, lets a reader keep the decoder, and its
 * compiled readers, per section: decoding runs 1.4–2.1× faster than version 1, with the same
 * bytes (the keys move from the body to the section). Nodes still share no state: every value
 * carries its section, and a node that never saw it decodes it from scratch. The cached
 * structures are marked shared, so msgpackr restores them when a message redefines one of their
 * ids inline: untrusted bytes cannot change how later values decode.
 *
 * Measured on the task fixtures of `@tiercache/testkit`, compact JSON 3769 B (task-progress) and
 * 4752 B (task-list-page), by the `codec` benchmark: JSON and this codec interleaved in one
 * process (no Redis client loaded), 61 rounds of short batches, median of the per-round ratios,
 * on a shared 2-core machine. Speed is against JSON.stringify + JSON.parse of the same value
 * (decode: JSON.parse of its text; encode: JSON.stringify):
 *
 *                          task-progress    task-list-page
 *   bytes                  1094 B (29%)     818 B (17%)
 *   round trip             0.95×            0.94×
 *   decode                 1.76×            2.08×
 *   encode                 0.75×            0.56×
 *
 * Version 1 (inline records + lz4), measured the same way then: round trip 0.78–0.88× and
 * 0.69–0.80×, decode 1.00–1.20× and 0.98–1.07× (the section's cached decoders make the difference).
 * A small value (task-status, 235 B JSON, under the threshold) is 1 byte longer (224 B); its
 * decode goes from 0.49× to 0.71× JSON.parse, its round trip from 0.55–0.57× to 0.51–0.53×
 * (encoding pays for the shared-structure bookkeeping and the section).
 *
 * Bytes meet "≤ 30% of JSON"; decoding, which every process that misses L1 pays, is 1.8–2.1× JSON;
 * "encode+decode ≥ 1.2× JSON" is not met, and no msgpackr + lz4 configuration measured meets it.
 * What bounds it is the encode. In units of one JSON round trip (its two halves about 0.50 each),
 * each step timed alone, interleaved in one process:
 *
 *                                    task-progress    task-list-page
 *   msgpackr pack, records           0.40             0.79
 *   msgpackr pack, no records        0.43             0.61
 *   lz4-napi compress                0.16             0.13
 *   encode, all of it                0.60             0.82
 *   decode, all of it                0.28             0.28
 *
 * 1.2× leaves 0.83 for both halves; with decode at 0.28, encode would have 0.55: about what
 * JSON.stringify takes alone, of which the compression (needed for the bytes: without lz4 the
 * records are 54% of JSON) takes a quarter. On task-list-page msgpackr's pack alone is over it,
 * records or not: JSON.stringify's native string writer beats msgpackr's JS one on string-heavy
 * objects. Reaching 1.2× would take a packer faster than JSON.stringify, in JavaScript, on
 * strings. lz4-napi's cost is mostly the N-API call and its buffer (≈ 3 µs to compress and 2 µs
 * to decompress, even for 40 bytes). Measured and rejected:
 *   - raising the threshold: without lz4 the records are 54% of JSON;
 *   - lz4 in TypeScript (block format, byte-compatible with lz4-napi, 2% smaller): 2× slower than
 *     lz4-napi in both directions despite skipping the N-API call;
 *   - `compressFrameSync`: 1.6× slower than `compressSync`; async variants slower still;
 *   - `bundleStrings`: larger (31% with lz4), not faster; `useRecords: false`: 31% with lz4;
 *   - `sequential`: later messages refer to records of earlier ones — not self-describing;
 *   - shared structures kept across values (msgpackr's `structures`): pack only ≈ 12% faster, and
 *     every value would carry every shape the process has seen;
 *   - `variableMapSize` applies to maps, not records: same bytes, no gain.
 *
 * msgpackr: `moreTypes` keeps Sets, typed arrays and errors; maps decode as Maps, objects as
 * objects (records), Dates as timestamps, BigInts as int64 or, beyond 64 bits, as msgpackr's
 * bigint extension. msgpackr renames an `__proto__` key to `__proto_` (also in compiled record
 * readers), so decoded bytes cannot reach a prototype. Known loss: `-0` comes back as `0`
 * (msgpack integers have no sign of zero).
 */
import { compressSync, uncompressSync } from 'lz4-napi'
import { Packr, Unpackr } from 'msgpackr'
import type { RemoteEntry } from '@tiercache/core'
import { SerializationError, ValueTooLargeError } from './errors.js'

export const FORMAT_VERSION = 2
/** Entries with tags: version 2 with a tag section after the header. */
export const FORMAT_VERSION_TAGGED = 3
/** Bounds of the tag section: a forged count or length must not make a reader allocate or loop. */
export const MAX_ENTRY_TAGS = 64
export const MAX_TAG_BYTES = 1024
const TAG_HEAD_BYTES = 10
/** Version 1 bodies are the msgpack of the value alone, with inline record definitions; still read. */
const FORMAT_VERSION_1 = 1
export const HEADER_BYTES = 18
/** Every version `decode` reads: what the store's scripts may rewrite in place. */
export const READ_VERSIONS: readonly number[] = Object.freeze([FORMAT_VERSION_1, FORMAT_VERSION, FORMAT_VERSION_TAGGED])
const SECTION_LENGTH_BYTES = 4
/** msgpackr's limit on shared record ids (0x40–0x5f); a section naming more is corrupt. */
const MAX_SECTION_STRUCTURES = 32
/** Record sections whose decoders (and their compiled record readers) a codec keeps. */
const SECTION_CACHE_ENTRIES = 256
const FLAG_LZ4 = 0b1
/** Also set in place by the store's SOFT_EXPIRE script (scripts.ts), which is given this value. */
export const FLAG_EXPIRED = 0b10
const KNOWN_FLAGS = FLAG_LZ4 | FLAG_EXPIRED
const LZ4_SIZE_PREFIX = 4

/** Why bytes were not an entry. */
export type CorruptReason = 'short' | 'version' | 'flags' | 'envelope' | 'tags' | 'lz4-size' | 'lz4' | 'section' | 'msgpack'

export type DecodeResult =
  | { readonly ok: true; readonly entry: RemoteEntry }
  | { readonly ok: false; readonly reason: CorruptReason; readonly error?: unknown }

export interface CodecOptions {
  /** Bodies of at least this many bytes are lz4-compressed when that makes them smaller. @default 1024 */
  readonly compressionThreshold?: number
  /** Largest value (msgpack bytes, before compression) written or accepted. @default 8 MiB */
  readonly maxValueBytes?: number
  /**
   * Decode values deep-frozen (msgpackr `freezeData`: each object and array is frozen as it is
   * built), for an engine whose L1 freezes them anyway: no second walk over the value. @default false
   */
  readonly freeze?: boolean
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

// Version-2 bodies are assembled here before lz4 reads them; larger ones get a buffer of their own.
const SCRATCH_BYTES = 64 * 1024
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)

const isStructureList = (value: unknown): value is string[][] =>
  Array.isArray(value) &&
  value.length > 0 &&
  value.length <= MAX_SECTION_STRUCTURES &&
  value.every((keys) => Array.isArray(keys) && keys.every((key) => typeof key === 'string'))

// The section is msgpack (an array of arrays of strings), written here directly into the body:
// msgpackr's general-purpose pack of the same list costs ≈ 1.5 µs for a six-key section, this
// ≈ 0.5 µs (record keys are short and mostly ASCII: copied char by char, no native call).
const arrayHeaderBytes = (length: number): number => (length < 16 ? 1 : length < 0x1_0000 ? 3 : 5)
const stringHeaderBytes = (bytes: number): number => (bytes < 32 ? 1 : bytes < 0x100 ? 2 : bytes < 0x1_0000 ? 3 : 5)

/** UTF-8 length as Buffer#write counts it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Bytes(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    if (code < 0x800) bytes += 1
    else if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2
      i++
    } else bytes += 2
  }
  return bytes
}

function sectionBytes(structures: readonly (readonly string[])[]): number {
  let size = arrayHeaderBytes(structures.length)
  for (const keys of structures) {
    size += arrayHeaderBytes(keys.length)
    for (const key of keys) {
      const bytes = utf8Bytes(key)
      size += stringHeaderBytes(bytes) + bytes
    }
  }
  return size
}

function writeArrayHeader(target: Buffer, at: number, length: number): number {
  if (length < 16) {
    target[at] = 0x90 | length
    return at + 1
  }
  if (length < 0x1_0000) {
    target[at] = 0xdc
    target.writeUInt16BE(length, at + 1)
    return at + 3
  }
  target[at] = 0xdd
  target.writeUInt32BE(length, at + 1)
  return at + 5
}

function writeSection(target: Buffer, at: number, structures: readonly (readonly string[])[]): void {
  at = writeArrayHeader(target, at, structures.length)
  for (const keys of structures) {
    at = writeArrayHeader(target, at, keys.length)
    for (const key of keys) {
      const bytes = utf8Bytes(key)
      if (bytes < 32) {
        target[at++] = 0xa0 | bytes
      } else if (bytes < 0x100) {
        target[at++] = 0xd9
        target[at++] = bytes
      } else if (bytes < 0x1_0000) {
        target[at] = 0xda
        target.writeUInt16BE(bytes, at + 1)
        at += 3
      } else {
        target[at] = 0xdb
        target.writeUInt32BE(bytes, at + 1)
        at += 5
      }
      if (bytes === key.length) {
        for (let i = 0; i < bytes; i++) target[at + i] = key.charCodeAt(i)
        at += bytes
      } else {
        at += target.write(key, at)
      }
    }
  }
}

/** Bytes of the tag section of `tags`; SerializationError past its bounds. */
function tagSectionBytes(tags: readonly string[], label: string | undefined): number {
  if (tags.length === 0 || tags.length > MAX_ENTRY_TAGS) {
    throw new SerializationError(`cannot encode the tags${label ? ` of "${label}"` : ''}: expected 1–${MAX_ENTRY_TAGS} tags (got ${tags.length})`)
  }
  let size = TAG_HEAD_BYTES
  for (const tag of tags) {
    const bytes = utf8Bytes(tag)
    if (bytes === 0 || bytes > MAX_TAG_BYTES) {
      throw new SerializationError(`cannot encode the tags${label ? ` of "${label}"` : ''}: a tag must be 1–${MAX_TAG_BYTES} UTF-8 bytes (got ${bytes})`)
    }
    size += 2 + bytes
  }
  return size
}

function writeTagSection(target: Buffer, at: number, tags: readonly string[], tagVersion: number): void {
  target.writeDoubleBE(tagVersion, at)
  target.writeUInt16BE(tags.length, at + 8)
  at += TAG_HEAD_BYTES
  for (const tag of tags) {
    const written = target.write(tag, at + 2, 'utf8')
    target.writeUInt16BE(written, at)
    at += 2 + written
  }
}

interface TagSection {
  readonly tags: readonly string[]
  readonly tagVersion: number
  /** Where the body starts. */
  readonly end: number
}

/** The tag section at `at`, or `undefined` when it is not a whole, well-formed one. */
function readTagSection(buffer: Buffer, at: number): TagSection | undefined {
  if (buffer.length < at + TAG_HEAD_BYTES) return undefined
  const tagVersion = buffer.readDoubleBE(at)
  if (!Number.isSafeInteger(tagVersion) || tagVersion < 0) return undefined
  const count = buffer.readUInt16BE(at + 8)
  if (count === 0 || count > MAX_ENTRY_TAGS) return undefined
  at += TAG_HEAD_BYTES
  const tags: string[] = new Array(count)
  for (let i = 0; i < count; i++) {
    if (buffer.length < at + 2) return undefined
    const length = buffer.readUInt16BE(at)
    if (length === 0 || length > MAX_TAG_BYTES || buffer.length < at + 2 + length) return undefined
    tags[i] = buffer.toString('utf8', at + 2, at + 2 + length)
    at += 2 + length
  }
  return { tags: Object.freeze(tags), tagVersion, end: at }
}

export function createCodec(options: CodecOptions = {}): Codec {
  const compressionThreshold = options.compressionThreshold ?? CODEC_DEFAULTS.compressionThreshold
  const maxValueBytes = options.maxValueBytes ?? CODEC_DEFAULTS.maxValueBytes
  // Every record shape of a value becomes a shared structure of that value alone: `structures` is
  // emptied before each pack, and the list msgpackr fills is written as the record section.
  const valuePackr: Packr & { structures: string[][] } = Object.assign(new Packr({ ...PACKR_OPTIONS, structures: [], saveStructures: () => true }), { structures: [] })
  const unpackrOptions = options.freeze === true ? { ...PACKR_OPTIONS, freezeData: true } : { ...PACKR_OPTIONS }
  const plainUnpackr = new Unpackr(unpackrOptions)
  const sectionUnpackr = new Unpackr({ useRecords: false })
  const sectionDecoders = new Map<string, Unpackr>()

  const encode = (entry: RemoteEntry, label?: string): Buffer => {
    let value: Uint8Array
    try {
      valuePackr.structures = []
      value = valuePackr.pack(entry.value)
    } catch (error) {
      throw new SerializationError(`cannot encode the value${label ? ` of "${label}"` : ''}: ${(error as Error).message}`, { cause: error })
    }
    const structures = valuePackr.structures
    const sectionLength = structures.length > 0 ? sectionBytes(structures) : 0
    const size = SECTION_LENGTH_BYTES + sectionLength + value.length
    if (size > maxValueBytes) throw new ValueTooLargeError(size, maxValueBytes, label)
    const writeBody = (target: Buffer, at: number): void => {
      target.writeUInt32LE(sectionLength, at)
      if (sectionLength > 0) writeSection(target, at + SECTION_LENGTH_BYTES, structures)
      target.set(value, at + SECTION_LENGTH_BYTES + sectionLength)
    }
    const tags = entry.tags
    const tagBytes = tags === undefined ? 0 : tagSectionBytes(tags, label)
    const start = HEADER_BYTES + tagBytes
    const expired = entry.expired === true ? FLAG_EXPIRED : 0
    let out: Buffer | undefined
    if (size >= compressionThreshold) {
      const body = size <= SCRATCH_BYTES ? scratch.subarray(0, size) : Buffer.allocUnsafe(size)
      writeBody(body, 0)
      const compressed = compressSync(body)
      if (compressed.length < size) {
        out = Buffer.allocUnsafe(start + compressed.length)
        out[1] = FLAG_LZ4 | expired
        out.set(compressed, start)
      }
    }
    if (out === undefined) {
      out = Buffer.allocUnsafe(start + size)
      out[1] = expired
      writeBody(out, start)
    }
    out[0] = tags === undefined ? FORMAT_VERSION : FORMAT_VERSION_TAGGED
    out.writeDoubleBE(entry.expiresAt, 2)
    out.writeDoubleBE(entry.graceUntil, 10)
    if (tags !== undefined) writeTagSection(out, HEADER_BYTES, tags, entry.tagVersion ?? 0)
    return out
  }

  /** The decoder of a record section: built once per distinct section, its record readers compiled once. */
  const decoderFor = (body: Buffer, start: number, end: number): Unpackr | undefined => {
    const key = body.toString('latin1', start, end)
    const cached = sectionDecoders.get(key)
    if (cached) return cached
    let structures: unknown
    try {
      structures = sectionUnpackr.unpack(body.subarray(start, end))
    } catch {
      return undefined
    }
    if (!isStructureList(structures)) return undefined
    // Marked shared, msgpackr undoes an inline definition that reuses one of their ids when the
    // message ends: untrusted bytes cannot redefine a record for the messages decoded after them.
    for (const keys of structures) (keys as string[] & { isShared?: boolean }).isShared = true
    const decoder = new Unpackr({ ...unpackrOptions, structures })
    if (sectionDecoders.size >= SECTION_CACHE_ENTRIES) sectionDecoders.delete(sectionDecoders.keys().next().value!)
    sectionDecoders.set(key, decoder)
    return decoder
  }

  const decode = (bytes: Uint8Array): DecodeResult => {
    if (bytes.length < HEADER_BYTES + 1) return { ok: false, reason: 'short' }
    const version = bytes[0]
    if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_TAGGED && version !== FORMAT_VERSION_1) return { ok: false, reason: 'version' }
    const flags = bytes[1]!
    if ((flags & ~KNOWN_FLAGS) !== 0) return { ok: false, reason: 'flags' }
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    const expiresAt = buffer.readDoubleBE(2)
    const graceUntil = buffer.readDoubleBE(10)
    if (Number.isNaN(expiresAt) || Number.isNaN(graceUntil)) return { ok: false, reason: 'envelope' }
    let start = HEADER_BYTES
    let tagged: TagSection | undefined
    if (version === FORMAT_VERSION_TAGGED) {
      tagged = readTagSection(buffer, HEADER_BYTES)
      if (tagged === undefined) return { ok: false, reason: 'tags' }
      start = tagged.end
      if (buffer.length < start + 1) return { ok: false, reason: 'short' }
    }
    let body: Buffer
    if ((flags & FLAG_LZ4) !== 0) {
      if (buffer.length < start + LZ4_SIZE_PREFIX + 1) return { ok: false, reason: 'short' }
      const declared = buffer.readUInt32LE(start)
      if (declared > maxValueBytes || declared === 0) return { ok: false, reason: 'lz4-size' }
      try {
        body = uncompressSync(buffer.subarray(start))
      } catch (error) {
        return { ok: false, reason: 'lz4', error }
      }
      if (body.length !== declared) return { ok: false, reason: 'lz4' }
    } else {
      body = buffer.subarray(start)
    }
    let decoder: Unpackr = plainUnpackr
    if (version !== FORMAT_VERSION_1) {
      if (body.length < SECTION_LENGTH_BYTES + 1) return { ok: false, reason: 'short' }
      const sectionLength = body.readUInt32LE(0)
      if (sectionLength > body.length - SECTION_LENGTH_BYTES - 1) return { ok: false, reason: 'section' }
      const valueStart = SECTION_LENGTH_BYTES + sectionLength
      if (sectionLength > 0) {
        const found = decoderFor(body, SECTION_LENGTH_BYTES, valueStart)
        if (!found) return { ok: false, reason: 'section' }
        decoder = found
      }
      body = body.subarray(valueStart)
    }
    let value: unknown
    try {
      value = decoder.unpack(body)
    } catch (error) {
      return { ok: false, reason: 'msgpack', error }
    }
    let entry: RemoteEntry = tagged === undefined ? { value, expiresAt, graceUntil } : { value, expiresAt, graceUntil, tags: tagged.tags, tagVersion: tagged.tagVersion }
    // Only then: an entry as written has no `expired` property at all, not one set to undefined.
    if ((flags & FLAG_EXPIRED) !== 0) entry = { ...entry, expired: true }
    return { ok: true, entry }
  }

  return { compressionThreshold, maxValueBytes, encode, decode }
}
