/**
 * The storage engine of one Kubernetes object, ConfigMap or Secret (the kind is
 * a parameter; the logic is the same): a whole bucket (format 1), or one shard
 * of a sharded bucket (format 2; `bucket.ts` routes keys to shards). Every write is a
 * server-side atomic patch of only the keys it changes:
 * - put: strategic merge patch `{metadata:{uid}, binaryData:{k: v}}` (the uid makes the
 *   patch fail if the object was replaced by one k8s-kv does not own);
 * - delete: JSON patch `test /metadata/uid` + `remove` per key;
 * - update: compare-and-swap with a JSON patch `test` of the old value (or a
 *   resourceVersion-conditional merge patch when the key is new), retried.
 * The object is created on first write, race-safely (404 -> create -> 409 -> patch).
 */
// Group commit and contention backoff run on Node's own timers, not the globals: a test
// that fakes the global timers (vi.useFakeTimers) would otherwise never see a put settle.
import { setImmediate } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { BucketFullError, ConflictError, ForeignObjectError, KVError, UnavailableError, UnsupportedFormatError } from '../errors.ts';
import { MAX_OBJECT_DATA_BYTES } from '../kube/object-rules.ts';
import type { JsonPatchOp, KubeApi, KubeObject, ObjectKind, ObjectMeta, ObjectRef, PatchOptions } from '../kube/port.ts';
import { conflictBackoff, isStatus, isTransient, TOO_LARGE_FOR_ETCD, toKVError, withRetry, type RetryOptions } from './api-errors.ts';
import { ANNOTATION_FORMAT, ANNOTATION_SHARD, ANNOTATION_SHARDS, FORMAT_VERSION, LABEL_APP, LABEL_BUCKET, LABEL_MANAGED_BY, MANAGED_BY_VALUE, SHARDED_FORMAT_VERSION } from './labels.ts';
import { emptySnapshot, entryField, entrySize, isExpired, snapshotOf, type Snapshot } from './snapshot.ts';
import { WatchCache, type ChangeListener, type WatchLoop } from './watch-cache.ts';
import { WritePacer } from './write-pacer.ts';

/**
 * Every patch sets `metadata.managedFields` to `[{}]`, which the API server
 * reads as "clear it" (and, once clear, no update adds it back). Field
 * ownership records of a bucket list every key (about 63 KB at 2,000 keys)
 * and are rewritten by every write; measured on a ConfigMap of 2,000 random
 * 450-byte values (~1.2 MB), a one-key patch took 110-120 ms with them and
 * 72-77 ms without (docs/PERFORMANCE.md).
 * Nothing uses them: k8s-kv never server-side-applies its objects.
 */
const CLEAR_MANAGED_FIELDS = [{}];

/** One entry ready to be written. */
export interface PreparedEntry {
  key: string;
  dataKey: string;
  b64: string;
  size: number;
}

/** Settings of a {@link BucketEngine}. */
export interface EngineSettings {
  api: KubeApi;
  kind: ObjectKind;
  namespace: string;
  bucket: string;
  /** The object this engine writes: the bucket's own (default), or one shard's. */
  objectName?: string | undefined;
  /** Set when the object is a shard of a sharded bucket: its index and the bucket's shard count. */
  shard?: { index: number; count: number } | undefined;
  /** Called before a shard object is created; throws {@link LayoutChanged} if the bucket is no longer laid out as assumed. */
  beforeCreate?: (() => Promise<void>) | undefined;
  app: string;
  retry?: RetryOptions | undefined;
  /** Attempts of a compare-and-swap before {@link ConflictError} (default 100). */
  maxUpdateAttempts?: number | undefined;
  now: () => number;
  /** Serve reads from a list+watch cache (default true). */
  cache?: boolean | undefined;
  /** Errors of background work (the watch), which is retried. */
  onError?: ((error: unknown) => void) | undefined;
  /** Told once that the cache was refused (no list/watch rights) and reads use GET; default {@link onError}. */
  onCacheRefused?: ((error: KVError) => void) | undefined;
  /** Called with every new state of the object the cache takes on. */
  onSnapshot?: ((snapshot: Snapshot) => void) | undefined;
  /** The list+watch loop shared by a sharded bucket's shards; default: one of its own, by name. */
  watchLoop?: WatchLoop | undefined;
}

