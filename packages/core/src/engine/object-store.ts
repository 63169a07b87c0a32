/**
 * The entries of ONE Kubernetes object, ConfigMap or Secret (the kind is a
 * parameter; the logic is the same): a whole format-1 bucket, or one shard of a
 * sharded bucket (bucket.ts routes keys to objects and does bucket-wide work).
 * Every write is a server-side atomic JSON patch of only the keys it changes,
 * and starts with `test`s of what made the object ours (its uid, the bucket's
 * labels, the annotations of its role: ownership.ts `ownershipTests`), so a write
 * to an object that was replaced, relabelled or given another format fails at
 * the server and changes nothing:
 * - put (group-commit.ts coalesces them): `add` per key, and the removals that
 *   make room within the object's budget or clear out expired entries, each
 *   guarded by a `test` of the text it was planned on (eviction.ts);
 * - delete: per key `test` of the planned value and `remove`;
 * - update: compare-and-swap, compare-and-swap.ts.
 * The object is created on first write, race-safely (404 -> create -> 409 -> patch).
 * The server's answer to each write is handed to the watch cache (read-your-writes): {@link ObjectStore.learn}.
 * While the cache runs, an {@link ExpirySweeper} removes expired entries in the background.
 */
// On Node's own timers, not the globals (see group-commit.ts).
import { setTimeout } from 'node:timers';
import type { PreparedEntry } from '../codec/entry.ts';
import { BucketFullError, ConflictError, ForeignObjectError, type KVError } from '../errors.ts';
import { currentDeadline, untilDeadline } from '../kube/call-deadline.ts';
import { MAX_OBJECT_DATA_BYTES, objectDataBytes } from '../kube/object-rules.ts';
import { KubeApiError, type JsonPatchOp, type KubeApi, type KubeObject, type ObjectMeta, type ObjectRef, type PatchOptions } from '../kube/port.ts';
import { isStatus, TOO_LARGE_FOR_ETCD, toKVError, type CallContext } from './api-errors.ts';
import { compareAndSwap, pointer, RaceLost, type SwapState, type SwapTarget, type SwapWrite, type UpdateDecision } from './compare-and-swap.ts';
import { planWrite, type EvictionPolicy, type ObjectBudget, type Removal, type WritePlan } from './eviction.ts';
import { DEFAULT_SWEEP_INTERVAL_MS, ExpirySweeper } from './expiry-sweeper.ts';
import { GroupCommit } from './group-commit.ts';
import { LayoutChanged, SplitInProgress, SplitWaited } from './layout-changed.ts';
import {
  bucketLabels,
  checkOwnership,
  declaresEntrylessHead,
  isSealed,
  ownershipTests,
  roleAnnotations,
  type BucketIdentity,
  type ObjectRole,
} from './ownership.ts';
import type { RetryOptions } from '../types.ts';
import { callApi, conflictBackoff, DEFAULT_MAX_UPDATE_ATTEMPTS, MAX_REPLANS } from './retry-policy.ts';
import { emptySnapshot, entryField, isExpired, snapshotOf, type Snapshot } from './snapshot.ts';
import { WatchCache } from './watch-cache.ts';
import type { WatchLoop } from './watch-loop.ts';
import type { WriteLimit } from './write-limit.ts';

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

/** apiVersion of a metadata-only answer (`PartialObjectMetadata`). */
const PARTIAL_OBJECT_API_VERSION = 'meta.k8s.io/v1';

/** Settings of an {@link ObjectStore}. */
export interface ObjectStoreSettings extends BucketIdentity {
  api: KubeApi;
  /** The object: the bucket's own (default), or one shard's. */
  objectName?: string | undefined;
  /** Set when the object is a shard of a sharded bucket: its index and the bucket's shard count. */
  shard?: { index: number; count: number } | undefined;
  /** Set when the object is a part of an elastic bucket (format 3): never created by a write; gone means split. */
  part?: { depth: number; suffix: number; headUid: string } | undefined;
  /** Told, after each acknowledged put, how many bytes of entries the object holds (exact, or estimated from what was written). */
  afterWrite?: ((bytes: number) => void) | undefined;
  /** True when the object splits as it grows (its exact size matters after each write). */
  splits?: (() => boolean) | undefined;
  /** The bucket's `maxBytes`, for the message of a write refused by the budget. */
  maxBytes?: number | undefined;
  /** Called before a shard object is created; throws {@link LayoutChanged} if the bucket is no longer laid out as assumed. */
  beforeCreate?: (() => Promise<void>) | undefined;
  retry?: RetryOptions | undefined;
  /** Attempts of a compare-and-swap before {@link ConflictError} (default {@link DEFAULT_MAX_UPDATE_ATTEMPTS}). */
  maxUpdateAttempts?: number | undefined;
  now: () => number;
  /** Serve reads from a list+watch cache (default true). */
  cache?: boolean | undefined;
  /** Errors of background work (the watch), which is retried. */
  onError?: ((error: unknown) => void) | undefined;
  /** Told once that the cache was refused (no list/watch rights) and reads use GET; default {@link onError}. */
  onCacheRefused?: ((error: KVError) => void) | undefined;
  /** Called with every new state of the object the cache takes on, and the one it replaces. */
  onSnapshot?: ((snapshot: Snapshot, previous: Snapshot | undefined) => void) | undefined;
  /** The list+watch loop shared by a sharded bucket's shards; default: one of its own, by name. */
  watchLoop?: WatchLoop | undefined;
  /** How many puts and deletes the bucket's objects keep on the wire at once, together (write-limit.ts); default: no limit. */
  writeLimit?: WriteLimit | undefined;
  /**
   * The object's budget NOW, when it has one below the object limit (the bucket
   * decides how its `maxBytes` and `maxEntries` are shared among its objects: an
   * elastic bucket at its `maxBytes` may not split, so each object keeps its share):
   * what its entries may hold. Undefined: the object limit only.
   */
  budget?: (() => ObjectBudget | undefined) | undefined;
  /** What a write over the budget does: evict by this policy (eviction.ts); undefined: fail with BucketFullError. */
  evict?: EvictionPolicy | undefined;
  /** Period of the background sweep of expired entries, ms (default {@link DEFAULT_SWEEP_INTERVAL_MS}); 0: none. */
  sweepInterval?: number | undefined;
}

