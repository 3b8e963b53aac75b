import { compressSync } from 'lz4-napi'
import { Packr } from 'msgpackr'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { taskFixture, type TaskFixtureName } from '@tiercache/testkit'
import { createCodec, FLAG_EXPIRED, FORMAT_VERSION, FORMAT_VERSION_TAGGED, HEADER_BYTES } from '../src/codec.js'
import { SerializationError, ValueTooLargeError } from '../src/errors.js'

const fixture = (name: TaskFixtureName): unknown => taskFixture(name)

const entry = (value: unknown) => ({ value, expiresAt: 1_700_000_000_000, graceUntil: 1_700_000_060_000 })

/** Header of either format version; `body` follows it as is. */
const frame = (version: number, flags: number, body: Uint8Array): Buffer => {
  const header = Buffer.alloc(HEADER_BYTES)
  header[0] = version
  header[1] = flags
  header.writeDoubleBE(1_700_000_000_000, 2)
  header.writeDoubleBE(1_700_000_060_000, 10)
  return Buffer.concat([header, body])
}

/** A version-2 body: 4-byte little-endian section length, the record section, the value. */
const v2Body = (section: Uint8Array, value: Uint8Array): Buffer => {
  const length = Buffer.alloc(4)
  length.writeUInt32LE(section.length)
  return Buffer.concat([length, section, value])
}

/** Values msgpack can carry exactly (-0 is written as 0: msgpack integers have no sign of zero). */
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: false }).map((n) => (Object.is(n, -0) ? 0 : n)),
  fc.string({ unit: 'binary' }),
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
)

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('tree'), { maxLength: 6 }),
  object: fc.dictionary(fc.string({ unit: 'grapheme' }).filter((key) => key !== '__proto__'), tie('tree'), { maxKeys: 6, noNullPrototype: true }),
  map: fc.array(fc.tuple(fc.oneof(fc.string(), fc.integer()), tie('tree')), { maxLength: 4 }).map((pairs) => new Map(pairs)),
  set: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 4 }).map((items) => new Set(items)),
}))

/** Every object and array inside `value` (itself included). */
const nodesOf = (value: unknown, out: object[] = []): object[] => {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return out
  out.push(value)
  for (const child of Object.values(value)) nodesOf(child, out)
  return out
}

