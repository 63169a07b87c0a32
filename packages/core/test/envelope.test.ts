/**
 * Value envelope: example tests and property-based tests (fast-check,
 * 10,000 runs each): round trips, the compression rule, the uncompressed
 * length of deflated values, the range of times, corruption (truncation,
 * flipped bytes, wrong lengths) and arbitrary input to the decoders.
 */
import { deflateRawSync, crc32, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { deflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_THRESHOLD,
  decodeEnvelope,
  decodeEnvelopeHeader,
  encodeEnvelope,
  ENVELOPE_MAGIC,
  ENVELOPE_VERSION,
  EnvelopeError,
  type EnvelopeFields,
} from '../src/codec/envelope.ts';
import { encodeKey } from '../src/codec/key-codec.ts';

const NUM_RUNS = 10_000;
/** Generous: each property takes a few seconds on 2 cores. */
const PROPERTY_TIMEOUT = 60_000;

const FLAG_DEFLATE = 1;
const FLAG_EXPIRES = 2;
const FLAG_FULL_KEY = 4;
const FLAG_TEXT = 8;
const FLAG_WRITE_ID = 16;

/** DEFLATE expands at most 1032:1; a larger uncompressed length is refused before anything is allocated. */
const maxValueLength = (payloadLength: number) => payloadLength * 1032 + 1032;

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const utf8 = (text: string) => new TextEncoder().encode(text);

/** Runs `fn`; returns its result, or the EnvelopeError it threw. Any other exception fails the test. */
function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: EnvelopeError } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (error instanceof EnvelopeError) return { ok: false, error };
    throw new Error(`expected only EnvelopeError, got ${String(error)}`, { cause: error });
  }
}

/** An envelope with a deflated payload, built by hand (no expiry, no full key): header, length at 11, CRC at 15, payload at 19. */
function deflatedEnvelope(payload: Uint8Array, valueLength: number, crc: number, flags = FLAG_DEFLATE): Uint8Array {
  const bytes = new Uint8Array(19 + payload.length);
  bytes.set([ENVELOPE_MAGIC, ENVELOPE_VERSION, flags]);
  const view = new DataView(bytes.buffer);
  view.setUint32(11, valueLength);
  view.setUint32(15, crc);
  bytes.set(payload, 19);
  return bytes;
}

/** A copy of `bytes` with the uint32 at `at` replaced. */
function withUint32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  new DataView(copy.buffer).setUint32(at, value);
  return copy;
}

// ---------------------------------------------------------------------------
// Arbitraries.

/** Highly compressible values: a short chunk repeated, or text from a 3-letter alphabet. */
const compressible = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 300 })).map(([chunk, times]) => {
    const out = new Uint8Array(Math.min(4096, chunk.length * times));
    for (let i = 0; i < out.length; i++) out[i] = chunk[i % chunk.length]!;
    return out;
  }),
  fc.array(fc.constantFrom(0x61, 0x62, 0x20), { maxLength: 4096, size: 'max' }).map((a) => Uint8Array.from(a)),
  fc.integer({ min: COMPRESSION_THRESHOLD - 4, max: COMPRESSION_THRESHOLD + 4 }).map((n) => new Uint8Array(n).fill(0x61)),
);
/** Values: random bytes up to 4 KiB (short ones favoured), and compressible ones. */
const anyValue = fc.oneof(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 4096, size: 'max' }), compressible);
const printableAscii = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
const fullKeyArb = fc.oneof(
  printableAscii,
  fc.string({ unit: 'binary', maxLength: 120 }).map((k) => encodeKey(k).fullKey),
);
const timeArb = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 1, 1_700_000_000_000, Number.MAX_SAFE_INTEGER), fc.integer({ min: 0, max: 0xffffffff }));

const fieldsArb = (value: fc.Arbitrary<Uint8Array>) =>
  fc.record({
    value,
    text: fc.boolean(),
    modifiedAt: timeArb,
    expiresAt: fc.option(timeArb, { nil: undefined }),
    fullKey: fc.option(fullKeyArb, { nil: undefined }),
    writeId: fc.option(fc.uint8Array({ minLength: 8, maxLength: 8 }), { nil: undefined }),
  }) as fc.Arbitrary<EnvelopeFields>;
const compressArb = fc.constantFrom(undefined, true, false);