/** True when the object is a head without entries of its own: a sharded bucket's (format 2) or a split elastic bucket's (format 3). */
export function isEntrylessHead(snapshot: Snapshot): boolean {
  return snapshot.exists && declaresEntrylessHead(snapshot.annotations);
}

const isMissing = (refusal: KubeApiError): boolean => refusal.status === 404;
const isRaceLost = (refusal: KubeApiError): boolean => refusal.status === 404 || refusal.status === 422;

/** The longest a split waits for this store's patches on the wire before it seals the object (holdWrites). */
const QUIET_WAIT_MS = 1000;

/** Reads and writes of one object's entries. */
export class ObjectStore implements SwapTarget {
  readonly ref: ObjectRef;
  readonly field: 'binaryData' | 'data';
  readonly bucket: string;
  private readonly s: ObjectStoreSettings;
  /**
   * The object once we verified that k8s-kv owns it: the tests that keep a write to
   * it conditional on that, and whether its entry map exists (a JSON patch cannot
   * `add` into a missing map).
   */
  private owned: { uid: string; tests: JsonPatchOp[]; entryMap: boolean; strays: Set<string> } | undefined;
  private readonly cache: WatchCache;
  /** The latest decoded snapshot, whose unchanged entries the next decode reuses. */
  private latest: Snapshot | undefined;
  /** Set when the identity may not list/watch: reads then always GET. */
  private cacheRefused = false;
  /** Bytes of entries the object holds as last seen, plus what this store wrote since (when answers carry no entries). */
  private knownBytes = 0;
  /** Per data key, the end of the last queued update (updates of one key take turns). */
  private readonly keyTurns = new Map<string, Promise<void>>();
  private readonly commits = new GroupCommit((entries) => this.write(entries));
  /** Removes expired entries in the background while the cache runs (none with `sweepInterval: 0`). */
  private readonly sweeper: ExpirySweeper | undefined;
  /** Set while this process splits the object (see holdWrites). */
  private held: Promise<void> | undefined;
  /** This store's patches on the wire, and who waits for there to be none. */
  private patching = 0;
  private readonly quiet: Array<() => void> = [];

  constructor(settings: ObjectStoreSettings) {
    this.s = settings;
    this.bucket = settings.bucket;
    this.ref = { kind: settings.kind, namespace: settings.namespace, name: settings.objectName ?? settings.bucket };
    this.field = entryField(settings.kind);
    this.cache = new WatchCache({
      api: settings.api,
      kind: settings.kind,
      namespace: settings.namespace,
      name: this.ref.name,
      decode: (object) => this.decode(object),
      onError: settings.onError,
      onReplace: (snapshot, previous) => {
        // The cache runs: so does the sweep of expired entries (a store that only writes starts neither).
        this.sweeper?.start();
        settings.onSnapshot?.(snapshot, previous);
      },
      loop: settings.watchLoop,
    });
    const periodMs = settings.sweepInterval ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (periodMs > 0) {
      this.sweeper = new ExpirySweeper({
        periodMs,
        view: () => this.watched(),
        now: settings.now,
        sweep: (snapshot, removals) => this.sweep(snapshot, removals),
        onError: settings.onError,
      });
    }
  }

  // ---------------------------------------------------------------- reads

  /** Starts the watch (if not yet); rejects with a typed error when it cannot start. */
  async startWatching(): Promise<void> {
    try {
      await untilDeadline(this.cache.start(), 'the watch cache started');
    } catch (error) {
      throw this.typed(error, 'watch');
    }
  }

  /** True for a part of an elastic bucket. */
  get isPart(): boolean {
    return this.s.part !== undefined;
  }

