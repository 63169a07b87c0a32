/**
 * Value envelope: the bytes stored for one entry (in a ConfigMap's `binaryData`,
 * or a Secret's `data`). Pure functions; specified with test vectors in
 * docs/FORMAT.md.
 *
 * Layout (all integers big-endian):
 *   0      1 byte   magic 0x4B ("K")
 *   1      1 byte   format version (1)
 *   2      1 byte   flags: bit0 payload is raw DEFLATE (RFC 1951)
 *                          bit1 an expiry time follows
 *                          bit2 the full encoded key follows (the data key is hashed)
 *                          bit3 the value was given as text (UTF-8)
 *                          bit4 a write id follows
 *                          bits 5-7 zero
 *   3      8 bytes  modified time, milliseconds since the Unix epoch (uint64)
 *   [8 bytes]       expiry time, ms since the epoch (uint64), if bit1
 *   [8 bytes]       write id (random bytes naming this one write), if bit4
 *   [2 bytes + n]   length n and ASCII bytes of the full encoded key, if bit2
 *   [4 bytes]       length of the uncompressed value (uint32), if bit0
 *   4 bytes         CRC-32 (IEEE) of the uncompressed value
 *   rest            payload: the value, deflated if bit0
 */
import { deflateSync, inflateSync } from 'fflate';
import { crc32 } from 'node:zlib';

/** First byte of every entry. */
export const ENVELOPE_MAGIC = 0x4b;
/** The format version this code writes. */
export const ENVELOPE_VERSION = 1;
/** Values shorter than this are never compressed (the saving cannot pay for the work). */
export const COMPRESSION_THRESHOLD = 64;

const FLAG_DEFLATE = 1;
const FLAG_EXPIRES = 2;
const FLAG_FULL_KEY = 4;
const FLAG_TEXT = 8;
const FLAG_WRITE_ID = 16;
const KNOWN_FLAGS = FLAG_DEFLATE | FLAG_EXPIRES | FLAG_FULL_KEY | FLAG_TEXT | FLAG_WRITE_ID;
/** Length of a write id in bytes. */
export const WRITE_ID_LENGTH = 8;

/** What an envelope holds. */
export interface EnvelopeFields {
  /** The value bytes. */
  value: Uint8Array;
  /** True when the value was stored as text (a string). */
  text: boolean;
  /** Modified time, ms since the epoch. */
  modifiedAt: number;
  /** Expiry time, ms since the epoch, if any. */
  expiresAt?: number | undefined;
  /** Full encoded key, present only when the data key is a hash. */
  fullKey?: string | undefined;
  /**
   * {@link WRITE_ID_LENGTH} random bytes naming this one write. `update()` sets
   * it, so that after losing the server's answer it can tell its own write from
   * an identical one by another writer.
   */
  writeId?: Uint8Array | undefined;
}

/** Options of {@link encodeEnvelope}. */
export interface EncodeOptions {
  /** Compress with DEFLATE when it saves space (default true). */
  compress?: boolean;
}

/** Builds the stored bytes of one entry. */
export function encodeEnvelope(fields: EnvelopeFields, options: EncodeOptions = {}): Uint8Array {
  const { value, modifiedAt, expiresAt, fullKey, text, writeId } = fields;
  if (writeId !== undefined && writeId.length !== WRITE_ID_LENGTH) throw new RangeError(`a write id is ${WRITE_ID_LENGTH} bytes, got ${writeId.length}`);
  for (const [name, time] of [
    ['modifiedAt', modifiedAt],
    ['expiresAt', expiresAt],
  ] as const) {
    if (time !== undefined && !(Number.isSafeInteger(Math.trunc(time)) && time >= 0)) {
      throw new RangeError(`${name} must be a whole number of milliseconds from 0 to 2^53-1, got ${time}`);
    }
  }
  let payload = value;
  let flags = text ? FLAG_TEXT : 0;
  if (options.compress !== false && value.length >= COMPRESSION_THRESHOLD) {
    const deflated = deflateSync(value, { level: 6 });
    if (deflated.length < value.length) {
      payload = deflated;
      flags |= FLAG_DEFLATE;
    }
  }
  if (expiresAt !== undefined) flags |= FLAG_EXPIRES;
  if (fullKey !== undefined) flags |= FLAG_FULL_KEY;
  if (writeId !== undefined) flags |= FLAG_WRITE_ID;
  const compressed = (flags & FLAG_DEFLATE) !== 0;
  const headerLength =
    3 +
    8 +
    (expiresAt !== undefined ? 8 : 0) +
    (writeId !== undefined ? WRITE_ID_LENGTH : 0) +
    (fullKey !== undefined ? 2 + fullKey.length : 0) +
    (compressed ? 4 : 0) +
    4;
  const out = new Uint8Array(headerLength + payload.length);
  const view = new DataView(out.buffer);
  out[0] = ENVELOPE_MAGIC;
  out[1] = ENVELOPE_VERSION;
  out[2] = flags;
  let at = 3;
  view.setBigUint64(at, BigInt(Math.max(0, Math.trunc(modifiedAt))));
  at += 8;
  if (expiresAt !== undefined) {
    view.setBigUint64(at, BigInt(Math.max(0, Math.trunc(expiresAt))));
    at += 8;
  }
  if (writeId !== undefined) {
    out.set(writeId, at);
    at += WRITE_ID_LENGTH;
  }
  if (fullKey !== undefined) {
    if (fullKey.length > 0xffff || !/^[\x21-\x7e]*$/.test(fullKey)) throw new RangeError('full key must be printable ASCII of at most 65535 characters');
    view.setUint16(at, fullKey.length);
    at += 2;
    for (let i = 0; i < fullKey.length; i++) out[at + i] = fullKey.charCodeAt(i);
    at += fullKey.length;
  }
  if (compressed) {
    view.setUint32(at, value.length);
    at += 4;
  }
  view.setUint32(at, crc32(value));
  at += 4;
  out.set(payload, at);
  return out;
}