function headerLength(fields: EnvelopeFields, compressed: boolean): number {
  return (
    3 +
    8 +
    (fields.expiresAt !== undefined ? 8 : 0) +
    (fields.writeId !== undefined ? 8 : 0) +
    (fields.fullKey !== undefined ? 2 + fields.fullKey.length : 0) +
    (compressed ? 4 : 0) +
    4
  );
}

function expectSameFields(actual: EnvelopeFields, expected: EnvelopeFields): void {
  expect(sameBytes(actual.value, expected.value)).toBe(true);
  expect(actual.writeId === undefined ? undefined : [...actual.writeId]).toEqual(expected.writeId === undefined ? undefined : [...expected.writeId]);
  expect({ ...actual, value: undefined, writeId: undefined }).toStrictEqual({
    value: undefined,
    writeId: undefined,
    text: expected.text,
    modifiedAt: expected.modifiedAt,
    expiresAt: expected.expiresAt,
    fullKey: expected.fullKey,
  });
}

// ---------------------------------------------------------------------------

describe('envelope: examples', () => {
  it('lays out an uncompressed text value byte by byte', () => {
    const bytes = encodeEnvelope({ value: utf8('hello, world'), text: true, modifiedAt: 1_700_000_000_000 });
    expect(Buffer.from(bytes).toString('hex')).toBe(
      '4b0108' + '0000018bcfe56800' + crc32('hello, world').toString(16).padStart(8, '0') + Buffer.from('hello, world').toString('hex'),
    );
    expect(ENVELOPE_MAGIC).toBe(0x4b);
    expect(ENVELOPE_VERSION).toBe(1);
  });

  it('puts the expiry, then the full key, then the CRC', () => {
    const fullKey = encodeKey('x'.repeat(300)).fullKey;
    const bytes = encodeEnvelope({ value: utf8('v'), text: false, modifiedAt: 5, expiresAt: 6, fullKey });
    expect(bytes[2]).toBe(FLAG_EXPIRES | FLAG_FULL_KEY);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(view.getBigUint64(3)).toBe(5n);
    expect(view.getBigUint64(11)).toBe(6n);
    expect(view.getUint16(19)).toBe(300);
    expect(Buffer.from(bytes.subarray(21, 321)).toString('latin1')).toBe(fullKey);
    expect(view.getUint32(321)).toBe(crc32(utf8('v')));
    expect(bytes.subarray(325)).toEqual(utf8('v'));
    expect(decodeEnvelopeHeader(bytes)).toEqual({ modifiedAt: 5, expiresAt: 6, fullKey, text: false, compressed: false, valueLength: 1, crcOffset: 321 });
  });

  it('puts the uncompressed length, only when deflated, after the full key and before the CRC', () => {
    const fullKey = encodeKey('x'.repeat(300)).fullKey;
    const value = utf8('abcdefghij'.repeat(20));
    const bytes = encodeEnvelope({ value, text: true, modifiedAt: 5, expiresAt: 6, fullKey });
    expect(bytes[2]).toBe(FLAG_DEFLATE | FLAG_EXPIRES | FLAG_FULL_KEY | FLAG_TEXT);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(view.getUint16(19)).toBe(300);
    expect(view.getUint32(321)).toBe(200);
    expect(view.getUint32(325)).toBe(crc32(value));
    expect(sameBytes(inflateRawSync(bytes.subarray(329)), value)).toBe(true);
    expect(decodeEnvelopeHeader(bytes)).toEqual({ modifiedAt: 5, expiresAt: 6, fullKey, text: true, compressed: true, valueLength: 200, crcOffset: 325 });

    const plain = encodeEnvelope({ value: utf8('abcdefghij'.repeat(20)), text: true, modifiedAt: 5 }, { compress: false });
    expect(plain).toHaveLength(15 + 200);
    expect(decodeEnvelopeHeader(plain)).toMatchObject({ compressed: false, valueLength: 200, crcOffset: 11 });
  });

  it('compresses from 64 bytes on, only when DEFLATE is smaller, and never when told not to', () => {
    const below = encodeEnvelope({ value: new Uint8Array(63).fill(0x61), text: false, modifiedAt: 0 });
    const at = encodeEnvelope({ value: new Uint8Array(64).fill(0x61), text: false, modifiedAt: 0 });
    expect(COMPRESSION_THRESHOLD).toBe(64);
    expect(below[2]! & FLAG_DEFLATE).toBe(0);
    expect(at[2]! & FLAG_DEFLATE).toBe(FLAG_DEFLATE);
    expect(new DataView(at.buffer).getUint32(11)).toBe(64);
    expect(inflateRawSync(at.subarray(19))).toEqual(Buffer.alloc(64, 0x61));
    const noise = new Uint8Array(Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 167 + 13) % 251)));
    expect(encodeEnvelope({ value: noise, text: false, modifiedAt: 0 })[2]! & FLAG_DEFLATE).toBe(0);
    const off = encodeEnvelope({ value: new Uint8Array(1000), text: false, modifiedAt: 0 }, { compress: false });
    expect(off[2]! & FLAG_DEFLATE).toBe(0);
    expect(off.length).toBe(1015);
  });

  it('decodes an envelope that is a view into a larger buffer', () => {
    const bytes = encodeEnvelope({ value: utf8('abc'.repeat(50)), text: true, modifiedAt: 7, expiresAt: 8 });
    const big = new Uint8Array(bytes.length + 20);
    big.set(bytes, 13);
    const decoded = decodeEnvelope(big.subarray(13, 13 + bytes.length));
    expect(new TextDecoder().decode(decoded.value)).toBe('abc'.repeat(50));
    expect(decoded.expiresAt).toBe(8);
  });

  it('accepts payloads from other DEFLATE writers, at any size and level', () => {
    for (const value of [
      new Uint8Array(0),
      utf8('hi'),
      utf8('x'.repeat(1000)),
      new Uint8Array(Buffer.from(Array.from({ length: 300 }, (_, i) => (i * i) & 255))),
    ]) {
      for (const level of [0, 1, 9]) {
        const bytes = deflatedEnvelope(deflateRawSync(value, { level }), value.length, crc32(value));
        expect(sameBytes(decodeEnvelope(bytes).value, value)).toBe(true);
      }
    }
  });

  it('truncates fractional times to whole milliseconds', () => {
    const decoded = decodeEnvelope(encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: 0.5, expiresAt: 12.9 }));
    expect(decoded.modifiedAt).toBe(0);
    expect(decoded.expiresAt).toBe(12);
    expect(decodeEnvelope(encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: -0 })).modifiedAt).toBe(0);
  });

  it('keeps 2^53 - 1 and the last JavaScript date (8.64e15) exactly', () => {
    for (const t of [Number.MAX_SAFE_INTEGER, 8.64e15]) {
      const bytes = encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: t, expiresAt: t });
      expect(new DataView(bytes.buffer).getBigUint64(3)).toBe(BigInt(t));
      expect(decodeEnvelope(bytes)).toMatchObject({ modifiedAt: t, expiresAt: t });
    }
  });

  // A time is never clamped or wrapped around (DataView.setBigUint64 works modulo 2^64): a
  // huge expiry stored as a small one would make the entry expire at once, a negative one
  // stored as 0 likewise, and NaN has no meaning. kv.put refuses such a ttl before encoding.
  it('throws RangeError for negative, non-finite and unsafe (>= 2^53) times, in either field', () => {
    const bad = [
      -1,
      -5,
      -0.5,
      -1_700_000_000_000,
      Number.MIN_SAFE_INTEGER,
      -Infinity,
      NaN,
      Infinity,
      2 ** 53,
      2 ** 53 + 2,
      2 ** 60,
      2 ** 64 - 2048,
      2 ** 64,
      1e20,
      Number.MAX_VALUE,
    ];
    for (const t of bad) {
      expect(() => encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: t }), `modifiedAt ${t}`).toThrow(RangeError);
      expect(() => encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: 0, expiresAt: t }), `expiresAt ${t}`).toThrow(RangeError);
      expect(() => encodeEnvelope({ value: utf8('x'.repeat(100)), text: true, modifiedAt: 0, expiresAt: t }), `expiresAt ${t}, deflated`).toThrow(
        /expiresAt must be a whole number of milliseconds from 0 to 2\^53-1/,
      );
    }
  });

  it('refuses a full key that is not printable ASCII', () => {
    expect(() => encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: 0, fullKey: 'a b' })).toThrow(RangeError);
    expect(() => encodeEnvelope({ value: new Uint8Array(0), text: false, modifiedAt: 0, fullKey: 'é' })).toThrow(RangeError);
  });

  it('reads a full key of 65535 characters', () => {
    const fullKey = 'k'.repeat(0xffff);
    const bytes = encodeEnvelope({ value: utf8('v'), text: true, modifiedAt: 0, fullKey });
    expect(decodeEnvelope(bytes).fullKey).toBe(fullKey);
  });

  it('inflates into exactly the uncompressed length: any other length is rejected', () => {
    const value = utf8('abcdefghij'.repeat(20));
    const good = encodeEnvelope({ value, text: true, modifiedAt: 0 });
    expect(decodeEnvelopeHeader(good)).toMatchObject({ compressed: true, valueLength: 200, crcOffset: 15 });
    expect(() => decodeEnvelope(withUint32(good, 11, 201))).toThrow(/uncompressed length does not match the header/);
    expect(() => decodeEnvelope(withUint32(good, 11, 4000))).toThrow(/uncompressed length does not match the header/);
    // A stream holding more than the length: the reference reader stops when its buffer is full,
    // so the value read is cut short and its CRC differs from the stored one (of the whole value).
    for (const length of [0, 1, 100, 199]) expect(() => decodeEnvelope(withUint32(good, 11, length)), String(length)).toThrow(EnvelopeError);
    // Also with another DEFLATE writer's stored (uncompressed) block.
    const stored = deflatedEnvelope(deflateRawSync(value, { level: 0 }), 200, crc32(value));
    expect(decodeEnvelope(stored).value).toEqual(value);
    for (const length of [0, 199, 201]) expect(() => decodeEnvelope(withUint32(stored, 11, length)), String(length)).toThrow(EnvelopeError);
  });

  it('rejects, from the header alone, an uncompressed length DEFLATE cannot produce (over 1032 x payload + 1032)', () => {
    const good = encodeEnvelope({ value: utf8('abcdefghij'.repeat(20)), text: true, modifiedAt: 0 });
    const payloadLength = good.length - 19;
    const limit = maxValueLength(payloadLength);
    expect(decodeEnvelopeHeader(withUint32(good, 11, limit)).valueLength).toBe(limit);
    expect(() => decodeEnvelope(withUint32(good, 11, limit))).toThrow(EnvelopeError);
    for (const length of [limit + 1, 2 ** 31, 0xffffffff]) {
      expect(() => decodeEnvelopeHeader(withUint32(good, 11, length))).toThrow(/uncompressed length is impossible for the payload/);
      expect(() => decodeEnvelope(withUint32(good, 11, length))).toThrow(/uncompressed length is impossible for the payload/);
    }
    // The bound is real: 1 MiB of zeros deflates to about a thousandth of its size (node:zlib, level 9).
    const zeros = new Uint8Array(1 << 20);
    const dense = deflatedEnvelope(deflateRawSync(zeros, { level: 9 }), zeros.length, crc32(zeros));
    expect(zeros.length).toBeLessThanOrEqual(maxValueLength(dense.length - 19));
    expect(sameBytes(decodeEnvelope(dense).value, zeros)).toBe(true);
    // An empty payload may claim up to 1032 bytes, no more.
    expect(decodeEnvelopeHeader(deflatedEnvelope(new Uint8Array(0), 1032, 0)).valueLength).toBe(1032);
    expect(() => decodeEnvelopeHeader(deflatedEnvelope(new Uint8Array(0), 1033, 0))).toThrow(EnvelopeError);
  });

  it('needs the 4 bytes of the uncompressed length and the CRC when deflated', () => {
    const good = encodeEnvelope({ value: utf8('abcdefghij'.repeat(20)), text: true, modifiedAt: 0 });
    for (const cut of [15, 16, 17, 18]) expect(() => decodeEnvelopeHeader(good.subarray(0, cut)), String(cut)).toThrow(/truncated header/);
    expect(decodeEnvelopeHeader(good.subarray(0, 19))).toMatchObject({ compressed: true, valueLength: 200, crcOffset: 15 });
  });

  it('rejects malformed envelopes with EnvelopeError', () => {
    const good = encodeEnvelope({ value: utf8('hello, world'), text: true, modifiedAt: 1 });
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      good.subarray(0, 14),
      Uint8Array.from(good).fill(0x4a, 0, 1),
      Uint8Array.from(good).fill(2, 1, 2),
      Uint8Array.from(good).fill(0x18, 2, 3),
      Uint8Array.from(good).fill(0x09, 2, 3),
      good.subarray(0, good.length - 1),
    ];
    for (const bytes of cases) expect(() => decodeEnvelope(bytes)).toThrow(EnvelopeError);
    expect(() => decodeEnvelopeHeader(good.subarray(0, 14))).toThrow(EnvelopeError);
  });
});