  /** The part of an elastic bucket this store writes (its depth and suffix), if it is one. */
  get part(): { depth: number; suffix: number } | undefined {
    return this.s.part;
  }

  /** Stops the watch, the sweep and their timers. */
  close(): void {
    this.sweeper?.stop();
    this.cache.close();
  }

  /** The object as the cache sees it when the cache is on and healthy, else as a GET returns it. */
  async view(): Promise<Snapshot> {
    if (this.s.cache === false || this.cacheRefused) return this.read();
    try {
      await untilDeadline(this.cache.start(), 'the watch cache started');
    } catch (error) {
      if (isStatus(error, 403) || isStatus(error, 401)) {
        // No list/watch rights: serve every read with a GET from now on.
        this.cacheRefused = true;
        const refusal = this.typed(error, 'watch');
        if (this.s.onCacheRefused) this.s.onCacheRefused(refusal);
        else this.s.onError?.(refusal);
      }
      return this.read();
    }
    return this.peek() ?? this.read();
  }

  /**
   * The cache's snapshot if reads use the cache and it is healthy (never starts it).
   * Not for a part the watch has not delivered yet: the router learned of it from the
   * server (a fresher view than the watch's), so the watch's "absent" is only behind.
   */
  peek(): Snapshot | undefined {
    if (this.s.cache === false) return undefined;
    const snapshot = this.watched();
    return this.s.part && snapshot && !snapshot.exists ? undefined : snapshot;
  }

  /**
   * The last state the watch delivered, connected or not, whether or not reads use the
   * cache (`kv.watch()` runs it with the cache off too): the states events are computed from.
   */
  lastWatched(): Snapshot | undefined {
    return this.cacheRefused ? undefined : this.cache.last();
  }

  /** The cache's snapshot while it runs and is healthy, whether or not reads use it. */
  watched(): Snapshot | undefined {
    if (this.cacheRefused) return undefined;
    try {
      return this.cache.current();
    } catch {
      return undefined;
    }
  }

  /** Reads the object from the API server (GET) and decodes it. A missing object is an empty snapshot. */
  async read(): Promise<Snapshot> {
    const object = await this.call('get', () => this.s.api.get(this.ref), isMissing);
    if (object instanceof KubeApiError) {
      this.owned = undefined;
      return emptySnapshot();
    }
    return this.accept(object);
  }

  /** True once this store wrote to, or read, an object it owns that holds entries (and did not lose it since). */
  get owning(): boolean {
    return this.owned !== undefined;
  }

  /** Takes an object a LIST returned (undefined: it does not exist) as the current state of this object. */
  adopt(object: KubeObject | undefined): Snapshot {
    if (object) return this.accept(object);
    this.owned = undefined;
    return emptySnapshot();
  }

  /** Forgets the object (it was deleted): the next write creates it again. */
  forget(): void {
    this.owned = undefined;
    this.held = undefined;
    this.cache.offer(undefined, emptySnapshot());
  }

  /** The object's exact size, learned elsewhere (a split that found it below the threshold): replaces this store's estimate. */
  knownSize(bytes: number): void {
    this.knownBytes = bytes;
  }

  /** Bytes the object holds as this store last saw it, plus what it wrote since (see afterWrite). */
  get estimatedBytes(): number {
    return this.knownBytes;
  }

  /** Acknowledged puts of this store since it had made `count` of them (`writesSince(0)`: all of them). */
  writesSince(count: number): number {
    return this.acknowledgedPuts - count;
  }
  private acknowledgedPuts = 0;

  /** Throws {@link LayoutChanged} when the snapshot is a head without entries (a read must go to other objects). */
  readable(snapshot: Snapshot): void {
    if (!this.s.shard && !this.s.part && isEntrylessHead(snapshot)) throw new LayoutChanged(`bucket "${this.s.bucket}" keeps its entries in other objects`);
  }

  /**
   * Throws unless the snapshot is of an object a write may change: {@link LayoutChanged}
   * for a head without entries (the bucket is sharded or elastic) and for a part that is
   * gone (split); {@link SplitInProgress} for an object sealed for a split.
   */
  holdsEntries(snapshot: Snapshot): void {
    if (this.s.part && !snapshot.exists) throw new LayoutChanged(`part ${this.ref.name} of bucket "${this.s.bucket}" is gone (split)`);
    if (!this.s.shard && !this.s.part && isEntrylessHead(snapshot)) throw new LayoutChanged(`bucket "${this.s.bucket}" keeps its entries in other objects`);
    if (snapshot.exists && isSealed(snapshot.annotations)) throw new SplitInProgress(this.ref.name);
  }

  // ---------------------------------------------------------------- ownership and the cache

