#!/usr/bin/env node
// Storage-format test vectors, generated from the reference code in
// packages/core/src/codec (never written by hand).
//
//   node scripts/gen-format-vectors.mjs          write packages/core/test/vectors/format-vectors.json
//                                                and the generated sections of docs/FORMAT.md
//   node scripts/gen-format-vectors.mjs --check  exit 1 when either is out of date
//
// Also a module (packages/core/test/format-vectors.test.ts imports it):
// buildVectors(), renderSections(vectors), replaceSections(markdown, sections),
// VECTORS_PATH, FORMAT_DOC_PATH.
//
// Needs Node >= 22.18 (it imports the TypeScript sources directly).

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { decodeEnvelope, decodeEnvelopeHeader, encodeEnvelope, EnvelopeError } from '../packages/core/src/codec/envelope.ts';
import { decodeKey, decodeKeyFull, encodeKey } from '../packages/core/src/codec/key-codec.ts';
import { shardHash, shardIndex, shardName } from '../packages/core/src/codec/shard-hash.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const VECTORS_PATH = join(ROOT, 'packages/core/test/vectors/format-vectors.json');
export const FORMAT_DOC_PATH = join(ROOT, 'docs/FORMAT.md');

const utf8 = new TextEncoder();
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const utf16 = (s) => Array.from({ length: s.length }, (_, i) => s.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')).join(' ');

/** Deterministic incompressible bytes (a SHA-256 chain). */
function noise(length) {
  const out = new Uint8Array(length);
  let block = createHash('sha256').update('k8s-kv format vectors').digest();
  for (let at = 0; at < length; at += 32) {
    out.set(block.subarray(0, Math.min(32, length - at)), at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** The keys of the key-encoding table: [name, key, display (for keys too long to print)]. */
const KEY_CASES = [
  ['ordinary', 'hello'],
  ['ordinary: letters, digits, "-"', 'Hello-World-42'],
  ['"." inside', 'a.b'],
  ['dotted name', 'app.config.v2'],
  ['empty key', ''],
  ['"."', '.'],
  ['".."', '..'],
  ['leading "."', '.hidden'],
  ['trailing ".."', 'a..'],
  ['"..."', '...'],
  ['"_"', '_'],
  ['"_" inside', 'a_b'],
  ['looks like the hash mark', '_h'],
  ['looks like a surrogate escape', '_uD800'],
  ['":"', 'user:42'],
  ['"/"', 'a/b/c'],
  ['space', ' '],
  ['space inside', 'hello world'],
  ['"$"', '$'],
  ['"~"', '~'],
  ['"%"', '%41'],
  ['NUL', '\u0000'],
  ['é (2 UTF-8 bytes)', 'café'],
  ['CJK (3 UTF-8 bytes each)', '日本'],
  ['emoji (astral, 4 UTF-8 bytes)', '😀'],
  ['emoji + skin-tone modifier', '👍🏽'],
  ['byte order mark', '\uFEFF'],
  ['lone high surrogate', '\uD800'],
  ['lone low surrogate, then "x"', '\uDC00x'],
  ['high surrogate at the end', 'a\uD83D'],
  ['surrogates in the wrong order', '\uDE00\uD83D'],
  ['253 characters: longest unhashed', 'a'.repeat(253), '"a" × 253'],
  ['254 characters: hashed', 'a'.repeat(254), '"a" × 254'],
  ['300 characters: hashed', 'x'.repeat(300), '"x" × 300'],
  ['84 × "/": encodes to 252 characters, unhashed', '/'.repeat(84), '"/" × 84'],
  ['85 × "/": encodes to 255 characters, hashed', '/'.repeat(85), '"/" × 85'],
  ['300 × "é": hashed, prefix cut at a unit boundary', 'é'.repeat(300), '"é" × 300'],
  ['176 × "x", then emoji: hashed, shortest readable prefix (176 characters)', 'x'.repeat(176) + '😀'.repeat(10), '"x" × 176 + "😀" × 10'],
];

/** 64 lowercase hex digits, for hash-shaped data keys. */
const HASH = '0123456789abcdef'.repeat(4);

/** Data keys that no key encodes to: a reader must report them (decodeKey gives "invalid"). [data key, why, display (for long ones)] */
const INVALID_DATA_KEYS = [
  ['', 'empty'],
  ['_41', '"A" must stand for itself'],
  ['_2e', 'escapes use uppercase hex digits'],
  ['_2E_2E', '".." is written "_2E." (a "." after the first character stands for itself)'],
  ['.a', 'a leading "." must be escaped as "_2E"'],
  ['a_', 'an escape character with nothing after it'],
  ['_x', 'unknown escape'],
  ['_5F', '"_" must be written "__"'],
  ['_C3', 'incomplete UTF-8 sequence'],
  ['_C3_A9_A9', 'a stray continuation byte'],
  ['_C0_80', 'overlong UTF-8'],
  ['_ED_A0_80', 'UTF-8 form of a surrogate (a lone surrogate is written "_uD800")'],
  ['_F4_90_80_80', 'beyond U+10FFFF'],
  ['_uD83D_uDE00', 'a surrogate pair is one code point: it must be written as UTF-8 ("_F0_9F_98_80")'],
  ['_ud800', 'surrogate escapes use uppercase hex digits'],
  ['_uE000', '"_u" only escapes surrogates (U+D800-U+DFFF)'],
  ['_uD80', 'truncated surrogate escape'],
  ['x'.repeat(187) + '_hxyz', '"_h" not followed by exactly 64 lowercase hex digits', '"x" × 187 + "_hxyz"'],
  ['x'.repeat(187) + '_h' + 'A'.repeat(64), 'hash in uppercase hex', '"x" × 187 + "_h" + "A" × 64'],
  ['x'.repeat(187) + '_h' + '0'.repeat(63), '63 hex digits', '"x" × 187 + "_h" + "0" × 63'],
  ['x'.repeat(186) + '_h' + '0'.repeat(64) + 'b', 'characters after the hash', '"x" × 186 + "_h" + "0" × 64 + "b"'],
  ['x'.repeat(188) + '_h' + HASH, '"_h" after index 187: the readable prefix is too long', '"x" × 188 + "_h" + 64 hex digits'],
  [
    'x'.repeat(175) + '_h' + HASH,
    '"_h" before index 176: the encoder keeps at least 176 characters (whole units of at most 12)',
    '"x" × 175 + "_h" + 64 hex digits',
  ],
  ['a_h' + HASH, 'readable prefix of 1 character', '"a_h" + 64 hex digits'],
  ['.' + 'x'.repeat(186) + '_h' + HASH, 'hashed key whose readable prefix is not canonical (a leading "." is "_2E")', '"." + "x" × 186 + "_h" + 64 hex digits'],
  [
    'x'.repeat(175) + '_uD83D_uDE00' + '_h' + HASH,
    'hashed key whose readable prefix is not canonical (a surrogate pair is written as UTF-8)',
    '"x" × 175 + "_uD83D_uDE00_h" + 64 hex digits',
  ],
  ['a b', 'space is not a data-key character'],
];

const T0 = 1_700_000_000_000;

/** The envelopes: name, fields, options, and the user key when the data key is hashed. */
function envelopeCases() {
  const hashedKey = 'x'.repeat(300);
  const allFlagsKey = '/'.repeat(85);
  return [
    { name: 'text value, uncompressed', fields: { value: utf8.encode('hello, world'), text: true, modifiedAt: T0 } },
    { name: 'binary value', fields: { value: Uint8Array.of(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff), text: false, modifiedAt: T0 + 123 } },
    { name: 'empty value, time 0', fields: { value: new Uint8Array(0), text: true, modifiedAt: 0 } },
    { name: 'compressible 200-byte value: deflated', fields: { value: utf8.encode('abcdefghij'.repeat(20)), text: true, modifiedAt: T0 } },
    { name: '63 compressible bytes: below the threshold, stored as is', fields: { value: utf8.encode('a'.repeat(63)), text: true, modifiedAt: T0 } },
    { name: '64 compressible bytes: at the threshold, deflated', fields: { value: utf8.encode('a'.repeat(64)), text: true, modifiedAt: T0 } },
    { name: '100 incompressible bytes: DEFLATE is not smaller, stored as is', fields: { value: noise(100), text: false, modifiedAt: T0 } },
    {
      name: 'compressible 200-byte value, writer compression off',
      fields: { value: utf8.encode('abcdefghij'.repeat(20)), text: true, modifiedAt: T0 },
      options: { compress: false },
    },
    { name: 'with expiry (TTL 60 s)', fields: { value: utf8.encode('session-data'), text: true, modifiedAt: T0, expiresAt: T0 + 60_000 } },
    {
      name: 'hashed key: full key inside',
      key: hashedKey,
      fields: { value: utf8.encode('v'), text: true, modifiedAt: T0, fullKey: encodeKey(hashedKey).fullKey },
    },
    {
      name: 'every flag: deflated, expiry, full key, text',
      key: allFlagsKey,
      fields: { value: utf8.encode('abcdefghij'.repeat(20)), text: true, modifiedAt: T0, expiresAt: T0 + 3_600_000, fullKey: encodeKey(allFlagsKey).fullKey },
    },
    {
      name: 'write id (an update), with expiry',
      fields: {
        value: utf8.encode('42'),
        text: true,
        modifiedAt: T0,
        expiresAt: T0 + 60_000,
        writeId: Uint8Array.of(0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef),
      },
    },
    { name: 'extreme times: modified 2^53-1, expiry 0', fields: { value: utf8.encode('z'), text: false, modifiedAt: Number.MAX_SAFE_INTEGER, expiresAt: 0 } },
  ];
}

/** Envelopes another writer may produce and a reader must accept (hand-built, not by encodeEnvelope). */
function acceptedCases() {
  const hi = utf8.encode('hi');
  const build = (flags, payload, value) => {
    const lengthField = flags & 0x01 ? 4 : 0;
    const out = Buffer.alloc(15 + lengthField + payload.length);
    out[0] = 0x4b;
    out[1] = 1;
    out[2] = flags;
    out.writeBigUInt64BE(BigInt(T0), 3);
    if (lengthField) out.writeUInt32BE(value.length, 11);
    out.writeUInt32BE(crc32(value), 11 + lengthField);
    out.set(payload, 15 + lengthField);
    return new Uint8Array(out);
  };
  // Raw DEFLATE, one final stored block: 0x01, LEN and NLEN (16-bit little-endian), the bytes.
  const stored = Uint8Array.of(0x01, hi.length, 0x00, ~hi.length & 0xff, 0xff, ...hi);
  return [
    {
      name: '2-byte text value deflated as one stored block (larger than the value, below the threshold)',
      bytes: build(0x01 | 0x08, stored, hi),
      expect: { value: hi, text: true, modifiedAt: T0 },
    },
  ];
}

/**
 * Malformed envelopes, derived from the "text value, uncompressed" vector (`base`) and
 * from the first deflated vector (`compressed`: no expiry, no full key, so its
 * uncompressed length is at offset 11).
 */
function invalidEnvelopeCases(base, compressed) {
  const mutate = (bytes, at, value) => {
    const copy = Uint8Array.from(bytes);
    copy[at] = value;
    return copy;
  };
  const withFlags = (bytes, flags) => mutate(bytes, 2, flags);
  if (compressed[2] !== 0x09) fail('the first deflated envelope vector must have flags deflate | text only');
  const lengthOf = (bytes) => Buffer.from(bytes).readUInt32BE(11);
  const withLength = (bytes, length) => {
    const copy = Buffer.from(bytes);
    copy.writeUInt32BE(length, 11);
    return new Uint8Array(copy);
  };
  const valueLength = lengthOf(compressed);
  const payloadLength = compressed.length - 19;
  // The deflate flag set on the uncompressed vector, with a length field inserted so that the header is valid.
  const notDeflate = Uint8Array.from([...withFlags(base, base[2] | 0x01).subarray(0, 11), 0, 0, 0, base.length - 15, ...base.subarray(11)]);
  return [
    ['empty', new Uint8Array(0)],
    ['14 bytes: shorter than the smallest header', base.subarray(0, 14)],
    ['bad magic byte', mutate(base, 0, 0x4a)],
    ['version 0', mutate(base, 1, 0)],
    ['version 2 (newer than this reader)', mutate(base, 1, 2)],
    ['unknown flag bit 5', withFlags(base, base[2] | 0x20)],
    ['write-id flag set, header too short for it', withFlags(base.subarray(0, 22), base[2] | 0x10)],
    ['unknown flag bit 7', withFlags(base, base[2] | 0x80)],
    ['value byte changed: checksum mismatch', mutate(base, base.length - 1, base[base.length - 1] ^ 0x01)],
    ['checksum byte changed', mutate(base, 11, base[11] ^ 0x80)],
    ['value truncated', base.subarray(0, base.length - 1)],
    ['expiry flag set, header too short for it', withFlags(base.subarray(0, 22), base[2] | 0x02)],
    ['full-key flag set, key length beyond the end', Uint8Array.from([...withFlags(base, base[2] | 0x04).subarray(0, 11), 0xff, 0xff, 0, 0, 0, 0])],
    ['deflate flag set on a payload that is not DEFLATE', notDeflate],
    ['DEFLATE payload truncated', compressed.subarray(0, compressed.length - 2)],
    ['deflate flag set, header too short for the uncompressed length', compressed.subarray(0, 18)],
    ['uncompressed length 1 more than the DEFLATE stream holds', withLength(compressed, valueLength + 1)],
    ['uncompressed length 1 less than the DEFLATE stream holds', withLength(compressed, valueLength - 1)],
    ['uncompressed length 0 for a non-empty DEFLATE stream', withLength(compressed, 0)],
    [
      `uncompressed length at the DEFLATE limit (${payloadLength} × 1032 + 1032), more than the stream holds`,
      withLength(compressed, payloadLength * 1032 + 1032),
    ],
    [
      `uncompressed length impossible for DEFLATE: ${payloadLength} × 1032 + 1032 + 1 for a ${payloadLength}-byte payload`,
      withLength(compressed, payloadLength * 1032 + 1032 + 1),
    ],
    ['uncompressed length 2^32 - 1', withLength(compressed, 0xffffffff)],
  ];
}

function fail(message) {
  throw new Error(`gen-format-vectors: ${message}`);
}

function envelopeLayout(bytes) {
  const header = decodeEnvelopeHeader(bytes);
  const flags = bytes[2];
  const names = [];
  if (flags & 1) names.push('deflate');
  if (flags & 2) names.push('expiry');
  if (flags & 4) names.push('fullKey');
  if (flags & 8) names.push('text');
  if (flags & 16) names.push('writeId');
  const payload = bytes.subarray(header.crcOffset + 4);
  return {
    magic: bytes[0],
    version: bytes[1],
    flags,
    flagNames: names,
    modifiedAt: header.modifiedAt,
    modifiedAtHex: hex(bytes.subarray(3, 11)),
    expiresAt: header.expiresAt ?? null,
    writeId: header.writeId === undefined ? null : hex(header.writeId),
    fullKeyLength: header.fullKey === undefined ? null : header.fullKey.length,
    fullKey: header.fullKey ?? null,
    valueLength: header.valueLength,
    crcOffset: header.crcOffset,
    crc32: hex(bytes.subarray(header.crcOffset, header.crcOffset + 4)),
    headerLength: header.crcOffset + 4,
    payloadLength: payload.length,
    payloadHex: hex(payload),
  };
}

function rejects(fn) {
  try {
    fn();
  } catch (error) {
    if (error instanceof EnvelopeError) return true;
    throw error;
  }
  return false;
}

/** Builds every vector from the code. Pure and deterministic. */
export function buildVectors() {
  const keys = KEY_CASES.map(([name, key, display]) => {
    const encoded = encodeKey(key);
    const decoded = decodeKey(encoded.dataKey);
    const back = encoded.hashed ? decodeKeyFull(encoded.fullKey) : decoded;
    if (back.kind !== 'plain' || back.key !== key) fail(`key ${JSON.stringify(name)} does not decode back`);
    if (encoded.hashed && decoded.kind !== 'hashed') fail(`hashed key ${JSON.stringify(name)} does not decode as hashed`);
    const vector = { name, key, utf16: utf16(key), fullKey: encoded.fullKey, dataKey: encoded.dataKey, hashed: encoded.hashed };
    if (encoded.hashed) {
      const mark = encoded.dataKey.length - 66;
      vector.hashedPrefix = encoded.dataKey.slice(0, mark);
      vector.sha256 = encoded.dataKey.slice(mark + 2);
      if (createHash('sha256').update(encoded.fullKey, 'latin1').digest('hex') !== vector.sha256) fail(`hash of ${JSON.stringify(name)}`);
    }
    if (display) vector.display = display;
    return vector;
  });

  const invalidDataKeys = INVALID_DATA_KEYS.map(([dataKey, why, display]) => {
    if (decodeKey(dataKey).kind !== 'invalid') fail(`data key ${JSON.stringify(dataKey)} is not rejected by decodeKey`);
    return display === undefined ? { dataKey, why } : { dataKey, why, display };
  });

  const envelopes = envelopeCases().map(({ name, key, fields, options }) => {
    const bytes = encodeEnvelope(fields, options);
    const decoded = decodeEnvelope(bytes);
    if (hex(decoded.value) !== hex(fields.value)) fail(`envelope ${JSON.stringify(name)} does not decode back`);
    const input = {
      valueHex: hex(fields.value),
      ...(fields.text ? { valueText: new TextDecoder().decode(fields.value) } : {}),
      text: fields.text,
      modifiedAt: fields.modifiedAt,
      expiresAt: fields.expiresAt ?? null,
      fullKey: fields.fullKey ?? null,
      writeId: fields.writeId === undefined ? null : hex(fields.writeId),
      compress: options?.compress ?? true,
    };
    const vector = { name, input, hex: hex(bytes), base64: Buffer.from(bytes).toString('base64'), layout: envelopeLayout(bytes) };
    if (key !== undefined) vector.entry = { key, dataKey: encodeKey(key).dataKey };
    return vector;
  });

  const accepted = acceptedCases().map(({ name, bytes, expect }) => {
    const decoded = decodeEnvelope(bytes);
    if (hex(decoded.value) !== hex(expect.value) || decoded.text !== expect.text || decoded.modifiedAt !== expect.modifiedAt)
      fail(`accepted envelope ${JSON.stringify(name)}`);
    return {
      name,
      hex: hex(bytes),
      expect: { valueHex: hex(expect.value), text: expect.text, modifiedAt: expect.modifiedAt, expiresAt: null, fullKey: null },
    };
  });

  const base = Buffer.from(envelopes[0].hex, 'hex');
  const compressed = Buffer.from(envelopes.find((e) => e.layout.flags & 1).hex, 'hex');
  const invalidEnvelopes = invalidEnvelopeCases(new Uint8Array(base), new Uint8Array(compressed)).map(([name, bytes]) => {
    if (!rejects(() => decodeEnvelope(bytes))) fail(`invalid envelope ${JSON.stringify(name)} is accepted`);
    return { name, hex: hex(bytes), headerRejected: rejects(() => decodeEnvelopeHeader(bytes)) };
  });

  return {
    comment: 'Generated by scripts/gen-format-vectors.mjs from packages/core/src/codec. Do not edit; see docs/FORMAT.md.',
    formatVersion: 1,
    keys,
    invalidDataKeys,
    envelopes,
    acceptedEnvelopes: accepted,
    invalidEnvelopes,
    shards: SHARD_CASES.map((key) => {
      const { dataKey } = encodeKey(key);
      return {
        key,
        dataKey,
        hash: shardHash(dataKey),
        index: Object.fromEntries([2, 4, 32, 256].map((n) => [n, shardIndex(dataKey, n)])),
        name32: shardName('sessions', shardIndex(dataKey, 32)),
      };
    }),
  };
}

// ---------------------------------------------------------------------------
// Markdown rendering of the vectors, for docs/FORMAT.md.

/** A key as a JSON string literal with every non-printable-ASCII code unit escaped. */
function literal(key) {
  let out = '"';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += '\\' + key[i];
    else if (c >= 0x20 && c <= 0x7e) out += key[i];
    else out += '\\u' + c.toString(16).toUpperCase().padStart(4, '0');
  }
  return out + '"';
}

const cell = (text) => text.replace(/\|/g, '\\|');
const code = (text) => (text.includes('`') ? '`` ' + text + ' ``' : '`' + text + '`');

function renderKeys(vectors) {
  const lines = [];
  lines.push('| # | Case | Key (UTF-16, JSON escapes) | Data key |');
  lines.push('|---|------|----------------------------|----------|');
  const long = [];
  vectors.keys.forEach((v, i) => {
    if (v.display) {
      long.push([i + 1, v]);
      return;
    }
    lines.push(`| ${i + 1} | ${cell(v.name)} | ${code(literal(v.key))} | ${code(v.dataKey)} |`);
  });
  lines.push('');
  lines.push('Long keys:');
  lines.push('');
  for (const [n, v] of long) {
    lines.push(
      `${n}. ${v.name}: key ${v.display} (${v.key.length} UTF-16 code units); full encoded form ${v.fullKey.length} characters; ${v.hashed ? `data key (hashed, ${v.dataKey.length} characters, readable prefix ${v.hashedPrefix.length})` : `data key (${v.dataKey.length} characters)`}:`,
    );
    lines.push('');
    lines.push('   ```text');
    lines.push('   ' + v.dataKey);
    lines.push('   ```');
    lines.push('');
  }
  lines.push('Data keys that are not the encoding of any key (a reader reports the entry as corrupt):');
  lines.push('');
  lines.push('| Data key | Why |');
  lines.push('|----------|-----|');
  for (const v of vectors.invalidDataKeys) {
    const shown =
      v.display !== undefined
        ? `${v.display} (${v.dataKey.length} characters)`
        : v.dataKey.length > 40
          ? code(`${v.dataKey.slice(0, 12)}… (${v.dataKey.length} characters)`)
          : code(v.dataKey);
    lines.push(`| ${v.dataKey === '' ? '(empty)' : cell(shown)} | ${cell(v.why)} |`);
  }
  return lines.join('\n');
}

const MAX_DUMP_LINES = 4;

/** Hex dump lines of one field, 16 bytes a line, at most MAX_DUMP_LINES lines (the JSON has every byte). */
function bytesLines(hexText, comment) {
  const out = [];
  const pairs = hexText.match(/../g) ?? [];
  if (pairs.length === 0) return [`${''.padEnd(48)}; ${comment} (empty)`];
  for (let i = 0; i < pairs.length; i += 16) {
    if (out.length === MAX_DUMP_LINES) {
      out.push(`...${''.padEnd(45)}  (${pairs.length - i} more bytes)`);
      break;
    }
    const chunk = pairs.slice(i, i + 16).join(' ');
    out.push(`${chunk.padEnd(48)}${i === 0 ? `; ${comment}` : ''}`.trimEnd());
  }
  return out;
}

const bytes = (n) => `${n} byte${n === 1 ? '' : 's'}`;

function renderEnvelope(v, n) {
  const L = v.layout;
  const lines = [];
  lines.push(`#### E${n}. ${v.name}`);
  lines.push('');
  const value =
    v.input.valueText !== undefined && /^[\x20-\x7e]*$/.test(v.input.valueText)
      ? `text ${JSON.stringify(v.input.valueText.length > 40 ? v.input.valueText.slice(0, 40) + '…' : v.input.valueText)} (${bytes(v.input.valueHex.length / 2)})`
      : `bytes \`${v.input.valueHex.length > 80 ? v.input.valueHex.slice(0, 80) + '…' : v.input.valueHex || '(none)'}\` (${bytes(v.input.valueHex.length / 2)})`;
  lines.push(
    `- Input: ${value}, text ${v.input.text}, modifiedAt ${v.input.modifiedAt}, expiresAt ${v.input.expiresAt ?? 'none'}, full key ${v.input.fullKey === null ? 'none' : `${v.input.fullKey.length} characters`}${v.input.writeId ? `, write id ${v.input.writeId}` : ''}${v.input.compress ? '' : ', **compression off**'}.`,
  );
  if (v.entry)
    lines.push(
      `- Entry: key ${v.entry.key.length > 20 ? `of ${v.entry.key.length} characters` : literal(v.entry.key)}, data key \`${v.entry.dataKey.slice(0, 24)}…\` (see the key vectors).`,
    );
  lines.push(
    `- Flags 0x${L.flags.toString(16).padStart(2, '0')} (${L.flagNames.join(', ') || 'none'}); CRC-32 ${L.crc32}; header ${bytes(L.headerLength)}; payload ${bytes(L.payloadLength)}; envelope ${bytes(v.hex.length / 2)}.`,
  );
  lines.push('');
  lines.push('```text');
  let at = 0;
  const take = (count) => {
    const part = v.hex.slice(at * 2, (at + count) * 2);
    at += count;
    return part;
  };
  lines.push(...bytesLines(take(1), 'magic 0x4B'));
  lines.push(...bytesLines(take(1), `version ${L.version}`));
  lines.push(...bytesLines(take(1), `flags: ${L.flagNames.join(' | ') || 'none'}`));
  lines.push(...bytesLines(take(8), `modifiedAt = ${L.modifiedAt}`));
  if (L.expiresAt !== null) lines.push(...bytesLines(take(8), `expiresAt = ${L.expiresAt}`));
  if (L.writeId !== null) lines.push(...bytesLines(take(8), 'write id'));
  if (L.fullKey !== null) {
    lines.push(...bytesLines(take(2), `full key length = ${L.fullKeyLength}`));
    lines.push(...bytesLines(take(L.fullKeyLength), `full key (ASCII) ${L.fullKey.length > 24 ? L.fullKey.slice(0, 24) + '…' : L.fullKey}`));
  }
  if (L.flags & 1) lines.push(...bytesLines(take(4), `uncompressed length = ${L.valueLength}`));
  lines.push(...bytesLines(take(4), 'CRC-32 of the uncompressed value'));
  lines.push(...bytesLines(take(L.payloadLength), L.flags & 1 ? 'payload: raw DEFLATE' : 'payload: the value'));
  lines.push('```');
  lines.push('');
  lines.push(`Base64 (the \`binaryData\` value): \`${v.base64.length > 120 ? v.base64.slice(0, 120) + '…' : v.base64}\``);
  return lines.join('\n');
}

function renderEnvelopes(vectors) {
  const parts = vectors.envelopes.map((v, i) => renderEnvelope(v, i + 1));
  const more = [];
  more.push('Envelopes a reader must accept although the reference writer never produces them:');
  more.push('');
  for (const v of vectors.acceptedEnvelopes) more.push(`- ${v.name}: \`${v.hex}\``);
  more.push('');
  more.push('Envelopes a reader must reject (the entry is corrupt). The last column tells whether parsing the header alone (steps 1-2) already rejects it:');
  more.push('');
  more.push('| Case | Bytes (hex) | Header alone |');
  more.push('|------|-------------|--------|');
  for (const v of vectors.invalidEnvelopes)
    more.push(`| ${cell(v.name)} | ${v.hex === '' ? '(none)' : code(v.hex)} | ${v.headerRejected ? 'rejected' : 'accepted'} |`);
  return [...parts, more.join('\n')].join('\n\n');
}

/** Keys whose shard the vectors give: plain, escaped, hashed (over 253 characters), empty. */
const SHARD_CASES = ['', 'a', 'user:42', 'user:43', 'config/a', 'key-00000', 'key-01999', 'é', 'x'.repeat(300)];

function renderShards(vectors) {
  const lines = ['| Key | Data key | hash (hex) | shard of 2 | of 4 | of 32 | of 256 |', '|-----|----------|-----------|---:|---:|---:|---:|'];
  for (const v of vectors.shards) {
    const dataKey = v.dataKey.length > 40 ? v.dataKey.slice(0, 20) + '…' + v.dataKey.slice(-12) : v.dataKey;
    lines.push(
      `| ${v.key.length > 20 ? code(`"x" x ${v.key.length}`) : code(JSON.stringify(v.key))} | ${code(dataKey)} | ${code(v.hash.toString(16).padStart(8, '0'))} | ${v.index[2]} | ${v.index[4]} | ${v.index[32]} | ${v.index[256]} |`,
    );
  }
  return lines.join('\n');
}

/** The generated sections of docs/FORMAT.md, by marker name. */
export function renderSections(vectors) {
  return { 'key-vectors': renderKeys(vectors), 'envelope-vectors': renderEnvelopes(vectors), 'shard-vectors': renderShards(vectors) };
}

const marker = (name, edge) => `<!-- ${edge} GENERATED ${name}: node scripts/gen-format-vectors.mjs -->`;

/** Replaces (or with `extract`, returns) the generated sections of a markdown text. */
export function replaceSections(markdown, sections) {
  let out = markdown;
  for (const [name, body] of Object.entries(sections)) {
    const begin = marker(name, 'BEGIN');
    const end = marker(name, 'END');
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from < 0 || to < from) fail(`docs/FORMAT.md has no markers for section ${name}`);
    out = out.slice(0, from + begin.length) + '\n\n' + body + '\n\n' + out.slice(to);
  }
  return out;
}

function main() {
  const check = process.argv.includes('--check');
  const vectors = buildVectors();
  const json = JSON.stringify(vectors, null, 2) + '\n';
  const doc = fs.readFileSync(FORMAT_DOC_PATH, 'utf8');
  const newDoc = replaceSections(doc, renderSections(vectors));
  const oldJson = fs.existsSync(VECTORS_PATH) ? fs.readFileSync(VECTORS_PATH, 'utf8') : '';
  if (check) {
    const stale = [oldJson !== json && 'packages/core/test/vectors/format-vectors.json', newDoc !== doc && 'docs/FORMAT.md'].filter(Boolean);
    if (stale.length > 0) {
      console.error(`out of date: ${stale.join(', ')}; run node scripts/gen-format-vectors.mjs`);
      process.exit(1);
    }
    console.log('format vectors up to date');
    return;
  }
  fs.mkdirSync(dirname(VECTORS_PATH), { recursive: true });
  fs.writeFileSync(VECTORS_PATH, json);
  fs.writeFileSync(FORMAT_DOC_PATH, newDoc);
  console.log(`wrote ${vectors.keys.length} key vectors, ${vectors.envelopes.length} envelopes`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
