/**
 * One entry as it is written: the key through the key codec, the value through
 * the envelope, base64 for the object's map. Pure.
 */
import { encodeEnvelope } from './envelope.ts';
import { encodeKey } from './key-codec.ts';

/** One entry ready to be written. */
export interface PreparedEntry {
  /** The user's key. */
  key: string;
  /** Its data key in the object's map. */
  dataKey: string;
  /** The envelope, base64, as the map holds it. */
  b64: string;
  /** Bytes of the envelope (what the API server counts against the object's limit). */
  size: number;
}

/** What an entry is made of. */
export interface EntryFields {
  key: string;
  value: Uint8Array;
  /** True when the value was given as a string. */
  text: boolean;
  /** Write time, ms since the epoch. */
  now: number;
  /** Time to live in ms, if any. */
  ttl?: number | undefined;
  /** Compress the value when DEFLATE makes it smaller. */
  compress: boolean;
  /** The write id of an `update`'s write (docs/FORMAT.md section 3). */
  writeId?: Uint8Array | undefined;
}

/** Encodes one entry. */
export function prepareEntry(fields: EntryFields): PreparedEntry {
  const { key, value, text, now, ttl, compress, writeId } = fields;
  const encoded = encodeKey(key);
  const envelope = encodeEnvelope(
    { value, text, modifiedAt: now, expiresAt: ttl === undefined ? undefined : now + ttl, fullKey: encoded.hashed ? encoded.fullKey : undefined, writeId },
    { compress },
  );
  return {
    key,
    dataKey: encoded.dataKey,
    b64: Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64'),
    size: envelope.length,
  };
}