  /**
   * The role of an object this store reads or writes. Throws {@link ForeignObjectError}
   * unless k8s-kv created it for this bucket and app, UnsupportedFormatError when it
   * declares a format this code does not know, and {@link LayoutChanged} when it is not
   * the object this store expects (a shard of another layout).
   */
  private checkOwnership(object: KubeObject): ObjectRole {
    const role = checkOwnership(object, this.s);
    const { shard, part } = this.s;
    if (part) {
      if (role.role !== 'part' || role.depth !== part.depth || role.suffix !== part.suffix || role.headUid !== part.headUid) {
        throw new LayoutChanged(
          `${this.s.kind} "${object.metadata.name}" is not part ${part.depth}/${part.suffix} of the bucket "${this.s.bucket}" this store knows`,
        );
      }
    } else if (shard) {
      if (role.role !== 'shard' || role.index !== shard.index || role.count !== shard.count) {
        const says = role.role === 'shard' ? `${role.index}/${role.count}` : 'no shard';
        throw new LayoutChanged(
          `${this.s.kind} "${object.metadata.name}" should be shard ${shard.index}/${shard.count} of bucket "${this.s.bucket}" but says ${JSON.stringify(says)}`,
        );
      }
    } else if (role.role === 'shard' || role.role === 'part') {
      throw new ForeignObjectError(
        this.s.kind,
        object.metadata.name,
        this.s.namespace,
        `it is ${role.role === 'shard' ? `shard ${role.index}/${role.count}` : `part ${role.depth}/${role.suffix}`} of a bucket, not a bucket`,
      );
    }
    return role;
  }

  /** Ownership check and decoding, reusing the entries of the latest snapshot that did not change. */
  private decode(object: KubeObject): Snapshot {
    this.checkOwnership(object);
    this.latest = snapshotOf(this.s.kind, object, this.latest);
    this.latest.object = this.ref.name;
    this.knownBytes = this.latest.totalBytes;
    return this.latest;
  }

  /**
   * Remembers an object k8s-kv owns, which later puts patch directly; never a
   * sharded bucket's head, which holds no entries. A metadata-only answer (after a
   * write) does not show the entry map: it keeps what was known.
   */
  private own(object: KubeObject): void {
    const { uid, annotations } = object.metadata;
    if (declaresEntrylessHead(annotations) || uid === undefined) {
      this.owned = undefined;
      return;
    }
    const metadataOnly = object.apiVersion === PARTIAL_OBJECT_API_VERSION;
    const known = this.owned?.uid === uid ? this.owned : undefined;
    const entryMap = metadataOnly ? known?.entryMap === true : object[this.field] != null;
    // Entries added by hand to a ConfigMap's `data` (k8s-kv writes `binaryData`): a put of such a key replaces it.
    const strays = metadataOnly ? (known?.strays ?? new Set<string>()) : new Set(this.s.kind === 'ConfigMap' ? Object.keys(object.data ?? {}) : []);
    this.owned = { uid, tests: ownershipTests(this.s, uid, annotations), entryMap, strays };
  }

  /**
   * Takes what the cache shows of an object k8s-kv owns (the watch's decode refused any
   * other) as what a write tests, instead of a GET before this store's first write to it:
   * a bucket of many parts would pay one per part. A cache that is behind costs a failed
   * `test` at the server and a GET then, as any stale plan does.
   */
  private ownCached(): void {
    const cached = this.peek();
    if (!cached?.exists || cached.uid === undefined || declaresEntrylessHead(cached.annotations)) return;
    this.owned = { uid: cached.uid, tests: this.guardOf(cached), entryMap: cached.hasEntryMap, strays: new Set(cached.strays) };
  }

  /**
   * Takes an object this process created for a split (a child, as its create answered)
   * as what this store's first write tests, instead of a GET before it.
   */
  ownCreated(object: KubeObject): void {
    if (this.owned === undefined) void this.learn(object).catch(() => undefined);
  }

  /** The ownership tests of a snapshot's object (the state a plan was made on). */
  guardOf(snapshot: Snapshot): JsonPatchOp[] {
    return ownershipTests(this.s, snapshot.uid, snapshot.annotations);
  }

  /** Checks ownership of an object the server returned, decodes it, and hands it to the cache. */
  private accept(object: KubeObject): Snapshot {
    const snapshot = this.decode(object);
    this.own(object);
    this.cache.offer(object, snapshot);
    return snapshot;
  }

  /**
   * Where the cache learns of this process's writes: the server's answer to a
   * write is checked for ownership and handed to the cache when one runs. A process
   * that only writes asks for metadata-only answers and never decodes whole snapshots.
   */
  private async learn(object: KubeObject): Promise<void> {
    this.checkOwnership(object);
    this.own(object);
    if (object.apiVersion === PARTIAL_OBJECT_API_VERSION) {
      // A metadata-only answer, and a cache started while the write was in flight: fetch the
      // new state so the cache shows this write (read-your-writes). The watch brings it too.
      if (this.cache.active || this.cache.listing) await this.read().catch(() => undefined);
      return;
    }
    if (this.cache.active) this.cache.offer(object, this.decode(object));
    else {
      // The size is all this store needs of an answer it asked for whole (see answerOptions).
      this.knownBytes = objectDataBytes(this.s.kind, object);
      if (this.cache.listing) this.cache.offer(object, emptySnapshot()); // kept until the first list is in
    }
  }

