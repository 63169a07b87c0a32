/**
 * The public store: `createKV(options)` returns a {@link KV} bound to one bucket.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { encodeEnvelope, WRITE_ID_LENGTH } from './codec/envelope.ts';
import { encodeKey } from './codec/key-codec.ts';
import type { PreparedEntry, UpdateDecision } from './engine/bucket-engine.ts';
import { Bucket } from './engine/bucket.ts';
import type { RetryOptions } from './engine/api-errors.ts';
import { countExpired, entryValue, isExpired, type Snapshot, type StoredEntry } from './engine/snapshot.ts';
import type { ChangeEvent as KVChangeEvent } from './engine/watch-cache.ts';
import {
  ClosedError,
  CorruptEntryError,
  InvalidBucketNameError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidValueError,
} from './errors.ts';
import { isShardCount, MAX_SHARDS, MIN_SHARDS } from './codec/shard-hash.ts';
import { dns1123SubdomainError, MAX_OBJECT_DATA_BYTES } from './kube/object-rules.ts';
import type { KubeApi, ObjectKind } from './kube/port.ts';
import { checkAppOption, checkNamespaceOption, connect } from './options.ts';

/** What can be stored: bytes, or a string (kept as UTF-8 and marked as text). */
export type KVValue = Uint8Array | string;

/** Options of {@link createKV}. */
export interface KVOptions {
  /** Bucket name = ConfigMap name: 1-63 lowercase letters, digits, "-" or ".". Required. */
  bucket: string;
  /** App the bucket belongs to (label `k8s-kv.io/app`; default "default"). */
  app?: string;
  /** Namespace. Default: the pod's own namespace in a cluster, else the kubeconfig context's, else "default". */
  namespace?: string;
  /** Credentials and cluster. Default: `KubeConfig.loadFromDefault()` on first use. */
  kubeConfig?: KubeConfig;
  /** The Kubernetes API port. Default: the client-node implementation; `createMemoryApi()` for tests. */
  api?: KubeApi;
  /** TTL in milliseconds applied when `put` gives none (default: no expiry). */
  defaultTtl?: number;
  /** Compress values with DEFLATE when it saves space (default true). */
  compress?: boolean;
  /** Called for each corrupt entry that `list`, `keys`, `entries` or `getMany` skip. Default: ignore. */
  onCorruptEntry?: (error: CorruptEntryError) => void;
  /** Backoff for transient API failures (network errors, 429, 5xx). */
  retry?: RetryOptions;
  /** Attempts of `update()` before it gives up with ConflictError (default 100). */
  maxUpdateAttempts?: number;
  /** Clock in ms since the epoch (default `Date.now`); for tests of expiry. */
  now?: () => number;
  /**
   * Serve reads from a list+watch cache of the bucket (default true): reads at
   * memory speed, your own writes visible at once, other pods' writes within the
   * watch latency. Turn off for reads that must see other pods' writes the
   * instant they are acknowledged, or when the identity may not list/watch
   * (the store then falls back to GET by itself).
   */
  cache?: boolean;
  /** Called with errors of background work (the watch, which retries by itself). Default: ignore. */
  onError?: (error: unknown) => void;
  /**
   * @experimental The kind of object that holds the bucket (default `ConfigMap`).
   * `Secret` keeps the same entries in a Secret's `data` (type `Opaque`), so that
   * only identities allowed to read secrets can read them; it needs the Role's
   * rules on `secrets` instead of `configmaps`. Values are not encrypted by
   * k8s-kv: configure encryption at rest in the cluster for that.
   */
  kind?: ObjectKind;
  /**
   * Spread the bucket over this many objects (1-256; default 1) when this store
   * creates it. Entries are placed by a hash of the key in `<bucket>.shard-<i>`,
   * next to a head object `<bucket>` that records the count: the bucket holds up
   * to `shards` MiB, and a write costs what a write to a bucket of one shard's
   * size costs, so writes stay fast as the bucket grows. Batches (`putMany`,
   * `deleteMany`, `clear`) are then atomic per shard, not as a whole. A bucket
   * keeps the layout it was created with: when it exists, its head decides and
   * this option is ignored (`stats().shards` tells).
   */
  shards?: number;
}

