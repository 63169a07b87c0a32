/**
 * Key codec: example tests for the edge cases of docs/FORMAT.md and
 * property-based tests (fast-check, 10,000 runs each) over arbitrary UTF-16
 * strings, lone surrogates and long keys included.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeKey, decodeKeyFull, encodeKey, encodeKeyFull, HASHED_PREFIX_MAX, MAX_DATA_KEY_LENGTH } from '../src/codec/key-codec.ts';
import { dataKeyError } from '../src/kube/object-rules.ts';

const NUM_RUNS = 10_000;
/** Generous: each property takes a few seconds on 2 cores. */
const PROPERTY_TIMEOUT = 60_000;
const HEX64 = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'f'.repeat(8);
/** The shortest readable prefix of a hashed data key: whole units, the next one (at most 12 characters) did not fit. */
const HASHED_PREFIX_MIN = 176;

// ---------------------------------------------------------------------------
// A reference encoder written from docs/FORMAT.md, independent of the code under test.

const isHigh = (u: number) => u >= 0xd800 && u <= 0xdbff;
const isLow = (u: number) => u >= 0xdc00 && u <= 0xdfff;

/** The encoded units of a key, one per code point, per the specification. */
function specUnits(key: string): string[] {
  const units: string[] = [];
  for (let i = 0; i < key.length; ) {
    const u = key.charCodeAt(i);
    if (isHigh(u) && i + 1 < key.length && isLow(key.charCodeAt(i + 1))) {
      units.push([...Buffer.from(key.slice(i, i + 2), 'utf8')].map((b) => '_' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
      i += 2;
      continue;
    }
    const ch = key[i]!;
    if ((u >= 0x41 && u <= 0x5a) || (u >= 0x61 && u <= 0x7a) || (u >= 0x30 && u <= 0x39) || ch === '-') units.push(ch);
    else if (ch === '.') units.push(i === 0 ? '_2E' : '.');
    else if (ch === '_') units.push('__');
    else if (isHigh(u) || isLow(u)) units.push('_u' + u.toString(16).toUpperCase());
    else units.push([...Buffer.from(ch, 'utf8')].map((b) => '_' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
    i += 1;
  }
  return units;
}

function specFull(key: string): string {
  return key === '' ? '_' : specUnits(key).join('');
}

function specDataKey(key: string): string {
  const full = specFull(key);
  if (full.length <= 253) return full;
  let prefix = '';
  for (const unit of specUnits(key)) {
    if (prefix.length + unit.length > 187) break;
    prefix += unit;
  }
  return prefix + '_h' + createHash('sha256').update(full, 'ascii').digest('hex');
}

// ---------------------------------------------------------------------------
// Arbitraries.

const fromUnits = (units: number[]) => String.fromCharCode(...units);
/** Any sequence of UTF-16 code units (lone surrogates, reversed pairs, NUL, ...). */
const codeUnitString = (maxLength: number, size: fc.SizeForArbitrary) => fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength, size }).map(fromUnits);
/** Code units biased towards surrogates and the characters the codec treats specially. */
const surrogateHeavy = fc
  .array(
    fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.constantFrom(0x2e, 0x5f, 0x2d, 0x68, 0x75, 0x41, 0x7a, 0x30), fc.integer({ min: 0, max: 0xffff })),
    { maxLength: 120, size: 'medium' },
  )
  .map(fromUnits);
const TRICKY = [
  'a',
  'Z',
  '0',
  '9',
  '-',
  '.',
  '_',
  'h',
  'u',
  'D',
  '8',
  'F',
  '/',
  ':',
  ' ',
  '~',
  '%',
  '\u0000',
  'é',
  '日',
  '😀',
  '\uFEFF',
  '\uD800',
  '\uDBFF',
  '\uDC00',
  '\uD83D',
  '\uDE00',
];
const tricky = (maxLength: number, size: fc.SizeForArbitrary) => fc.string({ unit: fc.constantFrom(...TRICKY), maxLength, size });
const PLAIN_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'];
/** Mostly-plain keys around the 253-character limit, with a few escapes. */
const nearLimit = fc.string({
  unit: fc.oneof({ arbitrary: fc.constantFrom(...PLAIN_CHARS, '.'), weight: 20 }, fc.constantFrom('_', '/', 'é', '😀', '\uD800')),
  minLength: 235,
  maxLength: 265,
});

/** Every kind of key: full unicode, graphemes, raw code units, tricky characters, long keys (up to ~400 characters). */
const anyKey = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 400 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 400, size: 'max' }), weight: 1 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 200, size: 'medium' }), weight: 2 },
  { arbitrary: codeUnitString(400, 'medium'), weight: 3 },
  { arbitrary: codeUnitString(400, 'max'), weight: 1 },
  { arbitrary: surrogateHeavy, weight: 2 },
  { arbitrary: tricky(400, 'medium'), weight: 4 },
  { arbitrary: nearLimit, weight: 1 },
);