  /**
   * Whether a write's answer may be metadata only: when no cache wants the new
   * state, and the object's size does not matter (it never splits). A process
   * that only writes a large object then never receives, parses or decodes it
   * whole (and the server does not encode it). An object that splits keeps small,
   * and its exact size after each write decides when it splits: every writer
   * writes it, so what one writer wrote says little of its size.
   */
  private answerOptions(): PatchOptions | undefined {
    return this.cache.active || this.cache.listing || this.s.splits?.() === true ? undefined : { metadataOnly: true };
  }

  // ---------------------------------------------------------------- calls

  /** One port call with retries of transient failures; refusals `expected` accepts are returned, others thrown typed. */
  private call<T>(verb: string, fn: () => Promise<T>): Promise<T>;
  private call<T>(verb: string, fn: () => Promise<T>, expected: (refusal: KubeApiError) => boolean): Promise<T | KubeApiError>;
  private call<T>(verb: string, fn: () => Promise<T>, expected?: (refusal: KubeApiError) => boolean): Promise<T | KubeApiError> {
    const ctx: CallContext = { verb, kind: this.s.kind, namespace: this.s.namespace };
    return expected ? callApi(ctx, this.s.retry, fn, expected) : callApi(ctx, this.s.retry, fn);
  }

  /** A failure as the typed error users see. */
  typed(error: unknown, verb = 'patch'): KVError {
    return toKVError(error, { verb, kind: this.s.kind, namespace: this.s.namespace });
  }

  /** A JSON patch of the object; like every patch here, it also clears managedFields. */
  private async jsonPatch(ops: JsonPatchOp[], options?: PatchOptions): Promise<KubeObject> {
    this.patching++;
    try {
      return await this.s.api.jsonPatch(this.ref, [...ops, { op: 'add', path: '/metadata/managedFields', value: CLEAR_MANAGED_FIELDS }], options);
    } finally {
      if (--this.patching === 0) for (const resolve of this.quiet.splice(0)) resolve();
    }
  }

  /**
   * A put's or a delete's patch, sent in its turn among the bucket's writes on the wire
   * (write-limit.ts) and timed for that limit. `holdable` (a put): while this process
   * splits the object, wait for the split and route again instead (holdWrites).
   */
  private async limitedPatch(ops: JsonPatchOp[], expected: (refusal: KubeApiError) => boolean, holdable = false): Promise<KubeObject | KubeApiError> {
    const answered = await this.s.writeLimit?.acquire(currentDeadline());
    if (holdable && this.held) {
      answered?.(undefined);
      await untilDeadline(this.held, 'a split of the bucket was finishing').catch(() => undefined);
      throw new SplitWaited(`${this.ref.name} was being split`);
    }
    const sent = performance.now();
    try {
      const patched = await this.call('patch', () => this.jsonPatch(ops, this.answerOptions()), expected);
      answered?.(patched instanceof KubeApiError ? undefined : performance.now() - sent);
      return patched;
    } catch (error) {
      answered?.(undefined);
      throw error;
    }
  }

  /**
   * While this process splits the object: what settles at the split's switch, or at its end
   * (see holdWrites); settled for good once the split switched a part away (see switchedAway).
   */
  get splitHold(): Promise<void> | undefined {
    return this.held;
  }

  /**
   * This process's split switched the object (a part) away: it is deleted, and the layout this
   * process knows holds its children. A put that waited meanwhile (for a turn on the wire, or
   * behind another batch of this object) routes again instead of meeting the deleted object at
   * the server, and so does every later one (until forget(): a bucket made anew).
   */
  switchedAway(): void {
    this.held = Promise.resolve();
  }

