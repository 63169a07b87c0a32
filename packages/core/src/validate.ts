/**
 * Checks of what callers pass in: options of `createKV` and `listBuckets`,
 * keys, values and TTLs. Each failure is a typed error that says what to pass
 * instead; nothing is sent to the API server before these pass.
 */
import { isShardCount, MAX_SHARDS, MIN_SHARDS } from './codec/shard-hash.ts';
import { EVICTION_POLICIES } from './engine/eviction.ts';
import { MIN_SWEEP_INTERVAL_MS } from './engine/expiry-sweeper.ts';
import { InvalidBucketNameError, InvalidKeyError, InvalidOptionError, InvalidValueError } from './errors.ts';
import { dns1123SubdomainError, labelValueError } from './kube/object-rules.ts';
import type { KVOptions } from './types.ts';

/** The largest `maxBytes`: 1 GiB, half of etcd's default quota for a whole cluster. */
export const MAX_BUCKET_BYTES = 1024 ** 3;
/** The last instant a JavaScript Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;
const textEncoder = new TextEncoder();
/** A high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Validates a bucket name; throws {@link InvalidBucketNameError}. */
export function validateBucketName(bucket: unknown): asserts bucket is string {
  if (typeof bucket !== 'string') throw new InvalidBucketNameError(String(bucket), 'it must be a string');
  const error = dns1123SubdomainError(bucket);
  if (error) throw new InvalidBucketNameError(bucket, error);
  if (bucket.length > 63) throw new InvalidBucketNameError(bucket, 'it is longer than 63 characters (it is also used as a label value)');
}

/** Throws {@link InvalidOptionError} unless `namespace` is absent or a valid namespace name. */
export function checkNamespaceOption(namespace: unknown): void {
  if (namespace === undefined) return;
  const error = typeof namespace === 'string' ? dns1123SubdomainError(namespace) : 'must be a string';
  if (error || (namespace as string).length > 63 || (namespace as string).includes('.')) {
    throw new InvalidOptionError('namespace', `Invalid namespace ${JSON.stringify(namespace)}: use 1-63 lowercase letters, digits or "-".`);
  }
}

/** Throws {@link InvalidOptionError} unless `app` is a non-empty label value. */
export function checkAppOption(app: unknown): void {
  const error = typeof app === 'string' && app !== '' ? labelValueError(app) : 'must be a non-empty string';
  if (error) throw new InvalidOptionError('app', `Invalid app ${JSON.stringify(app)}: ${error}.`);
}

/** A TTL in ms, or undefined for none (absent, null or 0); throws {@link InvalidOptionError} for anything else. */
export function checkTtl(ttl: unknown): number | undefined {
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidOptionError('ttl', `ttl must be a finite number of milliseconds >= 0, got ${String(ttl)}.`);
  }
  return ttl === 0 ? undefined : ttl;
}

/** Throws {@link InvalidOptionError} when an entry written at `now` would expire after the last date JavaScript can hold. */
export function checkExpiry(now: number, ttl: number | undefined): void {
  if (ttl !== undefined && now + ttl > MAX_DATE_MS) {
    throw new InvalidOptionError('ttl', `ttl ${ttl} ms ends after the last date JavaScript can represent; omit ttl for no expiry.`);
  }
}

/** Throws {@link InvalidKeyError} unless the key is a string (any string is a key). */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(`Keys must be strings, got ${key === null ? 'null' : typeof key}.`);
}

/**
 * A value's bytes, and whether it was given as text; throws {@link InvalidValueError}
 * for anything but a string or a Uint8Array, and for a string that is not
 * well-formed Unicode (a lone surrogate would silently become U+FFFD in UTF-8).
 */
export function valueBytes(key: string, value: unknown): { bytes: Uint8Array; text: boolean } {
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) {
      throw new InvalidValueError(
        key,
        `Value for key ${JSON.stringify(key)} is a string with a lone surrogate (not well-formed Unicode), which UTF-8 cannot hold; store it as bytes (a Uint8Array) or repair it with value.toWellFormed().`,
      );
    }
    return { bytes: textEncoder.encode(value), text: true };
  }
  if (value instanceof Uint8Array) return { bytes: value, text: false };
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new InvalidValueError(
    key,
    `Value for key ${JSON.stringify(key)} is ${type === 'object' ? 'an object' : `a ${type}`}; store a string or a Uint8Array (JSON.stringify objects first).`,
  );
}

/** Checks the options of `createKV`; returns the app (default "default"). */
export function checkKVOptions(options: KVOptions): { app: string } {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'createKV needs an options object with at least { bucket }.');
  validateBucketName(options.bucket);
  const app = options.app ?? 'default';
  checkAppOption(app);
  checkNamespaceOption(options.namespace);
  checkTtl(options.defaultTtl);
  if (options.kind !== undefined && options.kind !== 'ConfigMap' && options.kind !== 'Secret') {
    throw new InvalidOptionError('kind', `kind must be "ConfigMap" or "Secret", got ${JSON.stringify(options.kind)}.`);
  }
  const { maxBytes } = options;
  if (maxBytes !== undefined && !(Number.isInteger(maxBytes) && maxBytes >= 1024 && maxBytes <= MAX_BUCKET_BYTES)) {
    throw new InvalidOptionError('maxBytes', `maxBytes must be a whole number of bytes from 1024 to ${MAX_BUCKET_BYTES} (1 GiB), got ${String(maxBytes)}.`);
  }
  const timeout = options.requestTimeoutMs;
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0)) {
    throw new InvalidOptionError('requestTimeoutMs', `requestTimeoutMs must be a positive number of milliseconds, got ${String(timeout)}.`);
  }
  const shards = options.shards;
  if (shards !== undefined && !isShardCount(shards)) {
    throw new InvalidOptionError(
      'shards',
      `shards must be an integer from ${MIN_SHARDS} to ${MAX_SHARDS}, got ${typeof shards === 'number' ? String(shards) : JSON.stringify(shards)}.`,
    );
  }
  const { maxEntries } = options;
  if (maxEntries !== undefined && !(Number.isSafeInteger(maxEntries) && maxEntries > 0)) {
    throw new InvalidOptionError(
      'maxEntries',
      `maxEntries must be a positive whole number, got ${typeof maxEntries === 'number' ? String(maxEntries) : JSON.stringify(maxEntries)}.`,
    );
  }
  if (options.evict !== undefined && !EVICTION_POLICIES.includes(options.evict)) {
    throw new InvalidOptionError(
      'evict',
      `evict must be ${EVICTION_POLICIES.map((p) => JSON.stringify(p)).join(' or ')} (or absent: a full bucket fails writes), got ${JSON.stringify(options.evict)}.`,
    );
  }
  const sweep = options.sweepInterval;
  if (sweep !== undefined && !(typeof sweep === 'number' && Number.isFinite(sweep) && (sweep === 0 || sweep >= MIN_SWEEP_INTERVAL_MS))) {
    throw new InvalidOptionError(
      'sweepInterval',
      `sweepInterval must be 0 (no background sweep) or a number of milliseconds >= ${MIN_SWEEP_INTERVAL_MS}, got ${typeof sweep === 'number' ? String(sweep) : JSON.stringify(sweep)}.`,
    );
  }
  return { app };
}
