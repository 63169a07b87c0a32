/**
 * The public store: `createKV(options)` returns a {@link KV} bound to one bucket.
 * This file is the API: it checks what callers pass (validate.ts), encodes
 * entries (codec/entry.ts) and hands them to the bucket (engine/bucket.ts), and
 * turns snapshots back into values for reads.
 */
import { prepareEntry, type PreparedEntry } from './codec/entry.ts';
import { WRITE_ID_LENGTH } from './codec/envelope.ts';
import { encodeKey } from './codec/key-codec.ts';
import { connect } from './connect.ts';
import { runWithBudget } from './kube/call-deadline.ts';
import { DEFAULT_RETRY } from './engine/retry-policy.ts';
import { Bucket } from './engine/bucket.ts';
import type { UpdateDecision } from './engine/compare-and-swap.ts';
import { entryValue, isExpired, type Snapshot, type StoredEntry } from './engine/snapshot.ts';
import type { SplitContext } from './engine/split.ts';
import { bucketStats } from './engine/stats.ts';
import { SPLIT_HOOK } from './engine/test-hooks.ts';
import { ClosedError, CorruptEntryError, InvalidKeyError, InvalidOptionError } from './errors.ts';
import type { ObjectKind } from './kube/port.ts';
import type { KV, KVChangeEvent, KVEntry, KVOptions, KVPutEntry, KVStats, KVValue, PutOptions, UpdateResult } from './types.ts';
import { checkExpiry, checkKey, checkKVOptions, checkTtl, valueBytes } from './validate.ts';

export { validateBucketName } from './validate.ts';

const textDecoder = new TextDecoder();

class KVStore implements KV {
  readonly bucket: string;
  private readonly options: KVOptions;
  private readonly app: string;
  private readonly kind: ObjectKind;
  private bucketInstance: Bucket | undefined;
  private resolvedNamespace: string | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(options: KVOptions) {
    const { app } = checkKVOptions(options);
    this.kind = options.kind ?? 'ConfigMap';
    this.options = options;
    this.bucket = options.bucket;
    this.app = app;
    this.now = options.now ?? Date.now;
  }

  get namespace(): string {
    this.target();
    return this.resolvedNamespace!;
  }

  /** The bucket, built on first use (the kubeconfig is loaded then, never at construction). */
  private target(): Bucket {
    if (this.closed) throw new ClosedError();
    if (this.bucketInstance) return this.bucketInstance;
    const { api, namespace } = connect(this.options);
    this.resolvedNamespace = namespace;
    this.bucketInstance = new Bucket({
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
      maxBytes: this.options.maxBytes,
      beforeSplitStep: (this.options as { [SPLIT_HOOK]?: SplitContext['beforeStep'] })[SPLIT_HOOK],
      maxEntries: this.options.maxEntries,
      evict: this.options.evict,
      sweepInterval: this.options.sweepInterval,
    });
    return this.bucketInstance;
  }

  /** Validates and encodes one entry; `writeId` marks an update's write (see encodeEnvelope). */
  private prepare(key: unknown, value: unknown, ttl: unknown, writeId?: Uint8Array): PreparedEntry {
    checkKey(key);
    const { bytes, text } = valueBytes(key, value);
    const lifetime = checkTtl(ttl) ?? checkTtl(this.options.defaultTtl);
    const now = this.now();
    checkExpiry(now, lifetime);
    return prepareEntry({ key, value: bytes, text, now, ttl: lifetime, compress: this.options.compress !== false, writeId });
  }

  /**
   * Runs one call of this store within its budget (`retry.maxElapsedMs`): every
   * request it makes, retries included, is cut where the budget ends (see
   * kube/call-deadline.ts), so the call settles in time.
   */
  private within<T>(run: () => Promise<T>): Promise<T> {
    return runWithBudget(this.options.retry?.maxElapsedMs ?? DEFAULT_RETRY.maxElapsedMs, run);
  }

  /** The whole bucket (every shard of a sharded one). */
  private viewAll(): Promise<Snapshot> {
    return this.within(() => this.target().viewAll());
  }