/** Keys of at most ~60 code units (for properties over sets of keys). */
const shortKey = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  codeUnitString(60, 'small'),
  tricky(60, 'small'),
);

/** A key and a close variant of it (one code unit inserted, removed or replaced). */
const keyAndNeighbour = fc
  .tuple(
    anyKey,
    fc.nat(),
    fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(...TRICKY.map((c) => c.charCodeAt(0)))),
    fc.constantFrom('insert', 'delete', 'replace'),
  )
  .map(([key, at, unit, edit]) => {
    const i = key.length === 0 ? 0 : at % (key.length + (edit === 'insert' ? 1 : 0));
    const ch = String.fromCharCode(unit);
    const other =
      edit === 'insert'
        ? key.slice(0, i) + ch + key.slice(i)
        : edit === 'delete'
          ? key.slice(0, i) + key.slice(i + 1)
          : key.slice(0, i) + ch + key.slice(i + 1);
    return [key, other] as const;
  });

const DATA_KEY_CHARS = [...'_____-..aAzZ09hhuuDDD889FFECB25e'];
/** Pieces of readable prefixes: canonical units, and spellings no key encodes to. */
const PREFIX_UNITS = ['a', 'Z', '0', '-', '.', '__', '_2E', '_C3_A9', '_F0_9F_98_80', '_uD800', '_41', '_2e', '_5F', '_uD83D_uDE00', '_C3', '_', '_h'];
/** Strings that look like data keys: random, mutated encodings, hash-shaped, and non-data-key text. */
const garbageDataKey = fc.oneof(
  fc.string({ unit: fc.constantFrom(...DATA_KEY_CHARS), minLength: 1, maxLength: 253 }),
  fc.string({ unit: fc.constantFrom(...DATA_KEY_CHARS, ...PLAIN_CHARS), maxLength: 40 }),
  fc.tuple(anyKey, fc.nat(), fc.constantFrom(...DATA_KEY_CHARS), fc.constantFrom('insert', 'delete', 'replace', 'cut')).map(([key, at, ch, edit]) => {
    const dk = encodeKey(key).dataKey;
    const i = at % (dk.length + 1);
    if (edit === 'insert') return dk.slice(0, i) + ch + dk.slice(i);
    if (edit === 'delete') return dk.slice(0, i) + dk.slice(i + 1);
    if (edit === 'replace') return dk.slice(0, i) + ch + dk.slice(i + 1);
    return dk.slice(0, i);
  }),
  fc
    .tuple(fc.string({ unit: fc.constantFrom(...DATA_KEY_CHARS, ...PLAIN_CHARS), maxLength: 190 }), fc.stringMatching(/^[0-9a-fA-F]{62,66}$/))
    .map(([p, h]) => p + '_h' + h),
  // Hash-shaped, with a readable prefix around the accepted lengths (176 to 187), canonical or not.
  fc
    .tuple(
      fc.array(fc.constantFrom(...PREFIX_UNITS), { maxLength: 3 }),
      fc.integer({ min: HASHED_PREFIX_MIN - 8, max: HASHED_PREFIX_MAX + 4 }),
      fc.array(fc.constantFrom(...PREFIX_UNITS), { maxLength: 3 }),
      fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9a-fA-F]{63,65}$/)),
    )
    .map(([head, length, tail, hash]) => {
      const [h, t] = [head.join(''), tail.join('')];
      return h + 'x'.repeat(Math.max(0, length - h.length - t.length)) + t + '_h' + hash;
    }),
  fc.string({ unit: 'binary', maxLength: 300 }),
);