/** What an update callback decided. */
export type UpdateDecision =
  | { action: 'keep' }
  | { action: 'delete' }
  | { action: 'put'; entry: PreparedEntry };

const MAX_WRITE_ATTEMPTS = 8;
/** apiVersion of a metadata-only answer (`PartialObjectMetadata`). */
const PARTIAL_OBJECT_API_VERSION = 'meta.k8s.io/v1';

/**
 * The object is not laid out as this engine assumed: a format-1 engine met a
 * sharded bucket's head, or a shard engine met a shard of another layout. The
 * router (bucket.ts) looks at the bucket's head again and routes anew.
 */
export class LayoutChanged extends Error {}

/** True when annotations are those of a sharded bucket's head (format 2, not a shard). */
function declaresShardedHead(annotations: Record<string, string> | undefined): boolean {
  return annotations?.[ANNOTATION_FORMAT] === SHARDED_FORMAT_VERSION && annotations[ANNOTATION_SHARD] === undefined;
}

/** True when the object is the head of a sharded bucket (format 2, no entries of its own). */
export function isShardedHead(snapshot: Snapshot): boolean {
  return snapshot.exists && declaresShardedHead(snapshot.annotations);
}

function pointer(field: string, dataKey: string): string {
  return `/${field}/${dataKey.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** Bucket storage engine over the port. */
export class BucketEngine {
  readonly ref: ObjectRef;
  readonly field: 'binaryData' | 'data';
  private readonly s: EngineSettings;
  /** uid of the object once we verified that k8s-kv owns it. */
  private ownedUid: string | undefined;
  private readonly cache: WatchCache;
  /** The latest decoded snapshot, whose unchanged entries the next decode reuses. */
  private latest: Snapshot | undefined;
  /** Set when the identity may not list/watch: reads then always GET. */
  private cacheRefused = false;
  /** Per data key, the end of the last queued update (updates of one key take turns). */
  private readonly keyTurns = new Map<string, Promise<void>>();
  /** Writes waiting for the next group commit. */
  private queue: QueuedPut[] = [];
  private flushing = false;
  /** Contention backoff: times this object's writes (see write-pacer.ts). */
  private readonly pacer = new WritePacer();
  private flushScheduled = false;

  constructor(settings: EngineSettings) {
    this.s = settings;
    this.ref = { kind: settings.kind, namespace: settings.namespace, name: settings.objectName ?? settings.bucket };
    this.field = entryField(settings.kind);
    this.cache = new WatchCache({
      api: settings.api,
      kind: settings.kind,
      namespace: settings.namespace,
      name: this.ref.name,
      decode: (object) => this.decode(object),
      onError: settings.onError,
      onReplace: settings.onSnapshot,
      loop: settings.watchLoop,
    });
  }

  /** Starts the watch (if not yet) and subscribes to per-key changes of any writer. */
  async subscribe(listener: ChangeListener): Promise<() => void> {
    try {
      await this.cache.start();
    } catch (error) {
      throw toKVError(error, { verb: 'watch', kind: this.s.kind, namespace: this.s.namespace });
    }
    return this.cache.subscribe(listener);
  }

  /** Stops the watch and its timers. */
  close(): void {
    this.cache.close();
  }

  /** The bucket as the cache sees it when the cache is on and healthy, else as a GET returns it. */
  async view(): Promise<Snapshot> {
    if (this.s.cache === false || this.cacheRefused) return this.read();
    try {
      await this.cache.start();
    } catch (error) {
      if (isStatus(error, 403) || isStatus(error, 401)) {
        // No list/watch rights: serve every read with a GET from now on.
        this.cacheRefused = true;
        const refusal = toKVError(error, { verb: 'watch', kind: this.s.kind, namespace: this.s.namespace });
        if (this.s.onCacheRefused) this.s.onCacheRefused(refusal);
        else this.s.onError?.(refusal);
      }
      return this.read();
    }
    return this.cache.current() ?? this.read();
  }

  /** Labels every object of this bucket carries. */
  labels(): Record<string, string> {
    return { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_APP]: this.s.app, [LABEL_BUCKET]: this.s.bucket };
  }

  /** Label selector matching every object of this bucket. */
  selector(): string {
    return `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE},${LABEL_BUCKET}=${this.s.bucket}`;
  }

  /** Throws {@link ForeignObjectError} unless k8s-kv created `object` for this bucket and app. */
  private checkLabels(object: KubeObject): void {
    const labels = object.metadata.labels ?? {};
    const foreign = (why: string, ownerApp?: string): never => {
      throw new ForeignObjectError(this.s.kind, object.metadata.name, this.s.namespace, why, ownerApp);
    };
    if (labels[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) foreign(`it has no label ${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`);
    if (labels[LABEL_BUCKET] !== this.s.bucket) foreign(`its label ${LABEL_BUCKET} is not "${this.s.bucket}"`);
    if (labels[LABEL_APP] !== this.s.app) foreign(`it belongs to app "${labels[LABEL_APP] ?? ''}", not "${this.s.app}"`, labels[LABEL_APP] ?? '');
  }

  /**
   * Throws {@link ForeignObjectError} unless k8s-kv created `object` for this bucket and app,
   * {@link UnsupportedFormatError} when it declares a format this code does not know, and
   * {@link LayoutChanged} when a shard is not the shard this engine writes.
   */
  checkOwnership(object: KubeObject): void {
    this.checkLabels(object);
    const annotations = object.metadata.annotations ?? {};
    const format = annotations[ANNOTATION_FORMAT];
    if (format !== undefined && format !== FORMAT_VERSION && format !== SHARDED_FORMAT_VERSION) {
      throw new UnsupportedFormatError(this.s.kind, this.s.bucket, this.s.namespace, format);
    }
    const shard = this.s.shard;
    if (shard && (format !== SHARDED_FORMAT_VERSION || annotations[ANNOTATION_SHARD] !== `${shard.index}/${shard.count}`)) {
      throw new LayoutChanged(
        `${this.s.kind} "${object.metadata.name}" should be shard ${shard.index}/${shard.count} of bucket "${this.s.bucket}" but says ${JSON.stringify(annotations[ANNOTATION_SHARD] ?? 'no shard')}`,
      );
    }
  }

  /** A bucket-wide engine keeps no entries in a sharded bucket's head: the router must route again. */
  private guard(snapshot: Snapshot): void {
    if (!this.s.shard && isShardedHead(snapshot)) throw new LayoutChanged(`bucket "${this.s.bucket}" is sharded`);
  }

  /** Runs one port call with retries of transient failures and typed errors. */
  private async call<T>(verb: string, fn: () => Promise<T>, passThrough: (error: unknown) => boolean = () => false): Promise<T> {
    try {
      return await withRetry(fn, this.s.retry);
    } catch (error) {
      if (passThrough(error)) throw error;
      throw toKVError(error, { verb, kind: this.s.kind, namespace: this.s.namespace });
    }
  }

  /** Reads the object from the API server (GET) and decodes it. A missing object is an empty snapshot. */
  async read(): Promise<Snapshot> {
    let object: KubeObject;
    try {
      object = await this.call('get', () => this.s.api.get(this.ref), (e) => isStatus(e, 404));
    } catch (error) {
      if (isStatus(error, 404)) {
        this.ownedUid = undefined;
        return emptySnapshot();
      }
      throw error;
    }
    return this.accept(object);
  }

  /** Checks ownership of an object the server returned, decodes it, and hands it to the cache. */
  private accept(object: KubeObject): Snapshot {
    const snapshot = this.decode(object);
    this.own(object);
    this.cache.offer(object, snapshot);
    return snapshot;
  }

  /**
   * Remembers the uid of an object k8s-kv owns, which later puts patch directly;
   * never a sharded bucket's head, which holds no entries.
   */
  private own(object: KubeObject): void {
    this.ownedUid = declaresShardedHead(object.metadata.annotations) ? undefined : object.metadata.uid;
  }

  /** A JSON patch of the bucket's object; like every patch here, it also clears managedFields. */
  private jsonPatch(ops: JsonPatchOp[], options?: PatchOptions): Promise<KubeObject> {
    return this.s.api.jsonPatch(this.ref, [...ops, { op: 'add', path: '/metadata/managedFields', value: CLEAR_MANAGED_FIELDS }], options);
  }

  /** A merge patch (RFC 7386, or strategic) setting `entries`; like every patch here, it also clears managedFields. */
  private mergePatch(type: 'merge' | 'strategic', metadata: Partial<ObjectMeta>, entries: Record<string, string>, options?: PatchOptions): Promise<KubeObject> {
    const patch = { metadata: { ...metadata, managedFields: CLEAR_MANAGED_FIELDS }, [this.field]: entries };
    return type === 'strategic' ? this.s.api.strategicMergePatch(this.ref, patch, options) : this.s.api.mergePatch(this.ref, patch, options);
  }

  /**
   * Whether a write's answer may be metadata only: when no cache wants the new
   * state. A process that only writes then never receives, parses or decodes
   * whole objects (and the server does not encode them).
   */
  private answerOptions(): PatchOptions | undefined {
    return this.cache.active || this.cache.listing ? undefined : { metadataOnly: true };
  }

  /**
   * Takes note of the server's answer to a write: ownership check, and the new
   * state for the cache when one is running. A process that only writes never
   * decodes whole snapshots.
   */
  private async acknowledge(object: KubeObject): Promise<void> {
    this.checkOwnership(object);
    this.own(object);
    if (object.apiVersion === PARTIAL_OBJECT_API_VERSION) {
      // A metadata-only answer, and a cache started while the write was in flight: fetch the
      // new state so the cache shows this write (read-your-writes). The watch brings it too.
      if (this.cache.active || this.cache.listing) await this.read().catch(() => undefined);
      return;
    }
    if (this.cache.active) this.cache.offer(object, this.decode(object));
    else if (this.cache.listing) this.cache.offer(object, emptySnapshot()); // kept until the first list is in
  }

  /** Ownership check and decoding, reusing the entries of the latest snapshot that did not change. */
  private decode(object: KubeObject): Snapshot {
    this.checkOwnership(object);
    this.latest = snapshotOf(this.s.kind, object, this.latest);
    return this.latest;
  }

  /**
   * Creates the object holding `entries` (a shard once the router confirmed the layout).
   * Returns false when someone else created it first.
   */
  private async create(entries: Record<string, string>): Promise<boolean> {
    const shard = this.s.shard;
    if (shard) await this.s.beforeCreate?.();
    const annotations: Record<string, string> = shard
      ? { [ANNOTATION_FORMAT]: SHARDED_FORMAT_VERSION, [ANNOTATION_SHARD]: `${shard.index}/${shard.count}` }
      : { [ANNOTATION_FORMAT]: FORMAT_VERSION };
    return this.createObject(annotations, entries);
  }

  /**
   * Creates the head of a sharded bucket: format 2, the shard count, no entries.
   * Returns false when someone else created the bucket first.
   */
  createShardedHead(shards: number): Promise<boolean> {
    return this.createObject({ [ANNOTATION_FORMAT]: SHARDED_FORMAT_VERSION, [ANNOTATION_SHARDS]: String(shards) }, undefined);
  }

  private async createObject(annotations: Record<string, string>, entries: Record<string, string> | undefined): Promise<boolean> {
    const body: KubeObject = {
      metadata: { name: this.ref.name, labels: this.labels(), annotations },
      ...(entries ? { [this.field]: entries } : {}),
      ...(this.s.kind === 'Secret' ? { type: 'Opaque' } : {}),
    };
    try {
      const created = await this.call('create', () => this.s.api.create(this.s.kind, this.s.namespace, body), (e) => isStatus(e, 409) || isStatus(e, 422));
      await this.acknowledge(created);
      return true;
    } catch (error) {
      if (isStatus(error, 409)) return false;
      throw error;
    }
  }

  private isUidMismatch(error: unknown): boolean {
    return (isStatus(error, 409) || isStatus(error, 422)) && /uid/i.test((error as Error).message);
  }

  private isTooLarge(error: unknown): boolean {
    return (isStatus(error, 422) && /Too long/i.test((error as Error).message)) || (error instanceof Error && TOO_LARGE_FOR_ETCD.test(error.message));
  }

  /**
   * Writes entries atomically (creating the object when missing). Calls made in
   * the same tick, and calls made while a write is in flight, are coalesced into
   * one patch (group commit); each caller still gets its own outcome. After a
   * write that took far longer than usual (other writers), the next one waits a
   * little first (contention backoff, write-pacer.ts).
   */
  put(entries: PreparedEntry[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entries, resolve, reject });
      if (!this.flushing && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          void this.flush();
        });
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const pause = this.pacer.delayMs();
        if (pause > 0) await sleep(pause); // writes queued meanwhile join this batch
        const batch = this.queue.splice(0, this.queue.length);
        try {
          const started = performance.now();
          await this.write(batch.flatMap((b) => b.entries));
          this.pacer.record(performance.now() - started);
          for (const b of batch) b.resolve();
        } catch (error) {
          if (batch.length === 1 || !(error instanceof BucketFullError)) {
            for (const b of batch) b.reject(error);
            continue;
          }
          // Together they do not fit; alone some may. Each caller gets its own outcome.
          for (const b of batch) {
            try {
              await this.write(b.entries);
              b.resolve();
            } catch (own) {
              b.reject(own);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One atomic write of entries (later entries for the same key win). */
  private async write(entries: PreparedEntry[]): Promise<void> {
    const batchBytes = entries.reduce((sum, e) => sum + e.size, 0);
    if (batchBytes > MAX_OBJECT_DATA_BYTES) throw await this.bucketFull(entries);
    const patchEntries: Record<string, string> = {};
    for (const entry of entries) patchEntries[entry.dataKey] = entry.b64;
    let swept = false;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (this.ownedUid === undefined) {
        const current = await this.read();
        this.guard(current);
        if (!current.exists) {
          try {
            if (await this.create(patchEntries)) return;
          } catch (error) {
            if (this.isTooLarge(error)) throw await this.bucketFull(entries, error);
            throw error;
          }
          continue;
        }
      }
      const uid = this.ownedUid!;
      try {
        const patched = await this.call(
          'patch',
          () => this.mergePatch('strategic', { uid }, patchEntries, this.answerOptions()),
          (e) => isStatus(e, 404) || this.isUidMismatch(e) || this.isTooLarge(e),
        );
        await this.acknowledge(patched);
        return;
      } catch (error) {
        if (isStatus(error, 404) || this.isUidMismatch(error)) {
          this.ownedUid = undefined;
          continue;
        }
        if (this.isTooLarge(error)) {
          // Expired entries still take space: remove them and try once more.
          if (!swept && (await this.sweepExpired()) > 0) {
            swept = true;
            continue;
          }
          throw await this.bucketFull(entries, error);
        }
        throw error;
      }
    }
    throw new ConflictError(`Could not write to bucket "${this.s.bucket}" (${this.ref.name}): it kept being deleted or replaced while writing.`);
  }

  /** Removes expired entries (only if unchanged since read). Returns how many were removed. */
  async sweepExpired(): Promise<number> {
    const snapshot = await this.read();
    const now = this.s.now();
    const expired = [...snapshot.entries.values()].filter((e) => isExpired(e, now));
    if (!snapshot.exists || expired.length === 0) return 0;
    const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/uid', value: snapshot.uid }];
    for (const entry of expired) {
      ops.push({ op: 'test', path: pointer(this.field, entry.dataKey), value: entry.b64 }, { op: 'remove', path: pointer(this.field, entry.dataKey) });
    }
    try {
      const patched = await this.call('patch', () => this.jsonPatch(ops), (e) => isStatus(e, 422) || isStatus(e, 404));
      await this.acknowledge(patched);
      return expired.length;
    } catch (error) {
      if (isStatus(error, 422) || isStatus(error, 404)) return 0;
      throw error;
    }
  }

  private async bucketFull(entries: PreparedEntry[], cause?: unknown): Promise<BucketFullError> {
    const snapshot = await this.read();
    let attempted = snapshot.totalBytes;
    for (const entry of entries) {
      const old = snapshot.entries.get(entry.key);
      attempted += entry.size - (old ? entrySize(old) : 0);
    }
    const shard = this.s.shard;
    return new BucketFullError(this.s.bucket, snapshot.totalBytes, attempted, MAX_OBJECT_DATA_BYTES, cause, shard && { ...shard, name: this.ref.name });
  }

  /**
   * Removes keys in one atomic patch. Returns, per data key, whether a live
   * (unexpired) entry was there. Missing keys are not an error. The patch tests
   * every key against the state it was planned on (value, or absence), so the
   * answer is exact even when the plan came from the cache: on a mismatch the
   * bucket is re-read and the patch planned again.
   */
  async remove(dataKeys: string[], known?: Snapshot): Promise<Map<string, boolean>> {
    const unique = [...new Set(dataKeys)];
    const result = new Map(unique.map((k) => [k, false] as [string, boolean]));
    let view = known ?? this.peek();
    let fresh = false;
    if (!view) {
      view = await this.read();
      fresh = true;
    }
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      this.guard(view);
      const present = new Map<string, { b64: string; live: boolean }>();
      const now = this.s.now();
      for (const entry of view.entries.values()) present.set(entry.dataKey, { b64: entry.b64, live: !isExpired(entry, now) });
      // A corrupt entry is removed without a value test (its raw text is not kept).
      for (const dataKey of view.corruptByDataKey.keys()) present.set(dataKey, { b64: '', live: true });
      const targets = unique.filter((k) => present.has(k));
      if (targets.length === 0 || !view.exists) {
        if (fresh) return result;
        // The cache says there is nothing to delete: confirm with the server.
        view = await this.read();
        fresh = true;
        continue;
      }
      const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/uid', value: view.uid }];
      for (const k of unique) {
        const path = pointer(this.field, k);
        const entry = present.get(k);
        if (entry) {
          if (!view.corruptByDataKey.has(k)) ops.push({ op: 'test', path, value: entry.b64 });
          ops.push({ op: 'remove', path });
        } else if (view.hasEntryMap && !fresh) {
          ops.push({ op: 'test', path, value: null });
        }
      }
      try {
        const patched = await this.call('patch', () => this.jsonPatch(ops, this.answerOptions()), (e) => isStatus(e, 422) || isStatus(e, 404));
        await this.acknowledge(patched);
        for (const k of targets) result.set(k, present.get(k)!.live);
        return result;
      } catch (error) {
        if (isStatus(error, 404)) {
          this.ownedUid = undefined;
          if (fresh) return result;
        } else if (!isStatus(error, 422)) {
          throw error;
        }
        // The bucket changed since the plan (or was replaced): look again.
        view = await this.read();
        fresh = true;
      }
    }
    throw new ConflictError(`Could not delete from bucket "${this.s.bucket}": it kept changing under the delete.`);
  }

  /** True once this engine wrote to, or read, an object it owns that holds entries (and did not lose it since). */
  get owning(): boolean {
    return this.ownedUid !== undefined;
  }

  /** The cache's snapshot if the cache is on and healthy (never starts it). */
  peek(): Snapshot | undefined {
    if (this.s.cache === false || this.cacheRefused) return undefined;
    try {
      return this.cache.current();
    } catch {
      return undefined;
    }
  }

  /**
   * Atomic read-modify-write of one key. `decide` sees the current snapshot and
   * returns what to do; on a lost race the snapshot is re-read and `decide` runs again.
   * Resolves to a snapshot that holds the key as it is after the update (when no
   * cache is running, only that key: the server answers with metadata only).
   */
  update(key: string, dataKey: string, decide: (snapshot: Snapshot) => Promise<UpdateDecision>): Promise<Snapshot> {
    // Updates of one key from this process take turns: they would only defeat each other's
    // compare-and-swap at the server. Contention is then only between processes.
    const previous = this.keyTurns.get(dataKey) ?? Promise.resolve();
    const turn = previous.then(() => this.compareAndSwap(key, dataKey, decide));
    const settled = turn.then(() => undefined, () => undefined);
    this.keyTurns.set(dataKey, settled);
    void settled.then(() => {
      if (this.keyTurns.get(dataKey) === settled) this.keyTurns.delete(dataKey);
    });
    return turn;
  }

  private async compareAndSwap(key: string, dataKey: string, decide: (snapshot: Snapshot) => Promise<UpdateDecision>): Promise<Snapshot> {
    const maxAttempts = this.s.maxUpdateAttempts ?? 100;
    let lastError: unknown;
    // Every value this update sent. Each carries a random write id, so no other writer can
    // store the same bytes: finding one of them stored means that write landed.
    const sent = new Set<string>();
    // After a write whose answer was lost: the state of the key it was planned on.
    let lostAnswer: { planned: string | undefined; cause: unknown } | undefined;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      if (attempt > 0 && !lostAnswer) await conflictBackoff(attempt);
      // The first attempt may plan on the cache: the patch tests the value, so a stale plan only costs a retry.
      const snapshot = (attempt === 0 ? this.peek() : undefined) ?? (await this.read());
      this.guard(snapshot);
      const stored = snapshot.entries.get(key);
      // A write of ours landed although its answer was lost: done (fn must not be applied twice).
      if (stored && sent.has(stored.b64)) return snapshot;
      if (lostAnswer) {
        // Unchanged since the plan: the lost write did not land, so planning again is safe.
        // Changed by someone else: the lost write may have landed and been overwritten since.
        if (stored?.b64 !== lostAnswer.planned) {
          throw new UnavailableError(
            `update("${key}") may or may not have been applied in bucket "${this.s.bucket}": the connection to the API server broke while its write was in flight, and the key has been changed by another writer since. Read the key to decide whether to run the update again.`,
            lostAnswer.cause,
          );
        }
        lostAnswer = undefined;
      }
      const decision = await decide(snapshot);
      const current = stored;
      if (decision.action === 'keep') return snapshot;
      if (decision.action === 'delete' && !current) return snapshot;
      if (decision.action === 'put') sent.add(decision.entry.b64);
      const write = async (): Promise<KubeObject | undefined> => {
        if (!snapshot.exists) {
          if (decision.action !== 'put') return undefined;
          const created = await this.create({ [dataKey]: decision.entry.b64 });
          if (!created) throw new RaceLost();
          return undefined;
        }
        const path = pointer(this.field, dataKey);
        if (current) {
          return this.jsonPatch([
            { op: 'test', path: '/metadata/uid', value: snapshot.uid },
            { op: 'test', path, value: current.b64 },
            decision.action === 'put' ? { op: 'replace', path, value: decision.entry.b64 } : { op: 'remove', path },
          ], this.answerOptions());
        }
        if (decision.action !== 'put') return undefined;
        if (snapshot.hasEntryMap) {
          // New key: `test` with null passes only while the key is absent.
          return this.jsonPatch([
            { op: 'test', path: '/metadata/uid', value: snapshot.uid },
            { op: 'test', path, value: null },
            { op: 'add', path, value: decision.entry.b64 },
          ], this.answerOptions());
        }
        // No entry map yet (`add` would fail): the whole object must be unchanged since we read it.
        return this.mergePatch('merge', { uid: snapshot.uid, resourceVersion: snapshot.resourceVersion }, { [dataKey]: decision.entry.b64 }, this.answerOptions());
      };
      try {
        const written = await write();
        if (written?.apiVersion === PARTIAL_OBJECT_API_VERSION) {
          await this.acknowledge(written);
          // The answer has no entries: what the key holds now is what this update wrote.
          return snapshotOf(this.s.kind, { metadata: written.metadata, [this.field]: decision.action === 'put' ? { [dataKey]: decision.entry.b64 } : {} });
        }
        if (written) return this.accept(written);
        return snapshot.exists ? snapshot : await this.read();
      } catch (error) {
        lastError = error;
        if (error instanceof LayoutChanged) throw error;
        if (this.isTooLarge(error) && decision.action === 'put') throw await this.bucketFull([decision.entry], error);
        // 422 from a JSON patch is a failed `test` (the server does not say more); 409 a stale resourceVersion.
        if (error instanceof RaceLost || isStatus(error, 409) || isStatus(error, 422) || isStatus(error, 404)) {
          continue;
        }
        if (isTransient(error)) {
          // The write may or may not have happened: the next read decides (above).
          lostAnswer = { planned: current?.b64, cause: error };
          continue;
        }
        if (error instanceof KVError) throw error;
        throw toKVError(error, { verb: 'patch', kind: this.s.kind, namespace: this.s.namespace });
      }
    }
    throw new ConflictError(
      `update("${key}") lost to concurrent writers ${maxAttempts} times in bucket "${this.s.bucket}"; try again later.`,
      key,
      lastError,
    );
  }

  /** Every object of this bucket (its own, and a sharded bucket's shards), as one LIST by label returns them. */
  async listObjects(): Promise<KubeObject[]> {
    const list = await this.call('list', () => this.s.api.list(this.s.kind, this.s.namespace, { labelSelector: this.selector() }));
    return list.items;
  }

  /** Takes an object a LIST returned (undefined: it does not exist) as the current state of this engine's object. */
  adopt(object: KubeObject | undefined): Snapshot {
    if (object) return this.accept(object);
    this.ownedUid = undefined;
    return emptySnapshot();
  }

  /** Forgets the object (it was deleted): the next write creates it again. */
  forget(): void {
    this.ownedUid = undefined;
    this.cache.offer(undefined, emptySnapshot());
  }

  /** Deletes every object of this bucket that k8s-kv owns, shards included. Foreign objects are refused and left alone. */
  async teardown(): Promise<void> {
    const listed = await this.listObjects();
    // Refuses (ForeignObjectError) when the bucket's name is taken by an object k8s-kv does not own.
    await this.read();
    // Shards first, the bucket's own object last: until it is gone, the layout stays known.
    const items = [...listed].sort((a, b) => Number(a.metadata.name === this.ref.name) - Number(b.metadata.name === this.ref.name));
    for (const object of items) {
      this.checkOwnership(object);
      const ref = { ...this.ref, name: object.metadata.name };
      try {
        await this.call('delete', () => this.s.api.delete(ref, { uid: object.metadata.uid! }), (e) => isStatus(e, 404) || isStatus(e, 409));
      } catch (error) {
        if (!isStatus(error, 404) && !isStatus(error, 409)) throw error;
      }
    }
    this.forget();
  }
}

interface QueuedPut {
  entries: PreparedEntry[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Someone created the object between our read and our create. */
class RaceLost extends Error {}