  /** The part of the bucket that holds `key` (all of it, unless sharded). */
  private viewOf(key: string): Promise<Snapshot> {
    return this.within(() => this.target().viewOf(encodeKey(key).dataKey));
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
  private liveEntries(snapshot: Snapshot, prefix: string): StoredEntry[] {
    const now = this.now();
    const report = this.options.onCorruptEntry;
    for (const corrupt of snapshot.corrupt) if (corrupt.key.startsWith(prefix)) report?.(corrupt);
    const out: StoredEntry[] = [];
    for (const entry of snapshot.entries.values()) {
      if (entry.key.startsWith(prefix) && !isExpired(entry, now)) out.push(entry);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async put(key: string, value: KVValue, options?: PutOptions): Promise<void> {
    const entry = this.prepare(key, value, options?.ttl);
    await this.within(() => this.target().put([entry]));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    const entry = this.live(await this.viewOf(key), key);
    return entry ? entryValue(entry) : undefined;
  }

  async getText(key: string): Promise<string | undefined> {
    const value = await this.get(key);
    return value === undefined ? undefined : textDecoder.decode(value);
  }

  async getEntry(key: string): Promise<KVEntry | undefined> {
    checkKey(key);
    const entry = this.live(await this.viewOf(key), key);
    return entry ? this.toEntry(entry) : undefined;
  }

  async has(key: string): Promise<boolean> {
    checkKey(key);
    return this.live(await this.viewOf(key), key) !== undefined;
  }

  async delete(key: string): Promise<boolean> {
    const [deleted] = await this.deleteMany([key]);
    return deleted!;
  }

  async list(prefix = ''): Promise<Map<string, Uint8Array>> {
    const entries = this.liveEntries(await this.viewAll(), prefix);
    return new Map(entries.map((e) => [e.key, entryValue(e)]));
  }

  async keys(prefix = ''): Promise<string[]> {
    return this.liveEntries(await this.viewAll(), prefix).map((e) => e.key);
  }

  async entries(prefix = ''): Promise<KVEntry[]> {
    return this.liveEntries(await this.viewAll(), prefix).map((e) => this.toEntry(e));
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    keys.forEach(checkKey);
    const snapshot = await this.viewAll();
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
      const [key, value, ttl] = Array.isArray(item)
        ? [item[0], item[1], options?.ttl]
        : [(item as KVPutEntry).key, (item as KVPutEntry).value, (item as KVPutEntry).ttl ?? options?.ttl];
      const prepared = this.prepare(key, value, ttl);
      latest.set(prepared.dataKey, prepared);
    }
    if (latest.size === 0) return;
    await this.within(() => this.target().put([...latest.values()]));
  }

  async deleteMany(keys: readonly string[]): Promise<boolean[]> {
    keys.forEach(checkKey);
    if (keys.length === 0) return [];
    const dataKeys = keys.map((k) => encodeKey(k).dataKey);
    const removed = await this.within(() => this.target().remove(dataKeys));
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
    const after = await this.within(() =>
      this.target().update(key, dataKey, async (snapshot): Promise<UpdateDecision> => {
        const entry = this.live(snapshot, key);
        const next = await fn(entry ? entryValue(entry) : undefined);
        if (next === undefined) return { action: 'keep' };
        if (next === null) return { action: 'delete' };
        // A write id of its own lets the engine recognise this write after a lost answer.
        return { action: 'put', entry: this.prepare(key, next, options?.ttl, crypto.getRandomValues(new Uint8Array(WRITE_ID_LENGTH))) };
      }),
    );
    const entry = this.live(after, key);
    return entry ? entryValue(entry) : undefined;
  }

  async clear(prefix = ''): Promise<number> {
    if (typeof prefix !== 'string') throw new InvalidKeyError('clear(prefix) needs a string prefix.');
    return this.within(async () => {
      const snapshot = await this.viewAll();
      const dataKeys = [...snapshot.entries.values()].filter((e) => e.key.startsWith(prefix)).map((e) => e.dataKey);
      for (const [dataKey, error] of snapshot.corruptByDataKey) if (error.key.startsWith(prefix)) dataKeys.push(dataKey);
      if (dataKeys.length === 0) return 0;
      const removed = await this.target().remove(dataKeys, snapshot);
      let count = 0;
      for (const live of removed.values()) if (live) count++;
      return count;
    });
  }

  async stats(): Promise<KVStats> {
    const { snapshot, objects, limitBytes, layout } = await this.target().usage();
    return bucketStats(snapshot, this.now(), objects, limitBytes, layout);
  }

  async teardown(): Promise<void> {
    await this.within(() => this.target().teardown());
  }

  async watch(listener: (event: KVChangeEvent) => void): Promise<() => void> {
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', 'watch(listener) needs a function.');
    return this.within(() => this.target().subscribe(listener));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.bucketInstance?.close();
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