describe('codec', () => {
  const codec = createCodec()

  it('round-trips arbitrary nested values exactly, with and without compression', () => {
    const small = createCodec({ compressionThreshold: 0 })
    fc.assert(
      fc.property(tree, (value) => {
        for (const c of [codec, small]) {
          const decoded = c.decode(c.encode(entry(value)))
          expect(decoded.ok).toBe(true)
          if (decoded.ok) expect(decoded.entry).toStrictEqual(entry(value))
        }
      }),
      { numRuns: 300 },
    )
  })

  it('writes self-describing bytes: a codec that never saw a shape decodes it, and one that saw others too', () => {
    const writer = createCodec()
    const reader = createCodec()
    fc.assert(
      fc.property(fc.array(tree, { minLength: 1, maxLength: 4 }), (values) => {
        const encoded = values.map((value) => writer.encode(entry(value)))
        for (const [i, bytes] of encoded.entries()) {
          for (const c of [createCodec(), reader]) {
            const decoded = c.decode(bytes)
            expect(decoded.ok && decoded.entry.value).toStrictEqual(values[i])
          }
        }
      }),
      { numRuns: 150 },
    )
  })

  it('round-trips values with more record shapes than msgpackr shares (inline records beyond 32)', () => {
    const value = Array.from({ length: 80 }, (_, i) => ({ [`k${i}`]: i, [`other${i % 7}`]: [{ [`n${i}`]: `v${i}` }] }))
    const decoded = createCodec().decode(codec.encode(entry(value)))
    expect(decoded.ok && decoded.entry.value).toStrictEqual(value)
  })

  it('writes the record section as the msgpack of the key lists (long, unicode and many keys)', () => {
    const keys = ['', 'a', 'k'.repeat(31), 'k'.repeat(32), 'ü'.repeat(200), 'x'.repeat(300), '🚀'.repeat(20000), 'é中🚀x', 'lone \ud83d', ...Array.from({ length: 20 }, (_, i) => `n${i}`)]
    const value = [Object.fromEntries(keys.map((key, i) => [key, i])), { only: true }]
    const bytes = createCodec({ compressionThreshold: Infinity }).encode(entry(value))
    const body = bytes.subarray(HEADER_BYTES)
    const section = body.subarray(4, 4 + body.readUInt32LE(0))
    expect(Buffer.from(section)).toStrictEqual(Buffer.from(new Packr({ useRecords: false }).pack([keys, ['only']])))
    // UTF-8 has no lone surrogates: that key comes back with U+FFFD, as msgpackr writes it.
    const expected = [Object.fromEntries(keys.map((key, i) => [Buffer.from(key).toString(), i])), { only: true }]
    const decoded = createCodec().decode(bytes)
    expect(decoded.ok && decoded.entry.value).toStrictEqual(expected)
  })

  it('decodes version-1 bytes (inline records, optionally lz4)', () => {
    const v1 = new Packr({ useRecords: true, moreTypes: true })
    for (const name of ['task-progress', 'task-list-page'] as const) {
      const value = fixture(name)
      const packed = v1.pack(value)
      for (const bytes of [frame(1, 0, packed), frame(1, 1, compressSync(packed))]) {
        const decoded = codec.decode(bytes)
        expect(decoded.ok && decoded.entry).toStrictEqual(entry(value))
      }
    }
  })

  it('keeps the exact types of Dates, Maps, Sets, BigInts, Buffers and Uint8Arrays', () => {
    const value = {
      at: new Date(1714558022495),
      byHost: new Map<unknown, unknown>([['h-1', { ok: true }], [2, null]]),
      tags: new Set(['a', 'b']),
      big: 2n ** 64n + 1n,
      small: 5n,
      bytes: new Uint8Array([1, 2, 3]),
      buffer: Buffer.from('héllo'),
      text: 'ünïcødé 🚀 中文',
      nothing: null,
      nested: { list: [1, 'two', { three: [3] }] },
    }
    const decoded = codec.decode(codec.encode(entry(value)))
    if (!decoded.ok) throw new Error(`decode failed: ${decoded.reason}`)
    const back = decoded.entry.value as typeof value
    expect(back).toStrictEqual(value)
    expect(back.at).toBeInstanceOf(Date)
    expect(back.byHost).toBeInstanceOf(Map)
    expect(back.tags).toBeInstanceOf(Set)
    expect(typeof back.big).toBe('bigint')
    expect(typeof back.small).toBe('bigint')
    expect(Buffer.isBuffer(back.buffer)).toBe(true)
    expect(Buffer.isBuffer(back.bytes)).toBe(false)
    expect(back.bytes).toBeInstanceOf(Uint8Array)
  })

  it('writes the documented header', () => {
    const bytes = codec.encode({ value: 'x', expiresAt: 1000, graceUntil: 2000 })
    expect(bytes[0]).toBe(FORMAT_VERSION)
    expect(bytes[1]).toBe(0)
    expect(bytes.readDoubleBE(2)).toBe(1000)
    expect(bytes.readDoubleBE(10)).toBe(2000)
    expect(bytes.length).toBeGreaterThan(HEADER_BYTES)
  })

  it('compresses task fixtures to at most 30% of their JSON, and small values not at all', () => {
    for (const name of ['task-progress', 'task-list-page'] as const) {
      const value = fixture(name)
      const bytes = codec.encode(entry(value))
      expect(bytes[1]! & 1, name).toBe(1)
      expect(bytes.length, name).toBeLessThanOrEqual(Math.floor(JSON.stringify(value).length * 0.3))
      const decoded = codec.decode(bytes)
      expect(decoded.ok && decoded.entry.value).toStrictEqual(value)
    }
    expect(codec.encode(entry({ small: true }))[1]).toBe(0)
  })

  it('does not keep a compressed body that is not smaller', () => {
    const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24))
    const bytes = createCodec({ compressionThreshold: 0 }).encode(entry(random))
    const decoded = codec.decode(bytes)
    expect(decoded.ok && decoded.entry.value).toStrictEqual(random)
  })

  it('refuses values above maxValueBytes, naming the key and the sizes', () => {
    const limited = createCodec({ maxValueBytes: 100 })
    const attempt = () => limited.encode(entry('x'.repeat(200)), 'ns:f@1:{k}')
    expect(attempt).toThrow(ValueTooLargeError)
    expect(attempt).toThrow(/ns:f@1:\{k\}.*20\d bytes.*100 bytes/)
    try {
      attempt()
    } catch (error) {
      expect((error as ValueTooLargeError).code).toBe('E_VALUE_TOO_LARGE')
    }
  })

  it('refuses values msgpack cannot encode with a SerializationError', () => {
    expect(() => codec.encode(entry({ f: Symbol('s') }), 'k')).toThrow(SerializationError)
    const value = fixture('task-list-page')
    const decoded = createCodec().decode(codec.encode(entry(value)))
    expect(decoded.ok && decoded.entry.value).toStrictEqual(value)
  })

  it('decodes untrusted `__proto__` keys without touching any prototype', () => {
    // A raw msgpack map {"__proto__": {"polluted": true}} as another writer could have stored it.
    const map = Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa8, ...Buffer.from('polluted'), 0xc3])
    const forged = frame(FORMAT_VERSION, 0, v2Body(Buffer.alloc(0), map))
    const forgedV1 = frame(1, 0, map)
    const fromRecord = codec.encode(entry(JSON.parse('{"a":1,"__proto__":{"polluted":true}}')))
    // Enough records of one shape that msgpackr compiles a reader for it.
    const many = codec.encode(entry(JSON.parse(`[${Array(6).fill('{"a":1,"__proto__":{"polluted":true}}').join(',')}]`)))
    const manyDecoded = codec.decode(many)
    expect(manyDecoded.ok && (manyDecoded.entry.value as unknown[]).length).toBe(6)
    for (const bytes of [forged, forgedV1, fromRecord, many]) {
      const decoded = codec.decode(bytes)
      expect(decoded.ok).toBe(true)
      const value = decoded.ok ? (decoded.entry.value as Record<string, unknown>) : {}
      expect(value.polluted).toBeUndefined()
      if (!(value instanceof Map) && !Array.isArray(value)) expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
      for (const item of Array.isArray(value) ? (value as Record<string, unknown>[]) : []) {
        expect(item.polluted).toBeUndefined()
        expect(Object.getPrototypeOf(item)).toBe(Object.prototype)
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
    }
  })

  describe('corrupt input is a result, never an exception', () => {
    const good = codec.encode(entry(fixture('task-progress')))

    it.each([
      ['empty', Buffer.alloc(0), 'short'],
      ['header only', good.subarray(0, HEADER_BYTES), 'short'],
      ['unknown version', Buffer.concat([Buffer.from([99]), good.subarray(1)]), 'version'],
      ['unknown flag', Buffer.concat([Buffer.from([FORMAT_VERSION, 0b100]), good.subarray(2)]), 'flags'],
      ['truncated lz4', good.subarray(0, good.length - 40), 'lz4'],
    ])('%s', (_name, bytes, reason) => {
      const decoded = codec.decode(bytes)
      expect(decoded.ok).toBe(false)
      if (!decoded.ok) expect(decoded.reason).toBe(reason)
    })

    it('rejects a forged lz4 size prefix before decompressing', () => {
      const forged = Buffer.from(good)
      forged.writeUInt32LE(0xfffffff0, HEADER_BYTES)
      const decoded = codec.decode(forged)
      expect(decoded).toMatchObject({ ok: false, reason: 'lz4-size' })
      // A prefix below the limit that lies about the size is caught after decompression.
      const lying = Buffer.from(good)
      lying.writeUInt32LE(lying.readUInt32LE(HEADER_BYTES) + 1000, HEADER_BYTES)
      expect(codec.decode(lying)).toMatchObject({ ok: false })
    })

    it('rejects a well-formed lz4 frame whose content is not msgpack', () => {
      const body = compressSync(v2Body(Buffer.alloc(0), Buffer.alloc(3000, 0xc1)))
      expect(codec.decode(frame(FORMAT_VERSION, 1, body))).toMatchObject({ ok: false, reason: 'msgpack' })
    })

    it('rejects record sections that overrun the body or are not lists of key lists', () => {
      const value = Buffer.from([0x40, 0x01])
      const overrun = v2Body(Buffer.alloc(0), value)
      overrun.writeUInt32LE(1000)
      const sections = [Buffer.from([0xc1]), Buffer.from([0x91, 0x01]), Buffer.from([0xa1, 0x61]), Buffer.from([0x90]), Buffer.from([0x91, 0x91, 0xc0])]
      for (const bytes of [frame(FORMAT_VERSION, 0, overrun), ...sections.map((section) => frame(FORMAT_VERSION, 0, v2Body(section, value)))]) {
        expect(codec.decode(bytes)).toMatchObject({ ok: false, reason: 'section' })
      }
      // 33 shapes: more than msgpackr's shared record ids.
      const tooMany = new Packr({ useRecords: false }).pack(Array.from({ length: 33 }, (_, i) => [`k${i}`]))
      expect(codec.decode(frame(FORMAT_VERSION, 0, v2Body(tooMany, value)))).toMatchObject({ ok: false, reason: 'section' })
    })

    it('does not let a message redefine a cached section record for the messages after it', () => {
      const reader = createCodec()
      const value = [{ a: 1, b: 'x' }, { a: 2, b: 'y' }, { a: 3, b: 'z' }, { a: 4, b: 'w' }, { a: 5, b: 'v' }]
      const bytes = codec.encode(entry(value))
      expect(bytes[1]).toBe(0)
      const body = bytes.subarray(HEADER_BYTES)
      const section = body.subarray(4, 4 + body.readUInt32LE(0))
      expect(reader.decode(bytes)).toMatchObject({ ok: true })
      // Same section; the value defines record 0x40 inline as {evil}, then uses it.
      const redefine = Buffer.from([0xd4, 0x72, 0x40, 0x91, 0xa4, ...Buffer.from('evil'), 0x07])
      const forged = [redefine, Buffer.concat([redefine, Buffer.from([0x07])]), Buffer.from([0x92, ...redefine, 0x40])]
      for (const value of forged) reader.decode(frame(FORMAT_VERSION, 0, v2Body(section, value)))
      const again = reader.decode(bytes)
      expect(again.ok && again.entry.value).toStrictEqual(value)
    })
  })

  it('decodes values deep-frozen with `freeze`, equal to the written ones; without it, mutable', () => {
    const value = fixture('task-progress')
    const frozen = createCodec({ freeze: true })
    const plain = createCodec()
    for (const bytes of [frozen.encode(entry(value)), plain.encode(entry(value))]) {
      const result = frozen.decode(bytes)
      const decoded = result.ok ? result.entry.value : undefined
      expect(decoded).toEqual(value)
      const nodes = nodesOf(decoded)
      expect(nodes.length).toBeGreaterThan(10)
      expect(nodes.filter((node) => !Object.isFrozen(node))).toEqual([])
      const again = plain.decode(bytes)
      expect(again.ok).toBe(true)
      expect(again.ok && nodesOf(again.entry.value).some((node) => Object.isFrozen(node))).toBe(false)
    }
  })
})