/** Why an envelope could not be decoded. */
export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
}

/** Reads the header only (cheap: no decompression, no checksum). */
export interface EnvelopeHeader {
  /** Modified time, ms since the epoch. */
  modifiedAt: number;
  /** Expiry time, ms since the epoch, if any. */
  expiresAt: number | undefined;
  /** Full encoded key, if the data key is a hash. */
  fullKey: string | undefined;
  /** The write id, if the writer set one. */
  writeId: Uint8Array | undefined;
  /** True when the value was stored as text. */
  text: boolean;
  /** True when the payload is deflated. */
  compressed: boolean;
  /** Length of the uncompressed value (known from the header when compressed, else the payload length). */
  valueLength: number;
  /** Offset of the CRC-32 field. */
  crcOffset: number;
}

/** Parses the header of an envelope; throws {@link EnvelopeError} when it is malformed. */
export function decodeEnvelopeHeader(bytes: Uint8Array): EnvelopeHeader {
  if (bytes.length < 15) throw new EnvelopeError(`too short (${bytes.length} bytes)`);
  if (bytes[0] !== ENVELOPE_MAGIC) throw new EnvelopeError('not a k8s-kv entry (bad magic byte)');
  if (bytes[1] !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported format version ${bytes[1]}; upgrade @k8s-kv/core`);
  const flags = bytes[2]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new EnvelopeError('unknown flags');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 3;
  const modifiedAt = Number(view.getBigUint64(at));
  at += 8;
  let expiresAt: number | undefined;
  if (flags & FLAG_EXPIRES) {
    if (bytes.length < at + 8 + 4) throw new EnvelopeError('truncated header');
    expiresAt = Number(view.getBigUint64(at));
    at += 8;
  }
  let writeId: Uint8Array | undefined;
  if (flags & FLAG_WRITE_ID) {
    if (bytes.length < at + WRITE_ID_LENGTH + 4) throw new EnvelopeError('truncated header');
    writeId = bytes.slice(at, at + WRITE_ID_LENGTH);
    at += WRITE_ID_LENGTH;
  }
  let fullKey: string | undefined;
  if (flags & FLAG_FULL_KEY) {
    if (bytes.length < at + 2) throw new EnvelopeError('truncated header');
    const length = view.getUint16(at);
    at += 2;
    if (bytes.length < at + length + 4) throw new EnvelopeError('truncated key');
    fullKey = String.fromCharCode(...bytes.subarray(at, at + length));
    at += length;
  }
  const compressed = (flags & FLAG_DEFLATE) !== 0;
  let valueLength = 0;
  if (compressed) {
    if (bytes.length < at + 4 + 4) throw new EnvelopeError('truncated header');
    valueLength = view.getUint32(at);
    at += 4;
  }
  if (bytes.length < at + 4) throw new EnvelopeError('truncated header');
  const payloadLength = bytes.length - at - 4;
  if (!compressed) valueLength = payloadLength;
  // DEFLATE cannot expand data more than 1032:1; a larger claim is damage, not data (and must not be allocated).
  else if (valueLength > payloadLength * 1032 + 1032) throw new EnvelopeError('uncompressed length is impossible for the payload');
  return {
    modifiedAt,
    expiresAt,
    fullKey,
    writeId,
    text: (flags & FLAG_TEXT) !== 0,
    compressed,
    valueLength,
    crcOffset: at,
  };
}

/** Decodes a whole envelope, verifying its checksum; throws {@link EnvelopeError} when malformed. */
export function decodeEnvelope(bytes: Uint8Array): EnvelopeFields {
  const header = decodeEnvelopeHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const expectedCrc = view.getUint32(header.crcOffset);
  const payload = bytes.subarray(header.crcOffset + 4);
  let value: Uint8Array;
  if (header.compressed) {
    if (payload.length === 0) throw new EnvelopeError('deflate flag set on an empty payload');
    try {
      // With the output buffer sized from the header, fflate inflates without regrowing it (about 14x
      // faster on small values). One spare byte: a stream longer than the header says overflows into
      // it and is rejected below, instead of being cut short silently.
      value = inflateSync(payload, { out: new Uint8Array(header.valueLength + 1) });
    } catch (error) {
      throw new EnvelopeError(`payload does not inflate (${(error as Error).message})`);
    }
    if (value.length !== header.valueLength) throw new EnvelopeError('uncompressed length does not match the header');
  } else {
    value = payload.slice();
  }
  if (crc32(value) >>> 0 !== expectedCrc) throw new EnvelopeError('checksum mismatch');
  return {
    value,
    text: header.text,
    modifiedAt: header.modifiedAt,
    expiresAt: header.expiresAt,
    fullKey: header.fullKey,
    ...(header.writeId ? { writeId: header.writeId } : {}),
  };
}
