/**
 * The test vectors of docs/FORMAT.md: the code must still produce exactly these
 * bytes, its decoders must read them back, and the vector sections of the
 * document must match the vectors file. After an intended format change,
 * regenerate with `node scripts/gen-format-vectors.mjs` (and bump the format
 * version if old entries no longer read).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, decodeEnvelopeHeader, encodeEnvelope, EnvelopeError } from '../src/codec/envelope.ts';
import { decodeKey, decodeKeyFull, encodeKey } from '../src/codec/key-codec.ts';
import { entryValue, snapshotOf } from '../src/engine/snapshot.ts';
import { CorruptEntryError } from '../src/errors.ts';
import { dataKeyError } from '../src/kube/object-rules.ts';
import { buildVectors, FORMAT_DOC_PATH, renderSections, replaceSections, VECTORS_PATH } from '../../../scripts/gen-format-vectors.mjs';

interface KeyVector {
  name: string;
  key: string;
  utf16: string;
  fullKey: string;
  dataKey: string;
  hashed: boolean;
  hashedPrefix?: string;
  sha256?: string;
}
interface EnvelopeVector {
  name: string;
  input: {
    valueHex: string;
    valueText?: string;
    text: boolean;
    modifiedAt: number;
    expiresAt: number | null;
    fullKey: string | null;
    writeId: string | null;
    compress: boolean;
  };
  hex: string;
  base64: string;
  layout: {
    magic: number;
    version: number;
    flags: number;
    flagNames: string[];
    modifiedAt: number;
    modifiedAtHex: string;
    expiresAt: number | null;
    writeId: string | null;
    fullKeyLength: number | null;
    fullKey: string | null;
    valueLength: number;
    crcOffset: number;
    crc32: string;
    headerLength: number;
    payloadLength: number;
    payloadHex: string;
  };
  entry?: { key: string; dataKey: string };
}
interface Vectors {
  formatVersion: number;
  keys: KeyVector[];
  invalidDataKeys: Array<{ dataKey: string; why: string; display?: string }>;
  envelopes: EnvelopeVector[];
  acceptedEnvelopes: Array<{
    name: string;
    hex: string;
    expect: { valueHex: string; text: boolean; modifiedAt: number; expiresAt: number | null; fullKey: string | null };
  }>;
  invalidEnvelopes: Array<{ name: string; hex: string; headerRejected: boolean }>;
}

const vectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vectors;
const fromHex = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
const orUndefined = <T>(value: T | null) => (value === null ? undefined : value);

describe('format vectors: keys', () => {
  it('covers the cases docs/FORMAT.md promises', () => {
    const keys = new Set(vectors.keys.map((v) => v.key));
    for (const key of ['', '.', '..', '.hidden', 'a.b', '_', 'a_b', 'user:42', 'a/b/c', ' ', '$', '\uD800', '😀', 'x'.repeat(300)])
      expect(keys.has(key), JSON.stringify(key)).toBe(true);
    expect(vectors.keys.some((v) => /é/.test(v.key))).toBe(true);
    expect(vectors.keys.some((v) => /日本/.test(v.key))).toBe(true);
    // Hashed data keys with the longest (187) and the shortest (176) readable prefix.
    expect(vectors.keys.some((v) => v.hashedPrefix?.length === 187)).toBe(true);
    expect(vectors.keys.some((v) => v.hashedPrefix?.length === 176)).toBe(true);
  });

  it.each(vectors.keys.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    // The JSON string and the UTF-16 code units agree (JSON keeps lone surrogates as \ud800 escapes).
    expect(v.utf16).toBe(Array.from({ length: v.key.length }, (_, i) => v.key.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')).join(' '));
    expect(encodeKey(v.key)).toEqual({ dataKey: v.dataKey, hashed: v.hashed, fullKey: v.fullKey });
    expect(dataKeyError(v.dataKey)).toBeUndefined();
    expect(decodeKeyFull(v.fullKey)).toEqual({ kind: 'plain', key: v.key });
    if (v.hashed) {
      expect(decodeKey(v.dataKey)).toEqual({ kind: 'hashed' });
      expect(v.fullKey.length).toBeGreaterThan(253);
      expect(v.dataKey).toBe(`${v.hashedPrefix}_h${v.sha256}`);
      expect(v.sha256).toBe(createHash('sha256').update(v.fullKey, 'ascii').digest('hex'));
      expect(v.hashedPrefix!.length).toBeLessThanOrEqual(187);
      expect(v.hashedPrefix!.length).toBeGreaterThanOrEqual(176);
      expect(v.fullKey.startsWith(v.hashedPrefix!)).toBe(true);
    } else {
      expect(v.dataKey).toBe(v.fullKey);
      expect(decodeKey(v.dataKey)).toEqual({ kind: 'plain', key: v.key });
    }
  });

  it.each(vectors.invalidDataKeys.map((v) => [v.dataKey, v.why] as const))('rejects data key %j (%s)', (dataKey) => {
    expect(decodeKey(dataKey)).toMatchObject({ kind: 'invalid' });
  });
});

describe('format vectors: envelopes', () => {
  it.each(vectors.envelopes.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const fields = {
      value: fromHex(v.input.valueHex),
      text: v.input.text,
      modifiedAt: v.input.modifiedAt,
      expiresAt: orUndefined(v.input.expiresAt),
      fullKey: orUndefined(v.input.fullKey),
      ...(v.input.writeId === null ? {} : { writeId: fromHex(v.input.writeId) }),
    };
    const bytes = encodeEnvelope(fields, { compress: v.input.compress });
    expect(toHex(bytes)).toBe(v.hex);
    expect(Buffer.from(bytes).toString('base64')).toBe(v.base64);
    if (v.input.valueText !== undefined) expect(new TextDecoder().decode(fields.value)).toBe(v.input.valueText);

    const stored = fromHex(v.hex);
    expect(decodeEnvelope(stored)).toEqual(fields);
    expect(decodeEnvelopeHeader(stored)).toEqual({
      modifiedAt: v.layout.modifiedAt,
      expiresAt: orUndefined(v.layout.expiresAt),
      fullKey: orUndefined(v.layout.fullKey),
      writeId: v.layout.writeId === null ? undefined : fromHex(v.layout.writeId),
      text: v.input.text,
      compressed: (v.layout.flags & 1) === 1,
      valueLength: fields.value.length,
      crcOffset: v.layout.crcOffset,
    });

    // The layout the document describes.
    const L = v.layout;
    expect([L.magic, L.version]).toEqual([0x4b, 1]);
    expect(stored[2]).toBe(L.flags);
    expect(L.flags & 0xe0).toBe(0);
    expect(!!(L.flags & 16)).toBe(v.input.writeId !== null);
    expect(!!(L.flags & 2)).toBe(v.input.expiresAt !== null);
    expect(!!(L.flags & 4)).toBe(v.input.fullKey !== null);
    expect(!!(L.flags & 8)).toBe(v.input.text);
    expect(v.hex.slice(6, 22)).toBe(L.modifiedAtHex);
    expect(BigInt('0x' + L.modifiedAtHex)).toBe(BigInt(v.input.modifiedAt));
    // The write id follows the modified time and the expiry.
    if (L.writeId !== null) expect(v.hex.slice((11 + (L.expiresAt !== null ? 8 : 0)) * 2, (19 + (L.expiresAt !== null ? 8 : 0)) * 2)).toBe(L.writeId);
    expect(L.crcOffset).toBe(
      11 + (L.expiresAt !== null ? 8 : 0) + (L.writeId !== null ? 8 : 0) + (L.fullKey !== null ? 2 + L.fullKey.length : 0) + (L.flags & 1 ? 4 : 0),
    );
    expect(L.valueLength).toBe(fields.value.length);
    // Deflated: the uncompressed length (uint32) sits right before the CRC.
    if (L.flags & 1) expect(v.hex.slice((L.crcOffset - 4) * 2, L.crcOffset * 2)).toBe(fields.value.length.toString(16).padStart(8, '0'));
    expect(L.headerLength).toBe(L.crcOffset + 4);
    expect(L.crc32).toBe(crc32(fields.value).toString(16).padStart(8, '0'));
    expect(v.hex.slice(L.headerLength * 2)).toBe(L.payloadHex);
    expect(L.payloadLength * 2).toBe(L.payloadHex.length);
    if (L.flags & 1) expect(L.payloadLength).toBeLessThan(fields.value.length);
    else expect(L.payloadHex).toBe(v.input.valueHex);

    if (v.entry) {
      const encoded = encodeKey(v.entry.key);
      expect(encoded).toMatchObject({ dataKey: v.entry.dataKey, hashed: true, fullKey: v.input.fullKey });
    }
  });

  it.each(vectors.acceptedEnvelopes.map((v) => [v.name, v] as const))('reads %s', (_name, v) => {
    expect(decodeEnvelope(fromHex(v.hex))).toEqual({
      value: fromHex(v.expect.valueHex),
      text: v.expect.text,
      modifiedAt: v.expect.modifiedAt,
      expiresAt: orUndefined(v.expect.expiresAt),
      fullKey: orUndefined(v.expect.fullKey),
    });
  });

  it('covers the checks of the uncompressed length', () => {
    const names = vectors.invalidEnvelopes.map((v) => v.name);
    expect(names.some((n) => /length 1 more than the DEFLATE stream/.test(n))).toBe(true);
    expect(names.some((n) => /length 1 less than the DEFLATE stream/.test(n))).toBe(true);
    expect(vectors.invalidEnvelopes.filter((v) => /uncompressed length impossible/.test(v.name)).every((v) => v.headerRejected)).toBe(true);
    expect(vectors.invalidEnvelopes.some((v) => /uncompressed length impossible/.test(v.name))).toBe(true);
    expect(vectors.invalidEnvelopes.some((v) => /at the DEFLATE limit/.test(v.name) && !v.headerRejected)).toBe(true);
  });

  it.each(vectors.invalidEnvelopes.map((v) => [v.name, v] as const))('rejects %s', (_name, v) => {
    const bytes = fromHex(v.hex);
    expect(() => decodeEnvelope(bytes)).toThrow(EnvelopeError);
    if (v.headerRejected) expect(() => decodeEnvelopeHeader(bytes)).toThrow(EnvelopeError);
    else expect(() => decodeEnvelopeHeader(bytes)).not.toThrow();
  });
});

describe('format vectors: a bucket built from them', () => {
  const labels = { 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/app': 'default', 'k8s-kv.io/bucket': 'vectors' };
  const metadata = { name: 'vectors', uid: 'u', resourceVersion: '1', labels, annotations: { 'k8s-kv.io/format': '1' } };

  it('reads every envelope vector under its data key', () => {
    const binaryData: Record<string, string> = {};
    const expected = new Map<string, EnvelopeVector>();
    vectors.envelopes.forEach((v, i) => {
      const key = v.entry?.key ?? `vector-${i + 1}`;
      binaryData[v.entry?.dataKey ?? encodeKey(key).dataKey] = v.base64;
      expected.set(key, v);
    });
    const snapshot = snapshotOf('ConfigMap', { metadata, binaryData });
    expect(snapshot.corrupt).toEqual([]);
    expect(new Set(snapshot.entries.keys())).toEqual(new Set(expected.keys()));
    for (const [key, v] of expected) expect(toHex(entryValue(snapshot.entries.get(key)!))).toBe(v.input.valueHex);
    expect(snapshot.totalBytes).toBe(vectors.envelopes.reduce((sum, v) => sum + v.hex.length / 2, 0));
  });

  it('skips and reports damaged entries without failing the bucket', () => {
    const good = vectors.envelopes[0]!;
    const binaryData: Record<string, string> = { good: good.base64 };
    vectors.invalidEnvelopes.forEach((v, i) => {
      binaryData[`bad-${i}`] = Buffer.from(v.hex, 'hex').toString('base64');
    });
    for (const v of vectors.invalidDataKeys) if (dataKeyError(v.dataKey) === undefined) binaryData[v.dataKey] = good.base64;
    // A hashed data key whose envelope carries another key, and one whose envelope carries none.
    const hashed = vectors.envelopes.find((v) => v.entry)!;
    binaryData['y'.repeat(187) + '_h' + hashed.entry!.dataKey.slice(-64)] = hashed.base64;
    binaryData[hashed.entry!.dataKey] = good.base64;

    const snapshot = snapshotOf('ConfigMap', { metadata, binaryData, data: { 'hand-written': 'text' } });
    expect(snapshot.entries.get('good')).toBeDefined();
    expect(toHex(entryValue(snapshot.entries.get('good')!))).toBe(good.input.valueHex);
    for (const error of snapshot.corrupt) expect(error).toBeInstanceOf(CorruptEntryError);
    // Every invalid envelope is corrupt at once, also those whose header reads (a damaged
    // payload or checksum): every read call gives the same answer about them.
    expect([...snapshot.entries.keys()]).toEqual(['good']);
    for (let i = 0; i < vectors.invalidEnvelopes.length; i++) expect(snapshot.corruptByDataKey.has(`bad-${i}`)).toBe(true);
    expect(snapshot.corrupt.length + snapshot.entries.size).toBe(Object.keys(binaryData).length + 1);
    expect(snapshot.corruptByDataKey.has('hand-written')).toBe(true);
    expect(snapshot.corruptByDataKey.has(hashed.entry!.dataKey)).toBe(true);
  });
});

describe('format vectors: up to date', () => {
  it('the vectors file is what the generator makes from the code', () => {
    expect(buildVectors()).toEqual(vectors);
  });

  it('the vector sections of docs/FORMAT.md match the vectors file', () => {
    const doc = readFileSync(FORMAT_DOC_PATH, 'utf8');
    expect(replaceSections(doc, renderSections(vectors))).toBe(doc);
  });

  it('the example object of docs/FORMAT.md holds vector E1 under the data key of "user:42"', () => {
    const doc = readFileSync(FORMAT_DOC_PATH, 'utf8');
    expect(doc).toContain(`  ${encodeKey('user:42').dataKey}: ${vectors.envelopes[0]!.base64}\n`);
    expect(vectors.envelopes[0]!.input.valueText).toBe('hello, world');
  });
});