describe('codec: version 3, entries with tags', () => {
  const codec = createCodec()
  const tagged = (value: unknown, tags: string[], tagVersion = 7) => ({ ...entry(value), tags, tagVersion })
  /** A version-3 frame: header, the given tag section, an uncompressed version-2 body of `value`. */
  const v3 = (tagSection: Buffer, value: unknown = 'v'): Buffer => {
    const bytes = codec.encode(entry(value))
    return Buffer.concat([Buffer.from([FORMAT_VERSION_TAGGED]), bytes.subarray(1, HEADER_BYTES), tagSection, bytes.subarray(HEADER_BYTES)])
  }
  const section = (tagVersion: number, tags: (string | Buffer)[], count = tags.length): Buffer => {
    const head = Buffer.alloc(10)
    head.writeDoubleBE(tagVersion, 0)
    head.writeUInt16BE(count, 8)
    const parts = tags.map((tag) => {
      const bytes = typeof tag === 'string' ? Buffer.from(tag, 'utf8') : tag
      const length = Buffer.alloc(2)
      length.writeUInt16BE(bytes.length)
      return Buffer.concat([length, bytes])
    })
    return Buffer.concat([head, ...parts])
  }

  it('round-trips tags and tagVersion, with and without lz4, and says what they cost', () => {
    for (const value of ['small', fixture('task-progress')]) {
      const tags = ['host:h1', 'tenant:日本', '🚀']
      const bytes = codec.encode(tagged(value, tags, 123_456))
      expect(bytes[0]).toBe(FORMAT_VERSION_TAGGED)
      const decoded = codec.decode(bytes)
      expect(decoded).toMatchObject({ ok: true, entry: { value, tags, tagVersion: 123_456 } })
      // 8 + 2 + Σ (2 + UTF-8 length) bytes more than the same entry untagged.
      const extra = 10 + tags.reduce((sum, tag) => sum + 2 + Buffer.byteLength(tag), 0)
      expect(bytes.length - codec.encode(entry(value)).length).toBe(extra)
    }
  })

  it('leaves untagged entries at version 2, byte for byte', () => {
    const value = fixture('task-list-page')
    const plain = codec.encode(entry(value))
    expect(plain[0]).toBe(FORMAT_VERSION)
    expect(codec.encode({ ...entry(value) }).equals(plain)).toBe(true)
    const decoded = codec.decode(plain)
    expect(decoded.ok && 'tags' in decoded.entry).toBe(false)
  })

  it('refuses to write tags past their bounds', () => {
    expect(() => codec.encode(tagged('v', []))).toThrow(SerializationError)
    expect(() => codec.encode(tagged('v', Array.from({ length: 65 }, (_, i) => `t${i}`)))).toThrow(SerializationError)
    expect(() => codec.encode(tagged('v', ['x'.repeat(1025)]))).toThrow(SerializationError)
  })

  it('reads a hand-made version-3 frame', () => {
    expect(codec.decode(v3(section(5, ['a', 'b']), { ok: 1 }))).toMatchObject({ ok: true, entry: { value: { ok: 1 }, tags: ['a', 'b'], tagVersion: 5 } })
  })

  it.each([
    ['a section cut short', v3(section(1, ['a'])).subarray(0, HEADER_BYTES + 6)],
    ['a count of 0', v3(section(1, [], 0))],
    ['a count above 64', v3(section(1, Array.from({ length: 65 }, () => 'a')))],
    ['a tag of length 0', v3(section(1, [Buffer.alloc(0)]))],
    ['a tag longer than the frame', Buffer.concat([v3(section(1, ['a'])).subarray(0, HEADER_BYTES + 10), Buffer.from([0x10, 0x00, 0x61])])],
    ['a count larger than the tags present', v3(section(1, ['a'], 3)).subarray(0, HEADER_BYTES + 13)],
    ['a NaN tagVersion', v3(section(Number.NaN, ['a']))],
    ['a negative tagVersion', v3(section(-1, ['a']))],
    ['a fractional tagVersion', v3(section(1.5, ['a']))],
  ])('takes %s for corrupt (reason tags)', (_name, bytes) => {
    expect(codec.decode(bytes)).toMatchObject({ ok: false, reason: 'tags' })
  })
})