/** A change of one key, as {@link KV.watch} reports it. */
export type { ChangeEvent as KVChangeEvent } from './engine/watch-cache.ts';

/** Options of a write. */
export interface PutOptions {
  /** Time to live in milliseconds; 0 or absent means the store's `defaultTtl` (none by default). */
  ttl?: number;
}

/** A batch entry for {@link KV.putMany}. */
export interface KVPutEntry {
  key: string;
  value: KVValue;
  /** Time to live in milliseconds. */
  ttl?: number;
}

/** A stored entry with its metadata. */
export interface KVEntry {
  key: string;
  value: Uint8Array;
  /** True when the value was stored as a string. */
  text: boolean;
  /** When it was last written. */
  modifiedAt: Date;
  /** When it expires, if it does. */
  expiresAt: Date | undefined;
  /** Bytes it takes in the bucket (after compression, with its header). */
  size: number;
}

/** Bucket usage, for operators. */
export interface KVStats {
  /** Live keys. */
  keys: number;
  /** Expired entries not yet removed. */
  expired: number;
  /** Entries that cannot be decoded. */
  corrupt: number;
  /** Bytes used, as the API server counts them. */
  bytes: number;
  /** The limit: 1 MiB per object holding entries. */
  limitBytes: number;
  /** Objects holding the entries: 1, or the shard count of a sharded bucket. */
  shards: number;
}

/**
 * Value returned by an {@link KV.update} callback: the new value; `undefined`
 * to leave the key as it is; `null` to delete it.
 */
export type UpdateResult = KVValue | null | undefined;

/** A key/value bucket in a Kubernetes ConfigMap. */
export interface KV {
  /** The bucket (ConfigMap) name. */
  readonly bucket: string;
  /** The namespace (resolved on first access). */
  readonly namespace: string;
  /** Stores a value (one atomic server-side patch of this key only). */
  put(key: string, value: KVValue, options?: PutOptions): Promise<void>;
  /** Reads a value's bytes, or undefined when missing or expired. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Reads a value as UTF-8 text, or undefined. */
  getText(key: string): Promise<string | undefined>;
  /** Reads a value with its metadata, or undefined. */
  getEntry(key: string): Promise<KVEntry | undefined>;
  /** True when the key holds a live value. */
  has(key: string): Promise<boolean>;
  /** Deletes a key; true if it held a live value. */
  delete(key: string): Promise<boolean>;
  /** Values of every live key starting with `prefix` (default: all). Corrupt entries are skipped and reported to `onCorruptEntry`. */
  list(prefix?: string): Promise<Map<string, Uint8Array>>;
  /** Live keys starting with `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** Live entries with metadata starting with `prefix`, sorted by key. */
  entries(prefix?: string): Promise<KVEntry[]>;
  /** Values of several keys in one API call, in order (undefined where missing). */
  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  /** Stores several values in one atomic patch: all are written or none (in a sharded bucket: per shard). */
  putMany(entries: ReadonlyArray<KVPutEntry | readonly [string, KVValue]>, options?: PutOptions): Promise<void>;
  /** Deletes several keys in one atomic patch (in a sharded bucket: per shard); per key, whether it held a live value. */
  deleteMany(keys: readonly string[]): Promise<boolean[]>;
  /**
   * Atomic read-modify-write of one key (compare-and-swap, retried on conflict).
   * `fn` gets the current value (undefined if none) and returns the new value,
   * `undefined` to keep it, or `null` to delete it; it may run more than once.
   * Resolves to the value stored afterwards.
   */
  update(key: string, fn: (current: Uint8Array | undefined) => UpdateResult | Promise<UpdateResult>, options?: PutOptions): Promise<Uint8Array | undefined>;
  /**
   * Deletes every key starting with `prefix` (default: all keys; expired and
   * corrupt entries under the prefix too) in one atomic patch (per shard, in a
   * sharded bucket). Resolves to the
   * number of live keys deleted. The ConfigMap itself stays; see `teardown`.
   */
  clear(prefix?: string): Promise<number>;
  /**
   * Calls `listener` for every change of a key by any process or pod (this one
   * included), as the watch delivers it. Resolves once the watch is running, to
   * a function that unsubscribes. Expiry does not raise events.
   */
  watch(listener: (event: KVChangeEvent) => void): Promise<() => void>;
  /** Usage of the bucket. */
  stats(): Promise<KVStats>;
  /** Deletes the bucket's ConfigMap (and its shards: everything it holds). Refuses objects k8s-kv does not own. */
  teardown(): Promise<void>;
  /** Releases resources; later calls fail with ClosedError. */
  close(): Promise<void>;
  /** Same as {@link KV.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const textEncoder = new TextEncoder();
/** The last instant a JavaScript Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;
const textDecoder = new TextDecoder();

/** Validates a bucket name; throws {@link InvalidBucketNameError}. */
export function validateBucketName(bucket: unknown): asserts bucket is string {
  if (typeof bucket !== 'string') throw new InvalidBucketNameError(String(bucket), 'it must be a string');
  const error = dns1123SubdomainError(bucket);
  if (error) throw new InvalidBucketNameError(bucket, error);
  if (bucket.length > 63) throw new InvalidBucketNameError(bucket, 'it is longer than 63 characters (it is also used as a label value)');
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(`Keys must be strings, got ${key === null ? 'null' : typeof key}.`);
}

function checkTtl(ttl: unknown): number | undefined {
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidOptionError('ttl', `ttl must be a finite number of milliseconds >= 0, got ${String(ttl)}.`);
  }
  return ttl === 0 ? undefined : ttl;
}