  /**
   * This process is about to seal the object for a split (bucket.ts): puts not yet sent
   * wait until `until` settles (the split's switch, or its end), then route again
   * ({@link SplitWaited}) instead of meeting the seal or the deleted object at the
   * server. Resolves once none of this store's patches is on the wire, so that the seal
   * overtakes none (or after {@link QUIET_WAIT_MS}: a patch stuck on a silent connection
   * does not hold the split; should it land after the seal, it meets the seal).
   */
  holdWrites(until: Promise<void>): Promise<void> {
    this.held = until;
    void until.finally(() => {
      if (this.held === until) this.held = undefined;
    });
    if (this.patching === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, QUIET_WAIT_MS);
      this.quiet.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A merge patch (RFC 7386, or strategic) setting `entries`; like every patch here, it also clears managedFields. */
  private mergePatch(type: 'merge' | 'strategic', metadata: Partial<ObjectMeta>, entries: Record<string, string>, options?: PatchOptions): Promise<KubeObject> {
    const patch = { metadata: { ...metadata, managedFields: CLEAR_MANAGED_FIELDS }, [this.field]: entries };
    return type === 'strategic' ? this.s.api.strategicMergePatch(this.ref, patch, options) : this.s.api.mergePatch(this.ref, patch, options);
  }

  isTooLarge(error: unknown): boolean {
    return (isStatus(error, 422) && /Too long/i.test((error as Error).message)) || (error instanceof Error && TOO_LARGE_FOR_ETCD.test(error.message));
  }

  // ---------------------------------------------------------------- creating the object

  /**
   * Creates this object in `role` holding `entries`. Resolves to the created object,
   * or undefined when someone else created it first. `once`: send the create once,
   * never repeated on a transient failure (which is thrown as it is: an update must
   * know that its create may have landed; a repeat would answer 409).
   */
  async createObject(role: ObjectRole, entries: Record<string, string> | undefined, once = false): Promise<KubeObject | undefined> {
    const body: KubeObject = {
      metadata: { name: this.ref.name, labels: bucketLabels(this.s.bucket, this.s.app), annotations: roleAnnotations(role) },
      ...(entries ? { [this.field]: entries } : {}),
      ...(this.s.kind === 'Secret' ? { type: 'Opaque' } : {}),
    };
    const send = (): Promise<KubeObject> => this.s.api.create(this.s.kind, this.s.namespace, body);
    const created = once
      ? await send().catch((error: unknown) => (isStatus(error, 409) ? error : Promise.reject(error)))
      : await this.call('create', send, (refusal) => refusal.status === 409 || refusal.status === 422);
    if (created instanceof KubeApiError) {
      if (created.status === 409) return undefined;
      throw created; // 422: invalid, or too large (the caller tells which)
    }
    await this.learn(created);
    return created;
  }

  /**
   * Creates the object holding `entries` (a shard once the router confirmed the layout).
   * Resolves to undefined when someone else created it first. A part is never created by a write:
   * a missing part was split, so the router must route again.
   */
  private async create(entries: Record<string, string>, once = false): Promise<KubeObject | undefined> {
    if (this.s.part) throw new LayoutChanged(`part ${this.ref.name} of bucket "${this.s.bucket}" is gone (split)`);
    const shard = this.s.shard;
    if (shard) await this.s.beforeCreate?.();
    return this.createObject(shard ? { role: 'shard', ...shard } : { role: 'bucket' }, entries, once);
  }

  // ---------------------------------------------------------------- puts

  /**
   * Writes entries atomically (creating the object when missing), in one patch
   * with whatever other puts are queued (group-commit.ts).
   */
  put(entries: PreparedEntry[]): Promise<void> {
    return this.commits.put(entries);
  }

  /** The object's budget now: the bucket's share for it, capped at the API server's limit. */
  private budget(): ObjectBudget {
    const budget = this.s.budget?.();
    return { bytes: Math.min(budget?.bytes ?? MAX_OBJECT_DATA_BYTES, MAX_OBJECT_DATA_BYTES), entries: budget?.entries };
  }

  /** Plans a write of `entries` on `view` (eviction.ts). */
  private plan(view: Snapshot, entries: readonly PreparedEntry[], budget = this.budget()): WritePlan {
    return planWrite({ snapshot: view, incoming: entries, budget, policy: this.s.evict, now: this.s.now() });
  }

  /** `test` + `remove` per removal: each applies only while the entry holds the text it was planned on. */
  private removalOps(removals: readonly Removal[]): JsonPatchOp[] {
    return removals.flatMap((r): JsonPatchOp[] => [
      { op: 'test', path: pointer(this.field, r.dataKey), value: r.b64 },
      { op: 'remove', path: pointer(this.field, r.dataKey) },
    ]);
  }

  /**
   * One atomic write of entries (later entries for the same key win), with the
   * removals its plan needs (eviction.ts) in the same patch. The plan is made on
   * the cache's view when the cache runs; without one, a write goes ahead
   * unplanned unless the object's budget is tighter than the API server's limit
   * (then it reads the object first). A plan that says "does not fit" on the
   * cache's view, a refusal as too large, and a failed `test` are planned again
   * on a fresh GET; a write that does not fit on that fails with BucketFullError.
   */
  private async write(entries: PreparedEntry[]): Promise<void> {
    const latest = new Map<string, PreparedEntry>();
    for (const entry of entries) latest.set(entry.dataKey, entry);
    const incoming = [...latest.values()];
    const patchEntries: Record<string, string> = {};
    for (const entry of incoming) patchEntries[entry.dataKey] = entry.b64;
    const batchBytes = incoming.reduce((sum, e) => sum + e.size, 0);
    const budget = this.budget();
    // Not even an empty object holds them: nothing to plan.
    if (!planWrite({ snapshot: emptySnapshot(), incoming, budget, now: 0 }).fits) throw await this.full(entries);
    // Without a cache, a budget below the object limit needs a look at the object first, unless
    // what this store knows of it (bytes as last seen, plus what it wrote since) leaves room.
    const mustLook = budget.entries !== undefined || (budget.bytes < MAX_OBJECT_DATA_BYTES && this.knownBytes + batchBytes > budget.bytes);
    /** The object as a GET showed it for this write: a plan on it is exact as of that read. */
    let fresh: Snapshot | undefined;
    for (let attempt = 0; attempt < MAX_REPLANS; attempt++) {
      // What the patch must test of the object: from the cache when it shows it, else from a GET.
      if (this.owned === undefined && attempt === 0) this.ownCached();
      if (this.owned === undefined) {
        fresh = await this.read();
        this.holdsEntries(fresh);
        if (!fresh.exists) {
          try {
            if (await this.create(patchEntries)) {
              this.knownBytes = batchBytes;
              this.s.afterWrite?.(batchBytes);
              return;
            }
          } catch (error) {
            if (this.isTooLarge(error)) throw await this.full(entries, error);
            throw error;
          }
          fresh = undefined;
          continue;
        }
      }
      // Plan on the object as last read, else on the cache; with neither, read it when the budget says so.
      if (!fresh && mustLook && !this.peek()) fresh = await this.read();
      const view = fresh ?? this.peek();
      let removals: Removal[] = [];
      if (view) {
        this.holdsEntries(view);
        const plan = this.plan(view, incoming, budget);
        if (!plan.fits) {
          if (view === fresh) throw this.fullError(plan, entries);
          fresh = await this.read(); // the cache may be behind: look again before refusing
          continue;
        }
        removals = plan.removals;
      }
      if (this.owned === undefined) continue; // the read found the object gone
      const { tests, entryMap, strays } = this.owned;
      const ops: JsonPatchOp[] = [...tests];
      if (entryMap) ops.push(...this.removalOps(removals));
      // A key may not be in `data` and `binaryData` at once: a put replaces an entry added by hand to `data`.
      for (const dataKey of Object.keys(patchEntries)) if (strays.has(dataKey)) ops.push({ op: 'remove', path: pointer('data', dataKey) });
      if (entryMap) for (const [dataKey, b64] of Object.entries(patchEntries)) ops.push({ op: 'add', path: pointer(this.field, dataKey), value: b64 });
      else ops.push({ op: 'test', path: `/${this.field}`, value: null }, { op: 'add', path: `/${this.field}`, value: patchEntries });
      const patched = await this.limitedPatch(ops, (refusal) => isRaceLost(refusal) || refusal.status === 409 || this.isTooLarge(refusal), true);
      if (!(patched instanceof KubeApiError)) {
        for (const dataKey of Object.keys(patchEntries)) strays.delete(dataKey);
        // Replaced by the exact figure when the answer is decoded.
        this.knownBytes += batchBytes - removals.reduce((sum, r) => sum + r.size, 0);
        await this.learn(patched);
        this.s.afterWrite?.(this.knownBytes);
        return;
      }
      if (this.isTooLarge(patched)) {
        // Planned on a view that was behind, or on none: plan again on the object as it is.
        if (view !== undefined && view === fresh) throw await this.full(entries, patched);
        fresh = await this.read();
        continue;
      }
      // Deleted, replaced, no longer ours, its entry map is gone, or an entry planned for
      // removal changed: read it again (which refuses an object that is no longer this
      // bucket's) and plan again. Writers evicting from a full object all plan to remove
      // its oldest entries: a random pause first, so that they do not collide again.
      this.owned = undefined;
      fresh = undefined;
      if (removals.length > 0) await conflictBackoff(attempt + 1);
    }
    throw new ConflictError(`Could not write to bucket "${this.s.bucket}" (${this.ref.name}): it kept being deleted, replaced or changed while writing.`);
  }

  /** The background sweep's patch (expiry-sweeper.ts): the removals, planned on `snapshot`. A lost race changes nothing and is fine. */
  private async sweep(snapshot: Snapshot, removals: Removal[]): Promise<void> {
    if (isSealed(snapshot.annotations)) return; // being split: its entries are being copied
    const ops = [...this.guardOf(snapshot), ...this.removalOps(removals)];
    const patched = await this.call(
      'patch',
      () => this.jsonPatch(ops, this.answerOptions()),
      (refusal) => isRaceLost(refusal) || refusal.status === 409,
    );
    if (!(patched instanceof KubeApiError)) await this.learn(patched);
  }

  /**
   * For a compare-and-swap writing `entry` on `snapshot`: the `test`+`remove`
   * operations that make room for it (eviction.ts), or undefined when it does not fit.
   */
  room(snapshot: Snapshot, entry: PreparedEntry): JsonPatchOp[] | undefined {
    const plan = this.plan(snapshot, [entry]);
    return plan.fits ? this.removalOps(plan.removals) : undefined;
  }

  /** The error for entries that do not fit (in the object's budget), with the object's usage as a GET shows it. */
  async full(entries: PreparedEntry[], cause?: unknown): Promise<BucketFullError> {
    const snapshot = await this.read();
    return this.fullError(planWrite({ snapshot, incoming: entries, budget: this.budget(), now: this.s.now() }), entries, cause);
  }

  /** The error for a plan that does not fit. */
  private fullError(plan: WritePlan, entries: readonly PreparedEntry[], cause?: unknown): BucketFullError {
    const { usage } = plan;
    const shard = this.s.shard;
    return new BucketFullError(this.s.bucket, usage.currentBytes, usage.attemptedBytes, usage.limitBytes, cause, shard && { ...shard, name: this.ref.name }, {
      maxBytes: usage.limitBytes < MAX_OBJECT_DATA_BYTES ? (this.s.maxBytes ?? usage.limitBytes) : undefined,
      entries: usage.limitEntries === undefined ? undefined : { current: usage.currentEntries, attempted: usage.attemptedEntries, limit: usage.limitEntries },
      evict: this.s.evict,
      tooManyRemovals: !plan.fits && plan.why === 'patch',
      writing: entries.length,
    });
  }

  // ---------------------------------------------------------------- deletes

  /**
   * Removes keys in one atomic patch. Returns, per data key, whether a live
   * (unexpired) entry was there. Missing keys are not an error. The patch tests
   * every key against the state it was planned on (value, or absence), so the
   * answer is exact even when the plan came from the cache: on a mismatch the
   * object is re-read and the patch planned again.
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
    for (let plan = 0; plan < MAX_REPLANS; plan++) {
      this.holdsEntries(view);
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
      const ops: JsonPatchOp[] = this.guardOf(view);
      for (const k of unique) {
        // An entry added by hand to a ConfigMap's `data` is removed from there.
        const path = pointer(view.strays?.has(k) ? 'data' : this.field, k);
        const entry = present.get(k);
        if (entry) {
          if (!view.corruptByDataKey.has(k)) ops.push({ op: 'test', path, value: entry.b64 });
          ops.push({ op: 'remove', path });
        } else if (view.hasEntryMap && !fresh) {
          ops.push({ op: 'test', path, value: null });
        }
      }
      const patched = await this.limitedPatch(ops, isRaceLost);
      if (!(patched instanceof KubeApiError)) {
        await this.learn(patched);
        for (const k of targets) result.set(k, present.get(k)!.live);
        return result;
      }
      // Gone (404): a bucket torn down has nothing to delete, but a part was split, and its keys are
      // in its children now: the read below says which (for a part, LayoutChanged routes the delete again).
      if (patched.status === 404) this.owned = undefined;
      // The object changed since the plan (or was replaced): look again.
      view = await this.read();
      fresh = true;
    }
    throw new ConflictError(`Could not delete from bucket "${this.s.bucket}": it kept changing under the delete.`);
  }

  // ---------------------------------------------------------------- updates

  /**
   * Atomic read-modify-write of one key (compare-and-swap.ts). `decide` sees the
   * current snapshot and returns what to do; on a lost race the snapshot is re-read
   * and `decide` runs again. Resolves to a snapshot that holds the key as it is after
   * the update (when no cache is running, only that key: the server answers with
   * metadata only).
   */
  update(key: string, dataKey: string, decide: (snapshot: Snapshot) => Promise<UpdateDecision>, state?: SwapState): Promise<Snapshot> {
    // Updates of one key from this process take turns: they would only defeat each other's
    // compare-and-swap at the server. Contention is then only between processes.
    const previous = this.keyTurns.get(dataKey) ?? Promise.resolve();
    const maxAttempts = this.s.maxUpdateAttempts ?? DEFAULT_MAX_UPDATE_ATTEMPTS;
    const turn = previous.then(() => compareAndSwap(this, this.field, key, dataKey, decide, maxAttempts, state));
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    this.keyTurns.set(dataKey, settled);
    void settled.then(() => {
      if (this.keyTurns.get(dataKey) === settled) this.keyTurns.delete(dataKey);
    });
    return turn;
  }

  /** Sends a compare-and-swap's write (no retry: a lost answer is the caller's to resolve) and returns the key's state after it. */
  async send(write: SwapWrite, decision: UpdateDecision & { action: 'put' | 'delete' }, dataKey: string): Promise<Snapshot> {
    let written: KubeObject;
    switch (write.send) {
      case 'create': {
        // What the key holds after the update: the created object (a read now could show later writes).
        const created = await this.create(write.entries, true);
        if (!created) throw new RaceLost();
        return snapshotOf(this.s.kind, created);
      }
      case 'json':
        written = await this.jsonPatch(write.ops, this.answerOptions());
        break;
      case 'merge':
        written = await this.mergePatch('merge', { uid: write.uid, resourceVersion: write.resourceVersion }, write.entries, this.answerOptions());
        break;
    }
    if (written.apiVersion === PARTIAL_OBJECT_API_VERSION) {
      await this.learn(written);
      // The answer has no entries: what the key holds now is what this update wrote.
      return snapshotOf(this.s.kind, { metadata: written.metadata, [this.field]: decision.action === 'put' ? { [dataKey]: decision.entry.b64 } : {} });
    }
    return this.accept(written);
  }
}