describe('codec: the expired flag (bit 1)', () => {
  const codec = createCodec()
  const expired = <T extends object>(written: T) => ({ ...written, expired: true as const })

  it('round-trips it, with and without tags and lz4', () => {
    for (const value of ['small', fixture('task-progress')]) {
      for (const written of [entry(value), { ...entry(value), tags: ['host:h1', 'ü'], tagVersion: 9 }]) {
        const bytes = codec.encode(expired(written))
        expect(bytes[1]! & FLAG_EXPIRED).toBe(FLAG_EXPIRED)
        expect(bytes[1]! & 1).toBe(value === 'small' ? 0 : 1)
        const decoded = codec.decode(bytes)
        expect(decoded).toStrictEqual({ ok: true, entry: expired(written) })
      }
    }
  })

  it('costs no byte: the expired bytes are the plain ones with bit 1 of the flags set', () => {
    for (const written of [entry(fixture('task-list-page')), { ...entry('v'), tags: ['t'], tagVersion: 1 }]) {
      const plain = codec.encode(written)
      const bytes = codec.encode(expired(written))
      expect(bytes.length).toBe(plain.length)
      expect(bytes[1]).toBe(plain[1]! | FLAG_EXPIRED)
      expect(Buffer.concat([bytes.subarray(0, 1), bytes.subarray(2)]).equals(Buffer.concat([plain.subarray(0, 1), plain.subarray(2)]))).toBe(true)
    }
  })

  it('leaves entries never expired byte for byte as before the flag, decoded without an `expired` property', () => {
    const plain = { value: { id: 't1', n: 1, at: 'x' }, expiresAt: 1_700_000_000_000, graceUntil: 1_700_000_060_000 }
    // Written by the codec before bit 1 existed.
    const before = '02004278bcfe568000004278bcfe652600000a0000009193a26964a16ea2617440a2743101a178'
    const beforeTagged = '03004278bcfe568000004278bcfe65260000401000000000000000020001610002c3bc0a0000009193a26964a16ea2617440a2743101a178'
    expect(codec.encode(plain).toString('hex')).toBe(before)
    expect(codec.encode({ ...plain, tags: ['a', 'ü'], tagVersion: 4 }).toString('hex')).toBe(beforeTagged)
    expect(codec.encode({ ...plain, expired: undefined } as never).toString('hex')).toBe(before)
    for (const hex of [before, beforeTagged]) {
      const decoded = codec.decode(Buffer.from(hex, 'hex'))
      expect(decoded.ok && 'expired' in decoded.entry).toBe(false)
    }
  })

  it.each([0b100, 0b1000, 0x80, 0b110, 0b111])('still takes flags %i (an unknown bit set) for corrupt', (flags) => {
    const bytes = codec.encode(entry('v'))
    bytes[1] = flags
    expect(codec.decode(bytes)).toMatchObject({ ok: false, reason: 'flags' })
  })
})