function toBytes(key: string, value: unknown): { bytes: Uint8Array; text: boolean } {
  if (typeof value === 'string') return { bytes: textEncoder.encode(value), text: true };
  if (value instanceof Uint8Array) return { bytes: value, text: false };
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new InvalidValueError(key, `Value for key ${JSON.stringify(key)} is ${type === 'object' ? 'an object' : `a ${type}`}; store a string or a Uint8Array (JSON.stringify objects first).`);
}

class KVStore implements KV {
  readonly bucket: string;
  private readonly options: KVOptions;
  private readonly app: string;
  private readonly kind: ObjectKind;
  private engineInstance: Bucket | undefined;
  private resolvedNamespace: string | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(options: KVOptions) {
    if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'createKV needs an options object with at least { bucket }.');
    validateBucketName(options.bucket);
    const app = options.app ?? 'default';
    checkAppOption(app);
    checkNamespaceOption(options.namespace);
    checkTtl(options.defaultTtl);
    if (options.kind !== undefined && options.kind !== 'ConfigMap' && options.kind !== 'Secret') {
      throw new InvalidOptionError('kind', `kind must be "ConfigMap" or "Secret", got ${JSON.stringify(options.kind)}.`);
    }
    this.kind = options.kind ?? 'ConfigMap';
    const shards = options.shards;
    if (shards !== undefined && !isShardCount(shards)) {
      throw new InvalidOptionError('shards', `shards must be an integer from ${MIN_SHARDS} to ${MAX_SHARDS}, got ${typeof shards === 'number' ? String(shards) : JSON.stringify(shards)}.`);
    }
    this.options = options;
    this.bucket = options.bucket;
    this.app = app;
    this.now = options.now ?? Date.now;
  }

  get namespace(): string {
    this.engine();
    return this.resolvedNamespace!;
  }

  /** Builds the engine on first use (loads the kubeconfig then, never at construction). */
  private engine(): Bucket {
    if (this.closed) throw new ClosedError();
    if (this.engineInstance) return this.engineInstance;
    const { api, namespace } = connect(this.options);
    this.resolvedNamespace = namespace;
    this.engineInstance = new Bucket({
      api,
      kind: this.kind,
      namespace: this.resolvedNamespace,
      bucket: this.bucket,
      app: this.app,
      retry: this.options.retry,
      maxUpdateAttempts: this.options.maxUpdateAttempts,
      now: this.now,
      cache: this.options.cache,
      onError: this.options.onError,
      shards: this.options.shards,
    });
    return this.engineInstance;
  }

  /** Validates and encodes one entry; `writeId` marks an update's write (see encodeEnvelope). */
  private prepare(key: unknown, value: unknown, ttl: unknown, writeId?: Uint8Array): PreparedEntry {
    checkKey(key);
    const { bytes, text } = toBytes(key, value);
    const lifetime = checkTtl(ttl) ?? checkTtl(this.options.defaultTtl);
    const now = this.now();
    if (lifetime !== undefined && now + lifetime > MAX_DATE_MS) {
      throw new InvalidOptionError('ttl', `ttl ${lifetime} ms ends after the last date JavaScript can represent; omit ttl for no expiry.`);
    }
    const encoded = encodeKey(key);
    const envelope = encodeEnvelope(
      { value: bytes, text, modifiedAt: now, expiresAt: lifetime === undefined ? undefined : now + lifetime, fullKey: encoded.hashed ? encoded.fullKey : undefined, writeId },
      { compress: this.options.compress !== false },
    );
    return { key, dataKey: encoded.dataKey, b64: Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64'), size: envelope.length };
  }

  /** The whole bucket (every shard of a sharded one). */
  private async snapshot(): Promise<Snapshot> {
    return this.engine().viewAll();
  }

  /** The part of the bucket that holds `key` (all of it, unless sharded). */
  private async snapshotOf(key: string): Promise<Snapshot> {
    return this.engine().viewOf(encodeKey(key).dataKey);
  }

  /** The live entry of `key` in a snapshot (throws CorruptEntryError for a damaged entry of that key). */
  private live(snapshot: Snapshot, key: string): StoredEntry | undefined {
    const entry = snapshot.entries.get(key);
    if (entry) return isExpired(entry, this.now()) ? undefined : entry;
    const corrupt = snapshot.corruptByDataKey.get(encodeKey(key).dataKey);
    if (corrupt) throw corrupt;
    return undefined;
  }

  private toEntry(entry: StoredEntry): KVEntry {
    return {
      key: entry.key,
      value: entryValue(entry),
      text: entry.header.text,
      modifiedAt: new Date(entry.header.modifiedAt),
      expiresAt: entry.header.expiresAt === undefined ? undefined : new Date(entry.header.expiresAt),
      size: entry.envelope.length,
    };
  }

  /** Live entries under a prefix, sorted by key; corrupt ones reported and skipped. */
  private liveEntries(snapshot: Snapshot, prefix: string, decodeValues: boolean): StoredEntry[] {
    const now = this.now();
    const report = this.options.onCorruptEntry;
    for (const corrupt of snapshot.corrupt) if (corrupt.key.startsWith(prefix)) report?.(corrupt);
    const out: StoredEntry[] = [];
    for (const entry of snapshot.entries.values()) {
      if (!entry.key.startsWith(prefix) || isExpired(entry, now)) continue;
      if (decodeValues) {
        try {
          entryValue(entry);
        } catch (error) {
          report?.(error as CorruptEntryError);
          continue;
        }
      }
      out.push(entry);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async put(key: string, value: KVValue, options?: PutOptions): Promise<void> {
    const entry = this.prepare(key, value, options?.ttl);
    await this.engine().put([entry]);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    const entry = this.live(await this.snapshotOf(key), key);
    return entry ? entryValue(entry) : undefined;
  }

  async getText(key: string): Promise<string | undefined> {
    const value = await this.get(key);
    return value === undefined ? undefined : textDecoder.decode(value);
  }

  async getEntry(key: string): Promise<KVEntry | undefined> {
    checkKey(key);
    const entry = this.live(await this.snapshotOf(key), key);
    return entry ? this.toEntry(entry) : undefined;
  }

  async has(key: string): Promise<boolean> {
    checkKey(key);
    return this.live(await this.snapshotOf(key), key) !== undefined;
  }

  async delete(key: string): Promise<boolean> {
    const [deleted] = await this.deleteMany([key]);
    return deleted!;
  }

  async list(prefix = ''): Promise<Map<string, Uint8Array>> {
    const entries = this.liveEntries(await this.snapshot(), prefix, true);
    return new Map(entries.map((e) => [e.key, entryValue(e)]));
  }

  async keys(prefix = ''): Promise<string[]> {
    return this.liveEntries(await this.snapshot(), prefix, false).map((e) => e.key);
  }

  async entries(prefix = ''): Promise<KVEntry[]> {
    return this.liveEntries(await this.snapshot(), prefix, true).map((e) => this.toEntry(e));
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    keys.forEach(checkKey);
    const snapshot = await this.snapshot();
    return keys.map((key) => {
      try {
        const entry = this.live(snapshot, key);
        return entry ? entryValue(entry) : undefined;
      } catch (error) {
        if (error instanceof CorruptEntryError) {
          this.options.onCorruptEntry?.(error);
          return undefined;
        }
        throw error;
      }
    });
  }

  async putMany(entries: ReadonlyArray<KVPutEntry | readonly [string, KVValue]>, options?: PutOptions): Promise<void> {
    const latest = new Map<string, PreparedEntry>();
    for (const item of entries) {
      const [key, value, ttl] = Array.isArray(item) ? [item[0], item[1], options?.ttl] : [(item as KVPutEntry).key, (item as KVPutEntry).value, (item as KVPutEntry).ttl ?? options?.ttl];
      const prepared = this.prepare(key, value, ttl);
      latest.set(prepared.dataKey, prepared);
    }
    if (latest.size === 0) return;
    await this.engine().put([...latest.values()]);
  }

  async deleteMany(keys: readonly string[]): Promise<boolean[]> {
    keys.forEach(checkKey);
    if (keys.length === 0) return [];
    const dataKeys = keys.map((k) => encodeKey(k).dataKey);
    const removed = await this.engine().remove(dataKeys);
    // A key listed twice was deleted once.
    const reported = new Set<string>();
    return dataKeys.map((dk) => {
      if (reported.has(dk)) return false;
      reported.add(dk);
      return removed.get(dk) ?? false;
    });
  }

  async update(
    key: string,
    fn: (current: Uint8Array | undefined) => UpdateResult | Promise<UpdateResult>,
    options?: PutOptions,
  ): Promise<Uint8Array | undefined> {
    checkKey(key);
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'update(key, fn) needs a function.');
    const { dataKey } = encodeKey(key);
    const after = await this.engine().update(key, dataKey, async (snapshot): Promise<UpdateDecision> => {
      const entry = this.live(snapshot, key);
      const next = await fn(entry ? entryValue(entry) : undefined);
      if (next === undefined) return { action: 'keep' };
      if (next === null) return { action: 'delete' };
      // A write id of its own lets the engine recognise this write after a lost answer.
      return { action: 'put', entry: this.prepare(key, next, options?.ttl, crypto.getRandomValues(new Uint8Array(WRITE_ID_LENGTH))) };
    });
    const entry = this.live(after, key);
    return entry ? entryValue(entry) : undefined;
  }

  async clear(prefix = ''): Promise<number> {
    if (typeof prefix !== 'string') throw new InvalidKeyError('clear(prefix) needs a string prefix.');
    const snapshot = await this.snapshot();
    const dataKeys = [...snapshot.entries.values()].filter((e) => e.key.startsWith(prefix)).map((e) => e.dataKey);
    for (const [dataKey, error] of snapshot.corruptByDataKey) if (error.key.startsWith(prefix)) dataKeys.push(dataKey);
    if (dataKeys.length === 0) return 0;
    const removed = await this.engine().remove(dataKeys, snapshot);
    let count = 0;
    for (const live of removed.values()) if (live) count++;
    return count;
  }

  async stats(): Promise<KVStats> {
    const snapshot = await this.snapshot();
    const expired = countExpired(snapshot, this.now());
    const shards = snapshot.parts?.length ?? 1;
    return { keys: snapshot.entries.size - expired, expired, corrupt: snapshot.corrupt.length, bytes: snapshot.totalBytes, limitBytes: MAX_OBJECT_DATA_BYTES * shards, shards };
  }

  async teardown(): Promise<void> {
    await this.engine().teardown();
  }

  async watch(listener: (event: KVChangeEvent) => void): Promise<() => void> {
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', 'watch(listener) needs a function.');
    return this.engine().subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.engineInstance?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Creates a store bound to one bucket. Makes no API call and reads no
 * kubeconfig until first use; the ConfigMap is created on the first write.
 *
 * @example
 * const kv = createKV({ bucket: 'sessions', app: 'shop' });
 * await kv.put('user:42', JSON.stringify({ cart: 3 }), { ttl: 60_000 });
 * console.log(await kv.getText('user:42'));
 * await kv.close();
 */
export function createKV(options: KVOptions): KV {
  return new KVStore(options);
}