// ---------------------------------------------------------------------------

describe('key codec: examples', () => {
  const cases: Array<[string, string]> = [
    ['hello', 'hello'],
    ['Hello-World-42', 'Hello-World-42'],
    ['a.b', 'a.b'],
    ['', '_'],
    ['.', '_2E'],
    ['..', '_2E.'],
    ['...', '_2E..'],
    ['.hidden', '_2Ehidden'],
    ['a..', 'a..'],
    ['_', '__'],
    ['a_b', 'a__b'],
    ['_h', '__h'],
    ['_uD800', '__uD800'],
    ['user:42', 'user_3A42'],
    ['a/b/c', 'a_2Fb_2Fc'],
    [' ', '_20'],
    ['$', '_24'],
    ['~', '_7E'],
    ['\u0000', '_00'],
    ['é', '_C3_A9'],
    ['日本', '_E6_97_A5_E6_9C_AC'],
    ['😀', '_F0_9F_98_80'],
    ['\uFEFF', '_EF_BB_BF'],
    ['\uD800', '_uD800'],
    ['\uDC00x', '_uDC00x'],
    ['a\uD83D', 'a_uD83D'],
    ['\uDE00\uD83D', '_uDE00_uD83D'],
  ];

  it.each(cases)('encodes %j as %s and back', (key, dataKey) => {
    expect(encodeKey(key)).toEqual({ dataKey, hashed: false, fullKey: dataKey });
    expect(dataKeyError(dataKey)).toBeUndefined();
    expect(decodeKey(dataKey)).toEqual({ kind: 'plain', key });
    expect(decodeKeyFull(dataKey)).toEqual({ kind: 'plain', key });
  });

  it('keeps the data keys the API server forbids out of reach', () => {
    for (const key of ['.', '..', '...', '.hidden', '..x']) {
      const { dataKey } = encodeKey(key);
      expect(dataKey.startsWith('.')).toBe(false);
      expect(dataKeyError(dataKey)).toBeUndefined();
    }
  });

  it('hashes only encodings longer than 253 characters', () => {
    expect(MAX_DATA_KEY_LENGTH).toBe(253);
    expect(HASHED_PREFIX_MAX).toBe(187);
    expect(encodeKey('a'.repeat(253))).toEqual({ dataKey: 'a'.repeat(253), hashed: false, fullKey: 'a'.repeat(253) });
    expect(encodeKey('/'.repeat(84)).hashed).toBe(false); // 252 characters encoded
    const long = encodeKey('/'.repeat(85)); // 255 characters encoded
    expect(long.hashed).toBe(true);
    expect(long.dataKey).toBe('_2F'.repeat(62) + '_h' + createHash('sha256').update('_2F'.repeat(85)).digest('hex'));
  });

  it('hashes a 300-character key: 187-character prefix, "_h", SHA-256 of the full form', () => {
    const key = 'x'.repeat(300);
    const encoded = encodeKey(key);
    expect(encoded.hashed).toBe(true);
    expect(encoded.fullKey).toBe(key);
    expect(encoded.dataKey).toBe('x'.repeat(187) + '_h' + createHash('sha256').update(key).digest('hex'));
    expect(encoded.dataKey).toHaveLength(253);
    expect(dataKeyError(encoded.dataKey)).toBeUndefined();
    expect(decodeKey(encoded.dataKey)).toEqual({ kind: 'hashed' });
    expect(decodeKeyFull(encoded.fullKey)).toEqual({ kind: 'plain', key });
  });

  it('cuts the hashed prefix at a unit boundary', () => {
    const encoded = encodeKey('é'.repeat(300));
    expect(encoded.dataKey.slice(0, 186)).toBe('_C3_A9'.repeat(31));
    expect(encoded.dataKey.slice(186, 188)).toBe('_h');
    expect(encoded.dataKey).toHaveLength(252);
    const emoji = encodeKey('😀'.repeat(30)); // 12 characters per code point
    expect(emoji.dataKey.indexOf('_h')).toBe(180);
  });

  it('rejects data keys that are not the canonical encoding of a key', () => {
    for (const dataKey of [
      '',
      '_41',
      '_2e',
      '_2E_2E',
      '.a',
      'a_',
      '_x',
      '_5F',
      '_C3',
      '_C3_A9_A9',
      '_C0_80',
      '_ED_A0_80',
      '_F4_90_80_80',
      '_uD83D_uDE00',
      '_ud800',
      '_uE000',
      '_uD80',
      'x'.repeat(187) + '_hxyz',
      'x'.repeat(187) + '_h' + HEX64.toUpperCase(),
      'x'.repeat(187) + '_h' + HEX64.slice(1),
      'x'.repeat(186) + '_h' + HEX64 + 'b',
      'a b',
      'é',
    ]) {
      expect(decodeKey(dataKey), JSON.stringify(dataKey)).toMatchObject({ kind: 'invalid' });
      expect(decodeKeyFull(dataKey).kind, JSON.stringify(dataKey)).toBe('invalid');
    }
  });

  it('reads a "_h" + 64 lowercase hex tail as a hashed key only in data keys, not in full keys', () => {
    expect(decodeKey('x'.repeat(187) + '_h' + HEX64)).toEqual({ kind: 'hashed' });
    expect(decodeKeyFull('x'.repeat(187) + '_h' + HEX64).kind).toBe('invalid');
  });

  // encodeKey keeps the longest run of whole units of at most 187 characters; the unit
  // that did not fit is at most 12 characters long, so the prefix has 176 to 187.
  it('reads "_h" as a hash mark only at index 176 to 187, the prefix lengths encodeKey produces', () => {
    for (let at = 160; at <= 200; at++) {
      expect(decodeKey('x'.repeat(at) + '_h' + HEX64).kind, String(at)).toBe(at >= HASHED_PREFIX_MIN && at <= HASHED_PREFIX_MAX ? 'hashed' : 'invalid');
    }
    expect(HASHED_PREFIX_MAX - 11).toBe(HASHED_PREFIX_MIN);
    expect(decodeKey('a_h' + HEX64).kind).toBe('invalid');
    const shortest = encodeKey('x'.repeat(HASHED_PREFIX_MIN) + '😀'.repeat(10)); // the emoji unit (12 characters) does not fit
    expect(shortest.dataKey).toBe('x'.repeat(HASHED_PREFIX_MIN) + '_h' + createHash('sha256').update(shortest.fullKey).digest('hex'));
    expect(decodeKey(shortest.dataKey)).toEqual({ kind: 'hashed' });
    const longest = encodeKey('x'.repeat(300));
    expect(longest.dataKey.indexOf('_h')).toBe(HASHED_PREFIX_MAX);
    expect(decodeKey(longest.dataKey)).toEqual({ kind: 'hashed' });
  });

  // "Anything not produced by encodeKey (including non-canonical escapes) is invalid" covers
  // the readable prefix of a hashed data key too. Each prefix below has an accepted length.
  it('rejects hashed data keys whose readable prefix is not canonical', () => {
    const prefixes = [
      '.a' + 'x'.repeat(185), // a leading "." is "_2E"
      '_41' + 'x'.repeat(184), // "A" stands for itself
      '_uD83D_uDE00' + 'x'.repeat(175), // a surrogate pair is written as UTF-8
      'x'.repeat(181) + '_2E_2E', // ".." after the first character is ".."
      'x'.repeat(184) + '_5F', // "_" is "__"
      'x'.repeat(181) + '_C0_80', // overlong UTF-8
      'x'.repeat(184) + '_C3', // a UTF-8 sequence cut short
    ];
    for (const prefix of prefixes) {
      expect(prefix.length).toBeGreaterThanOrEqual(HASHED_PREFIX_MIN);
      expect(prefix.length).toBeLessThanOrEqual(HASHED_PREFIX_MAX);
      expect(decodeKey(prefix + '_h' + HEX64), JSON.stringify(prefix)).toMatchObject({ kind: 'invalid' });
    }
    // The canonical spellings of the first four are accepted.
    for (const prefix of ['_2Ea' + 'x'.repeat(183), 'A' + 'x'.repeat(184), '_F0_9F_98_80' + 'x'.repeat(175), 'x'.repeat(181) + '..']) {
      expect(prefix.length).toBeGreaterThanOrEqual(HASHED_PREFIX_MIN);
      expect(decodeKey(prefix + '_h' + HEX64), JSON.stringify(prefix)).toEqual({ kind: 'hashed' });
    }
  });

  it('rejects a hashed data key of encodeKey whose prefix was respelled', () => {
    const { dataKey } = encodeKey('A'.repeat(10) + 'x'.repeat(300));
    expect(dataKey.slice(0, 189)).toBe('A'.repeat(10) + 'x'.repeat(177) + '_h');
    expect(decodeKey(dataKey)).toEqual({ kind: 'hashed' });
    // The first "A" written "_41", two "x" dropped to keep the prefix at 187 characters.
    const respelled = '_41' + dataKey.slice(1, 185) + dataKey.slice(187);
    expect(respelled).toHaveLength(dataKey.length);
    expect(respelled.indexOf('_h')).toBe(HASHED_PREFIX_MAX);
    expect(decodeKey(respelled).kind).toBe('invalid');
  });

  it('throws TypeError for non-string keys', () => {
    expect(() => encodeKey(42 as unknown as string)).toThrow(TypeError);
    expect(() => encodeKeyFull(undefined as unknown as string)).toThrow(TypeError);
  });
});

