/**
 * Key codec: maps any JavaScript string onto a legal ConfigMap/Secret data key
 * (`[-._a-zA-Z0-9]+`, at most 253 characters, not "." or "..", not starting
 * with ".."), reversibly and readably. Pure functions; the full specification
 * with test vectors is docs/FORMAT.md.
 *
 * Rules, applied per code point from left to right:
 * - `A-Z a-z 0-9 -` stand for themselves; so does `.` except as the first character;
 * - `_` becomes `__`;
 * - a lone UTF-16 surrogate becomes `_u` + 4 uppercase hex digits;
 * - any other code point becomes `_XX` for each byte of its UTF-8 form (uppercase hex);
 * - the empty key is `_`.
 * When the result is longer than 253 characters it is replaced by its first
 * 187 or fewer characters + `_h` + the lowercase hex SHA-256 of
 * the full encoded form (whole units only); the original key is then kept inside the entry.
 */
import { createHash } from 'node:crypto';

/** Longest ConfigMap/Secret data key the API server accepts. */
export const MAX_DATA_KEY_LENGTH = 253;
const HASH_MARK = '_h';
const HASH_HEX_LENGTH = 64;
/** Length of the readable prefix kept in a hashed key. */
export const HASHED_PREFIX_MAX = MAX_DATA_KEY_LENGTH - HASH_MARK.length - HASH_HEX_LENGTH;

const PLAIN = /^[A-Za-z0-9-]$/;
const HEX = '0123456789ABCDEF';
const utf8 = new TextEncoder();

function hex2(byte: number): string {
  return HEX[byte >> 4]! + HEX[byte & 15]!;
}

/** Splits a key into its encoded units (each unit stands for one code point). */
function encodeUnits(key: string): string[] {
  const units: string[] = [];
  let index = 0;
  for (const ch of key) {
    // `for...of` yields code points; a lone surrogate comes out as one unit of length 1.
    const cp = ch.codePointAt(0)!;
    if (PLAIN.test(ch) || (ch === '.' && index > 0)) units.push(ch);
    else if (ch === '_') units.push('__');
    else if (ch.length === 1 && cp >= 0xd800 && cp <= 0xdfff) units.push('_u' + cp.toString(16).toUpperCase().padStart(4, '0'));
    else units.push(Array.from(utf8.encode(ch), (b) => '_' + hex2(b)).join(''));
    index += ch.length;
  }
  return units;
}

/** The full (never hashed) encoded form of a key. Injective; may be longer than 253 characters. */
export function encodeKeyFull(key: string): string {
  if (typeof key !== 'string') throw new TypeError('key must be a string');
  if (key === '') return '_';
  return encodeUnits(key).join('');
}

/** Result of {@link encodeKey}. */
export interface EncodedKey {
  /** The ConfigMap data key. */
  dataKey: string;
  /** True when the key was too long and `dataKey` is a hash: the entry must carry `fullKey`. */
  hashed: boolean;
  /** The full encoded form (equal to `dataKey` unless hashed). */
  fullKey: string;
}

/** Encodes a user key as a ConfigMap data key. */
export function encodeKey(key: string): EncodedKey {
  const fullKey = encodeKeyFull(key);
  if (fullKey.length <= MAX_DATA_KEY_LENGTH) return { dataKey: fullKey, hashed: false, fullKey };
  let prefix = '';
  for (const unit of encodeUnits(key)) {
    if (prefix.length + unit.length > HASHED_PREFIX_MAX) break;
    prefix += unit;
  }
  const digest = createHash('sha256').update(fullKey, 'latin1').digest('hex');
  return { dataKey: prefix + HASH_MARK + digest, hashed: true, fullKey };
}

/** Result of {@link decodeKey}. */
export type DecodedKey = { kind: 'plain'; key: string } | { kind: 'hashed' } | { kind: 'invalid'; reason: string };

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a ConfigMap data key. A hashed key decodes to `{ kind: "hashed" }`: the
 * original is inside the entry. Anything not produced by {@link encodeKey}
 * (including non-canonical escapes) is `invalid`.
 */
export function decodeKey(dataKey: string): DecodedKey {
  return decodeCanonical(dataKey, true);
}

/** Decodes a full (unhashed) encoded key, as stored inside entries with hashed keys. */
export function decodeKeyFull(fullKey: string): DecodedKey {
  return decodeCanonical(fullKey, false);
}

function decodeCanonical(text: string, allowHash: boolean): DecodedKey {
  if (text === '_') return { kind: 'plain', key: '' };
  if (text === '') return { kind: 'invalid', reason: 'empty' };
  const decoded = decodeUnits(text, allowHash);
  if (decoded.kind === 'plain' && encodeKeyFull(decoded.key) !== text) {
    return { kind: 'invalid', reason: 'not in canonical form' };
  }
  return decoded;
}

const HASH_TAIL = /^_h[0-9a-f]{64}$/;

function decodeUnits(text: string, allowHash: boolean): DecodedKey {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '_') {
      if (!PLAIN.test(ch) && ch !== '.') return { kind: 'invalid', reason: `character ${JSON.stringify(ch)} not allowed` };
      out += ch;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '_') {
      out += '_';
      i += 2;
      continue;
    }
    if (next === 'h') {
      // encodeKey keeps whole units up to HASHED_PREFIX_MAX, and a unit is at most 12 characters long.
      if (!allowHash || i > HASHED_PREFIX_MAX || i < HASHED_PREFIX_MAX - 11 || !HASH_TAIL.test(text.slice(i))) {
        return { kind: 'invalid', reason: 'bad hash suffix' };
      }
      const prefix = text.slice(0, i);
      if (encodeKeyFull(out) !== prefix) return { kind: 'invalid', reason: 'hashed key prefix not in canonical form' };
      return { kind: 'hashed' };
    }
    if (next === 'u') {
      const hex = text.slice(i + 2, i + 6);
      if (!/^D[89A-F][0-9A-F]{2}$/.test(hex)) return { kind: 'invalid', reason: 'bad surrogate escape' };
      out += String.fromCharCode(parseInt(hex, 16));
      i += 6;
      continue;
    }
    // A run of byte escapes forms one UTF-8 sequence.
    const bytes: number[] = [];
    while (i < text.length && text[i] === '_' && /^[0-9A-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 3;
    }
    if (bytes.length === 0) return { kind: 'invalid', reason: 'bad escape' };
    try {
      out += utf8Strict.decode(Uint8Array.from(bytes));
    } catch {
      return { kind: 'invalid', reason: 'escaped bytes are not UTF-8' };
    }
  }
  return { kind: 'plain', key: out };
}