describe('envelope: properties', () => {
  it(
    'decode(encode(x)) is x; layout, CRC and the compression rule hold',
    () => {
      fc.assert(
        fc.property(fieldsArb(anyValue), compressArb, (fields, compress) => {
          const bytes = encodeEnvelope(fields, compress === undefined ? {} : { compress });
          expectSameFields(decodeEnvelope(bytes), fields);

          const header = decodeEnvelopeHeader(bytes);
          const hl = headerLength(fields, header.compressed);
          expect(header.crcOffset).toBe(hl - 4);
          expect(header.valueLength).toBe(fields.value.length);
          expect(bytes[0]).toBe(0x4b);
          expect(bytes[1]).toBe(1);
          const flags =
            (header.compressed ? FLAG_DEFLATE : 0) |
            (fields.expiresAt !== undefined ? FLAG_EXPIRES : 0) |
            (fields.fullKey !== undefined ? FLAG_FULL_KEY : 0) |
            (fields.text ? FLAG_TEXT : 0) |
            (fields.writeId !== undefined ? FLAG_WRITE_ID : 0);
          expect(bytes[2]).toBe(flags);
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          expect(view.getBigUint64(3)).toBe(BigInt(fields.modifiedAt));
          expect(view.getUint32(hl - 4)).toBe(crc32(fields.value));

          const payload = bytes.subarray(hl);
          const mayCompress = compress !== false && fields.value.length >= COMPRESSION_THRESHOLD;
          if (header.compressed) {
            expect(mayCompress).toBe(true);
            expect(payload.length).toBeLessThan(fields.value.length);
            expect(view.getUint32(hl - 8)).toBe(fields.value.length);
            // Raw DEFLATE (RFC 1951), readable by an independent inflater.
            expect(sameBytes(inflateRawSync(payload), fields.value)).toBe(true);
          } else {
            expect(sameBytes(payload, fields.value)).toBe(true);
            if (mayCompress) expect(deflateSync(fields.value, { level: 6 }).length).toBeGreaterThanOrEqual(fields.value.length);
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'a truncated envelope never decodes: EnvelopeError and nothing else',
    () => {
      fc.assert(
        fc.property(fieldsArb(fc.oneof(fc.uint8Array({ maxLength: 1024 }), compressible)), fc.nat(), (fields, cut) => {
          const bytes = encodeEnvelope(fields);
          const truncated = bytes.subarray(0, cut % bytes.length);
          const result = attempt(() => decodeEnvelope(truncated));
          expect(result.ok).toBe(false);
          attempt(() => decodeEnvelopeHeader(truncated));
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  // The CRC covers the value only. A changed byte in the modified time, the
  // expiry or the full key, or in the text flag, gives a different but valid
  // envelope; everywhere else the change is detected, except inside a DEFLATE
  // stream, where it may also fall in bits the inflater ignores (the value is
  // then unchanged).
  it(
    'a changed byte is detected, or changes only a header field the CRC does not cover',
    () => {
      const position = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.nat());
      fc.assert(
        fc.property(fieldsArb(fc.oneof(fc.uint8Array({ maxLength: 1024 }), compressible)), position, fc.integer({ min: 1, max: 255 }), (fields, pos, mask) => {
          const bytes = encodeEnvelope(fields);
          const at = pos % bytes.length;
          const changed = Uint8Array.from(bytes);
          changed[at]! ^= mask;
          const original = decodeEnvelope(bytes);
          const header = decodeEnvelopeHeader(bytes);
          const expiryAt = fields.expiresAt !== undefined ? 11 : -1;
          const writeIdAt = fields.writeId !== undefined ? 11 + (fields.expiresAt !== undefined ? 8 : 0) : -1;
          const keyAt = 11 + (fields.expiresAt !== undefined ? 8 : 0) + (fields.writeId !== undefined ? 8 : 0);
          const lengthAt = header.compressed ? header.crcOffset - 4 : -1;
          const result = attempt(() => decodeEnvelope(changed));
          attempt(() => decodeEnvelopeHeader(changed));

          let region: string;
          if (at <= 1) region = 'magic/version';
          else if (at === 2) region = mask === FLAG_TEXT ? 'text flag' : mask & 0xe0 ? 'unknown flags' : 'layout flags';
          else if (at < 11) region = 'modifiedAt';
          else if (expiryAt >= 0 && at < expiryAt + 8) region = 'expiresAt';
          else if (writeIdAt >= 0 && at < writeIdAt + 8) region = 'write id';
          else if (fields.fullKey !== undefined && at < keyAt + 2) region = 'key length';
          else if (fields.fullKey !== undefined && at < keyAt + 2 + fields.fullKey.length) region = 'full key';
          else if (lengthAt >= 0 && at < lengthAt + 4) region = 'value length';
          else if (at < header.crcOffset + 4) region = 'crc';
          else region = header.compressed ? 'deflate payload' : 'payload';

          switch (region) {
            case 'magic/version':
            case 'unknown flags':
            case 'key length':
            case 'value length': // larger: impossible or not filled; smaller: the value read is cut short and the CRC fails
            case 'crc':
            case 'payload': // CRC-32 detects every error confined to 32 consecutive bits
              expect(result.ok, region).toBe(false);
              break;
            case 'text flag':
              expect(result.ok).toBe(true);
              if (result.ok) expectSameFields(result.value, { ...original, text: !original.text });
              break;
            case 'modifiedAt':
            case 'expiresAt': {
              expect(result.ok).toBe(true);
              if (!result.ok) break;
              const field = region as 'modifiedAt' | 'expiresAt';
              const view = new DataView(changed.buffer);
              const start = field === 'modifiedAt' ? 3 : 11;
              expectSameFields(result.value, { ...original, [field]: Number(view.getBigUint64(start)) });
              expect(result.value[field]).not.toBe(original[field]);
              break;
            }
            case 'write id':
              expect(result.ok).toBe(true);
              if (!result.ok) break;
              expect(result.value.writeId![at - writeIdAt]).toBe(changed[at]);
              expectSameFields(result.value, { ...original, writeId: result.value.writeId });
              break;
            case 'full key':
              expect(result.ok).toBe(true);
              if (!result.ok) break;
              expect(result.value.fullKey).not.toBe(original.fullKey);
              expect(result.value.fullKey!.charCodeAt(at - keyAt - 2)).toBe(changed[at]);
              expectSameFields(result.value, { ...original, fullKey: result.value.fullKey });
              break;
            default:
              // 'layout flags' and 'deflate payload': detected, or the value is unchanged.
              if (result.ok) expect(sameBytes(result.value.value, original.value)).toBe(true);
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'arbitrary bytes: decodeEnvelopeHeader and decodeEnvelope throw only EnvelopeError',
    () => {
      const u16 = (n: number) => [n >> 8, n & 255];
      const plausible = fc
        .tuple(
          fc.constantFrom(0x4b, 0x4a),
          fc.constantFrom(1, 1, 1, 0, 2),
          fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 255 })),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
          fc.integer({ min: 0, max: 64 }),
          fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.nat({ max: 0xffffffff })),
          fc.uint8Array({ maxLength: 600 }),
        )
        .map(([magic, version, flags, time, expiry, keyLength, valueLength, rest]) => {
          const parts = [magic, version, flags, ...time];
          if (flags & FLAG_EXPIRES) parts.push(...expiry);
          if (flags & FLAG_FULL_KEY) parts.push(...u16(keyLength), ...rest.subarray(0, keyLength));
          if (flags & FLAG_DEFLATE) parts.push(...u16(valueLength >>> 16), ...u16(valueLength & 0xffff));
          return Uint8Array.from([...parts, ...rest.subarray(flags & FLAG_FULL_KEY ? keyLength : 0)]);
        });
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 2048, size: 'max' }), plausible), (bytes) => {
          const header = attempt(() => decodeEnvelopeHeader(bytes));
          const full = attempt(() => decodeEnvelope(bytes));
          if (header.ok) {
            const { crcOffset, compressed, valueLength } = header.value;
            expect(crcOffset + 4).toBeLessThanOrEqual(bytes.length);
            const payloadLength = bytes.length - crcOffset - 4;
            if (compressed) expect(valueLength).toBeLessThanOrEqual(maxValueLength(payloadLength));
            else expect(valueLength).toBe(payloadLength);
          } else {
            expect(full.ok).toBe(false);
          }
          if (full.ok && header.ok) {
            expect(crc32(full.value.value)).toBe(new DataView(bytes.buffer, bytes.byteOffset).getUint32(header.value.crcOffset));
            expect(full.value.value.length).toBe(header.value.valueLength);
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'times: whole milliseconds from 0 to 2^53 - 1 round trip (fractions truncated); any other number throws RangeError',
    () => {
      const valid = fc.oneof(
        fc.maxSafeNat(),
        fc.double({ min: 0, max: Number.MAX_SAFE_INTEGER, noNaN: true }),
        fc.double({ min: 0, max: 2 ** 40, noNaN: true }),
      );
      const invalid = fc.oneof(
        fc.double({ max: -Number.MIN_VALUE, noNaN: true }), // negative, -Infinity included
        fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }),
        fc.double({ min: 2 ** 53, noNaN: true }), // Infinity included
        fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64),
      );
      fc.assert(
        fc.property(fc.oneof(valid, invalid), fc.constantFrom('modifiedAt', 'expiresAt'), fc.boolean(), (time, field, deflated) => {
          const fields: EnvelopeFields = { value: deflated ? new Uint8Array(100) : utf8('v'), text: false, modifiedAt: 1, [field]: time };
          const ok = Number.isFinite(time) && time >= 0 && time < 2 ** 53;
          if (!ok) {
            expect(() => encodeEnvelope(fields)).toThrow(RangeError);
            return;
          }
          const whole = Math.trunc(time) + 0; // + 0 turns -0 into 0
          const bytes = encodeEnvelope(fields);
          const offset = field === 'modifiedAt' ? 3 : 11;
          expect(new DataView(bytes.buffer).getBigUint64(offset)).toBe(BigInt(whole));
          expect(decodeEnvelope(bytes)[field]).toBe(whole);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  // A smaller length is caught by the CRC only (the reference reader stops inflating when its
  // buffer is full): a CRC-32 of the cut value equal to that of the whole value has odds of about 2^-32.
  it(
    'a deflated envelope with any other uncompressed length is rejected; the header alone rejects lengths DEFLATE cannot reach',
    () => {
      fc.assert(
        fc.property(
          fieldsArb(compressible),
          fc.oneof(fc.nat({ max: 0xffffffff }), fc.integer({ min: -64, max: 64 }), fc.integer({ min: -2, max: 2 })),
          (fields, claim) => {
            const bytes = encodeEnvelope(fields);
            const header = decodeEnvelopeHeader(bytes);
            fc.pre(header.compressed);
            const lengthAt = header.crcOffset - 4;
            // Small claims are offsets from the true length, large ones absolute.
            const length = Math.abs(claim) <= 64 ? fields.value.length + claim : claim;
            fc.pre(length !== fields.value.length && length >= 0 && length <= 0xffffffff);
            const changed = withUint32(bytes, lengthAt, length);
            const limit = maxValueLength(bytes.length - header.crcOffset - 4);
            const headerResult = attempt(() => decodeEnvelopeHeader(changed));
            expect(headerResult.ok).toBe(length <= limit);
            if (headerResult.ok) expect(headerResult.value.valueLength).toBe(length);
            expect(attempt(() => decodeEnvelope(changed)).ok).toBe(false);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'payloads from an independent DEFLATE writer (node:zlib, any level) decode',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 512 }),
            compressible.map((v) => v.subarray(0, 512)),
          ),
          fc.integer({ min: 0, max: 9 }),
          fc.boolean(),
          (value, level, text) => {
            const bytes = deflatedEnvelope(deflateRawSync(value, { level }), value.length, crc32(value), FLAG_DEFLATE | (text ? FLAG_TEXT : 0));
            expect(decodeEnvelopeHeader(bytes).valueLength).toBe(value.length);
            const decoded = decodeEnvelope(bytes);
            expect(sameBytes(decoded.value, value)).toBe(true);
            expect(decoded.text).toBe(text);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