describe('key codec: properties', () => {
  it(
    'every key encodes to a legal data key, as the specification says, and decodes back',
    () => {
      fc.assert(
        fc.property(anyKey, (key) => {
          const encoded = encodeKey(key);
          expect(dataKeyError(encoded.dataKey)).toBeUndefined();
          expect(encoded.fullKey).toBe(encodeKeyFull(key));
          expect(encoded.fullKey).toBe(specFull(key));
          expect(encoded.dataKey).toBe(specDataKey(key));
          expect(encoded.hashed).toBe(encoded.fullKey.length > MAX_DATA_KEY_LENGTH);
          if (!encoded.hashed) {
            expect(encoded.dataKey).toBe(encoded.fullKey);
            expect(decodeKey(encoded.dataKey)).toEqual({ kind: 'plain', key });
          } else {
            expect(decodeKey(encoded.dataKey)).toEqual({ kind: 'hashed' });
            expect(decodeKeyFull(encoded.fullKey)).toEqual({ kind: 'plain', key });
            const mark = encoded.dataKey.length - 66;
            expect(mark).toBeGreaterThanOrEqual(HASHED_PREFIX_MAX - 11);
            expect(mark).toBeLessThanOrEqual(HASHED_PREFIX_MAX);
            expect(encoded.fullKey.startsWith(encoded.dataKey.slice(0, mark))).toBe(true);
          }
          expect(decodeKeyFull(encoded.fullKey)).toEqual({ kind: 'plain', key });
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'is injective: distinct keys get distinct data keys (random sets)',
    () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.oneof({ arbitrary: shortKey, weight: 9 }, anyKey), { minLength: 2, maxLength: 8 }), (keys) => {
          const dataKeys = new Set(keys.map((k) => encodeKey(k).dataKey));
          const fullKeys = new Set(keys.map((k) => encodeKeyFull(k)));
          expect(dataKeys.size).toBe(keys.length);
          expect(fullKeys.size).toBe(keys.length);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'is injective: a key and a one-code-unit edit of it get distinct data keys',
    () => {
      fc.assert(
        fc.property(keyAndNeighbour, ([a, b]) => {
          fc.pre(a !== b);
          expect(encodeKeyFull(a)).not.toBe(encodeKeyFull(b));
          expect(encodeKey(a).dataKey).not.toBe(encodeKey(b).dataKey);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'ordinary keys /^[A-Za-z0-9-][A-Za-z0-9.-]*$/ encode to themselves (hashed beyond 253 characters)',
    () => {
      const ordinary = fc
        .tuple(
          fc.constantFrom(...PLAIN_CHARS),
          fc.oneof(
            fc.string({ unit: fc.constantFrom(...PLAIN_CHARS, '.'), maxLength: 399 }),
            fc.string({ unit: fc.constantFrom(...PLAIN_CHARS, '.'), maxLength: 399, size: 'max' }),
          ),
        )
        .map(([first, rest]) => first + rest);
      fc.assert(
        fc.property(ordinary, (key) => {
          expect(key).toMatch(/^[A-Za-z0-9-][A-Za-z0-9.-]*$/);
          const encoded = encodeKey(key);
          expect(encoded.fullKey).toBe(key);
          if (key.length <= 253) {
            expect(encoded).toEqual({ dataKey: key, hashed: false, fullKey: key });
          } else {
            expect(encoded.dataKey.slice(0, 189)).toBe(key.slice(0, 187) + '_h');
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  // Prefix preservation of the full encoded form holds except in two cases:
  // the empty key (encoded "_") and a prefix that ends between the two halves of a surrogate pair.
  it(
    'preserves prefixes of the full encoded form, except "" and a split surrogate pair',
    () => {
      fc.assert(
        // Biased so that about a quarter of the cases split a surrogate pair.
        fc.property(
          fc.oneof(
            anyKey,
            anyKey.map((k) => k + '\uD83D'),
          ),
          fc.oneof(
            anyKey,
            tricky(8, 'small'),
            anyKey.map((k) => '\uDE00' + k),
          ),
          (a, c) => {
            const b = a + c;
            const holds = encodeKeyFull(b).startsWith(encodeKeyFull(a));
            const splitPair = a.length > 0 && isHigh(a.charCodeAt(a.length - 1)) && c.length > 0 && isLow(c.charCodeAt(0));
            if (a === '') {
              expect(holds).toBe(c === '' || !/^[A-Za-z0-9-]/.test(c));
            } else if (splitPair) {
              expect(holds).toBe(false);
            } else {
              expect(holds).toBe(true);
              const [da, db] = [encodeKey(a), encodeKey(b)];
              if (!da.hashed && !db.hashed) expect(db.dataKey.startsWith(da.dataKey)).toBe(true);
            }
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'never throws on garbage data keys: plain results re-encode to the same data key',
    () => {
      fc.assert(
        fc.property(garbageDataKey, (text) => {
          const decoded = decodeKey(text);
          if (decoded.kind === 'plain') {
            expect(encodeKeyFull(decoded.key)).toBe(text);
            if (text.length <= MAX_DATA_KEY_LENGTH) expect(encodeKey(decoded.key)).toEqual({ dataKey: text, hashed: false, fullKey: text });
          } else if (decoded.kind === 'hashed') {
            expect(text).toMatch(/_h[0-9a-f]{64}$/);
          } else {
            expect(decoded.kind).toBe('invalid');
            expect(typeof decoded.reason).toBe('string');
          }
          // Hashed exactly when the tail is "_h" + 64 lowercase hex digits, after a readable
          // prefix of 176 to 187 characters that is a canonical full encoded form.
          const prefix = text.slice(0, -66);
          const hashShaped = text.length >= 66 && /^_h[0-9a-f]{64}$/.test(text.slice(-66));
          const prefixOk = prefix.length >= HASHED_PREFIX_MIN && prefix.length <= HASHED_PREFIX_MAX && decodeKeyFull(prefix).kind === 'plain';
          expect(decoded.kind === 'hashed', JSON.stringify(text)).toBe(hashShaped && prefixOk);
          const full = decodeKeyFull(text);
          expect(full.kind).not.toBe('hashed');
          if (full.kind === 'plain') expect(encodeKeyFull(full.key)).toBe(text);
          if (decoded.kind === 'plain') expect(full).toEqual(decoded);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT,
  );
});
