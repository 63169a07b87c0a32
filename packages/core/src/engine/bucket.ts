/**
 * A bucket in any of its layouts, as `createKV` uses it. The bucket's own
 * object (its head) says which:
 * - format 1: the head holds every entry (one {@link ObjectStore});
 * - format 2 (sharded, created with `shards: N`): entry `k` lives in shard
 *   `<bucket>.shard-<i>`, i = shardIndex(k, N); the head holds the count;
 * - format 3 (elastic): a format-1 bucket whose head passed the split threshold
 *   was split; entry `k` lives in the live part whose hash range holds it
 *   (elastic-layout.ts), and parts go on splitting as they grow (split.ts).
 * Per bucket, this file routes keys to objects, follows the layout as it
 * changes, starts and finishes splits, turns the objects' changes into per-key
 * events, and does the work that spans objects (listing, teardown). Every read,
 * write and retry rule of one object is its ObjectStore's.
 */
import type { PreparedEntry } from '../codec/entry.ts';
import { shardIndex, shardName } from '../codec/shard-hash.ts';
import { ConflictError, UnsupportedFormatError, ValueTooLargeError, type KVError } from '../errors.ts';
import { runUnder, untilDeadline } from '../kube/call-deadline.ts';
import { MAX_OBJECT_DATA_BYTES } from '../kube/object-rules.ts';
import type { KubeObject, ObjectList } from '../kube/port.ts';
import type { KVChangeEvent } from '../types.ts';
import { toKVError } from './api-errors.ts';
import { newSwapState, type UpdateDecision } from './compare-and-swap.ts';
import type { ObjectBudget } from './eviction.ts';
import { ElasticLayout, partInfo, type PartInfo } from './elastic-layout.ts';
import { LayoutChanged, SplitInProgress, SplitWaited } from './layout-changed.ts';
import { ObjectStore, type ObjectStoreSettings } from './object-store.ts';
import { ANNOTATION_FORMAT, ANNOTATION_HEAD_UID, ANNOTATION_PART, ANNOTATION_SEALED, ANNOTATION_SHARDS, ANNOTATION_SPLIT_FROM } from './labels.ts';
import { bucketSelector, checkOwnership, isSealed, parseRole } from './ownership.ts';
import { callApi, MAX_ROUTES } from './retry-policy.ts';
import { mergeSnapshots, type Snapshot } from './snapshot.ts';
import { activatePart, SPLIT_BYTES, splitObject, type SplitContext, type SplitProgress, type SplitTarget } from './split.ts';
import { rvNumber, WatchLoop } from './watch-loop.ts';
import { WriteLimit } from './write-limit.ts';

/** Settings of a {@link Bucket}. */
export interface BucketSettings extends ObjectStoreSettings {
  /** Shards of the bucket when this process creates it (default 1: one object that splits as it grows). */
  shards?: number | undefined;
  /** Entries the bucket may hold at most (default: no limit); each object keeps its share. */
  maxEntries?: number | undefined;
  /** Test hook of splits (split.ts `beforeStep`). */
  beforeSplitStep?: SplitContext['beforeStep'];
}

/** Default `maxBytes`: 64 MiB (docs/FORMAT.md section 9.6 and the README say why). */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** LISTs of one read of an elastic bucket's layout that may show it incomplete (see readLayout). */
const MAX_LAYOUT_READS = 3;

/** How long a writer that meets a sealed object waits for the process splitting it before finishing the split itself. */
const SEAL_PATIENCE_MS = 50;

/** How the bucket is laid out, as its head says. */
type Layout = { kind: 'single' } | { kind: 'sharded'; count: number } | { kind: 'elastic'; parts: ElasticLayout };

/** A listener of per-key changes. */
export type ChangeListener = (event: KVChangeEvent) => void;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A bucket of any layout. */
export class Bucket {
  private readonly s: BucketSettings;
  /** The store of the bucket's own object: all entries (format 1), or the head (formats 2 and 3). */
  readonly head: ObjectStore;
  /** The stores of the bucket's other objects (shards, parts), by object name. */
  private readonly stores = new Map<string, ObjectStore>();
  /** How many puts and deletes its objects keep on the wire at once, together (write-limit.ts). */
  private readonly writeLimit = new WriteLimit();
  /** One list+watch by label for every object of the bucket: the read cache, and `kv.watch()`. */
  private readonly loop: WatchLoop;
  /** The layout last read from the server (uncached processes reuse it until the server contradicts it). */
  private known: Layout | undefined;
  /** Parts this process knows are gone (split) before its cache does. */
  private readonly gone = new Set<string>();
  /** Splits this process is running, by object name. */
  private readonly splits = new Map<string, Promise<void>>();
  /** Failures of splits already reported through onError (each once). */
  private readonly reported = new Set<string>();
  /** True once a GET confirmed what the cache shows of the head (a foreign object without our labels is not in the watch). */
  private headChecked = false;
  /**
   * The newest resourceVersion of the layout this process learned from the server directly
   * (a GET of the head; a LIST of the parts, at the LIST's resourceVersion, which also covers
   * the parts it no longer shows, deleted by a split): until the watch has caught up with it, the
   * cache's layout is older than what this process knows (it may have written where the
   * cache does not look yet), and the layout read from the server is used.
   */
  private freshRv = -1;
  /** Changes with every state the cached layout depends on (an object's snapshot, `gone`, `headChecked`). */
  private version = 0;
  /** The cached layout (null: incomplete) for a state of the objects' metadata. */
  private memo: { key: string; layout: Layout | undefined | null } | undefined;
  /** Per object, what its metadata said when the layout was last computed (see changed()). */
  private readonly signatures = new Map<string, string>();
  /** The last merged view of a bucket of several objects, reused while none changed. */
  private merged: Snapshot | undefined;
  /** `kv.watch()` listeners, and the live objects' snapshots their last events were computed from. */
  private readonly listeners = new Set<ChangeListener>();
  private emitted: Map<string, Snapshot> | undefined;
  private emitting = false;
  private emitAgain = false;
  private readonly maxParts: number;

  constructor(settings: BucketSettings) {
    // A bucket without list/watch rights says so once, not once per object.
    let refused = false;
    const onCacheRefused = (error: KVError): void => {
      if (refused) return;
      refused = true;
      settings.onError?.(error);
    };
    this.s = { ...settings, onCacheRefused };
    // A bucket whose maxBytes one object can hold stays one object.
    const maxBytes = settings.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxParts = maxBytes <= MAX_OBJECT_DATA_BYTES ? 1 : Math.floor(maxBytes / SPLIT_BYTES);
    this.loop = new WatchLoop({
      api: settings.api,
      kind: settings.kind,
      namespace: settings.namespace,
      selectors: { labelSelector: bucketSelector(settings.bucket) },
      onError: settings.onError,
      onUnknown: (name, object) => this.discovered(name, object),
    });
    this.head = new ObjectStore({
      ...this.s,
      maxBytes,
      watchLoop: this.loop,
      writeLimit: this.writeLimit,
      onSnapshot: (snapshot) => this.changed(this.s.bucket, snapshot),
      afterWrite: (bytes) => this.afterWrite(this.head, bytes),
      splits: () => this.maxParts > 1,
      budget: () => this.budget(this.s.bucket),
    });
  }

  /** True when reads use the cache (option `cache`, default true). */
  private get caching(): boolean {
    return this.s.cache !== false;
  }

  // ---------------------------------------------------------------- objects and their stores

  /** The store of a shard or part (made once per object name). */
  private storeFor(
    name: string,
    role: { shard: { index: number; count: number } } | { part: { depth: number; suffix: number; headUid: string } },
  ): ObjectStore {
    let store = this.stores.get(name);
    if (store) return store;
    store = new ObjectStore({
      ...this.s,
      maxBytes: this.s.maxBytes ?? DEFAULT_MAX_BYTES,
      objectName: name,
      ...role,
      ...('shard' in role ? { beforeCreate: () => this.confirmShards(role.shard.count) } : {}),
      watchLoop: this.loop,
      writeLimit: this.writeLimit,
      onSnapshot: (snapshot) => this.changed(name, snapshot),
      afterWrite: (bytes) => this.afterWrite(store!, bytes),
      splits: () => 'part' in role && this.maxParts > 1,
      budget: () => this.budget(name),
    });
    this.stores.set(name, store);
    return store;
  }

  /** The store of an object of this bucket by name (the head, or a shard's or part's made so far). */
  private storeNamed(name: string): ObjectStore | undefined {
    return name === this.s.bucket ? this.head : this.stores.get(name);
  }

  /** The watch saw an object no store is registered for: a shard or a part appears. */
  private discovered(name: string, object: KubeObject): void {
    const role = parseRole(object.metadata.annotations);
    if (role.role === 'shard') this.storeFor(name, { shard: { index: role.index, count: role.count } });
    else if (role.role === 'part') this.storeFor(name, { part: { depth: role.depth, suffix: role.suffix, headUid: role.headUid } });
  }

  /** Before a shard is created: the head must still declare this shard count (never create shards of a stale layout). */
  private async confirmShards(count: number): Promise<void> {
    const { layout } = await this.layout(true, false);
    if (layout?.kind !== 'sharded' || layout.count !== count) throw new LayoutChanged(`bucket "${this.s.bucket}" is no longer laid out in ${count} shards`);
  }

  // ---------------------------------------------------------------- the layout

  /** The layout a head object declares, with the parts seen (format 3); undefined when the bucket does not exist. */
  private layoutOf(head: Snapshot, parts: () => Iterable<PartInfo>, listed = false): Layout | undefined {
    if (!head.exists) return undefined;
    const role = parseRole(head.annotations);
    switch (role.role) {
      case 'bucket':
        return { kind: 'single' };
      case 'head':
        return { kind: 'sharded', count: role.shards };
      case 'elastic': {
        const layout = new ElasticLayout(this.s.bucket, head.uid!, parts(), this.gone);
        for (const part of layout.live.values()) if (part.splitFrom) this.activate(part);
        // Only on what one LIST showed: a part is deleted on the server's word, never on a cache's.
        if (listed) for (const part of layout.shadowed) this.removeShadowed(part);
        return { kind: 'elastic', parts: layout };
      }
      case 'unsupported':
        throw new UnsupportedFormatError(this.s.kind, this.s.bucket, this.s.namespace, role.format);
      default:
        // A shard or a part under the bucket's own name: its store refused it already.
        throw new LayoutChanged(`bucket "${this.s.bucket}" is named by a ${role.role} of another bucket`);
    }
  }

  /** The parts the cache holds (`watching`: as last delivered, connected or not). */
  private *cachedParts(watching: boolean): Iterable<PartInfo> {
    for (const store of this.stores.values()) {
      const snapshot = watching ? store.lastWatched() : store.watched();
      if (!snapshot?.exists) continue;
      // Read from the annotations once per state of the object, not on every layout.
      let part = this.partInfos.get(snapshot);
      if (part === undefined && !this.partInfos.has(snapshot)) {
        part = partInfo({ name: store.ref.name, uid: snapshot.uid, annotations: snapshot.annotations });
        this.partInfos.set(snapshot, part);
      }
      if (part) yield part;
    }
  }

  /** What each snapshot of a part says of it (see partInfo). */
  private readonly partInfos = new WeakMap<Snapshot, PartInfo | undefined>();

  /**
   * The layout as the cache shows it; undefined when the cache cannot tell (not running, or an
   * elastic view that is not complete). `watching`: for events, also when reads do not use the cache.
   */
  private cachedLayout(watching = false): { layout: Layout | undefined; head: Snapshot } | undefined {
    if (!watching && !this.caching) return undefined;
    if (!watching && this.cacheBehind()) return undefined;
    const head = watching ? this.head.lastWatched() : this.head.watched();
    if (!head || (!head.exists && !this.headChecked && !watching)) return undefined;
    // The layout is computed again only when an object's metadata changed (see changed()), not on
    // every write: a bucket of many parts would pay for all of them on each put.
    const key = `${this.version}/${this.loop.connected}/${watching}`;
    if (this.memo?.key !== key) {
      const layout = this.layoutOf(head, () => this.cachedParts(watching));
      this.memo = { key, layout: layout?.kind === 'elastic' && !layout.parts.complete() ? null : layout };
    }
    return this.memo.layout === null ? undefined : { layout: this.memo.layout, head };
  }

  /** True while the watch has not caught up with the layout this process read from the server. */
  private cacheBehind(): boolean {
    return this.freshRv >= 0 && rvNumber(this.loop.resourceVersion) < this.freshRv;
  }

  /** Notes the resourceVersions of objects read from the server (see {@link freshRv}). */
  private learnedFrom(...resourceVersions: Array<string | undefined>): void {
    for (const rv of resourceVersions) this.freshRv = Math.max(this.freshRv, rvNumber(rv));
    this.version++;
  }

  /** The read of the layout under way (its start, and its promise), shared by the callers that need one as fresh; and the last one that ended. */
  private refreshing: { started: number; layout: Promise<{ layout: Layout | undefined; head: Snapshot }> } | undefined;
  private refreshed: { started: number; layout: Promise<{ layout: Layout | undefined; head: Snapshot }> } | undefined;

  /**
   * The layout from the server, read once for every caller that asks while it is under way
   * and learned of a change before it started (`since`, from performance.now()): after a
   * split, the writers it turned away read the new layout together, not each on its own.
   */
  private freshLayout(since = performance.now()): Promise<{ layout: Layout | undefined; head: Snapshot }> {
    const running = this.refreshing;
    if (running && running.started >= since) return running.layout;
    // One that ended since is fresh enough too, for a caller that learned of a change (`since`); a
    // caller that knows of none takes only a read under way (one that ended may be long past).
    if (since > 0 && this.refreshed && this.refreshed.started >= since) return this.refreshed.layout;
    const started = performance.now();
    const layout = this.readLayout().finally(() => {
      if (this.refreshing?.layout === layout) this.refreshing = undefined;
    });
    this.refreshing = { started, layout };
    void layout.then(
      () => {
        this.refreshed = { started, layout };
      },
      () => undefined,
    );
    return layout;
  }

  /**
   * The layout from the server: the head (GET) and, for format 3, the parts' metadata (one
   * LIST). A LIST the server answered before a split this process has since seen end (its
   * part in `gone`) may not show the split's children: their range is then uncovered, and
   * the LIST is sent again (it then shows them, or their own children).
   */
  private async readLayout(): Promise<{ layout: Layout | undefined; head: Snapshot }> {
    const head = await this.head.read();
    this.headChecked = true;
    const versions: Array<string | undefined> = [head.resourceVersion];
    const elastic = head.exists && parseRole(head.annotations).role === 'elastic';
    let parts: PartInfo[] = [];
    for (let attempt = 0; ; attempt++) {
      if (elastic) {
        const list = await this.list(true);
        parts = list.items.flatMap((object) => partInfo(object.metadata) ?? []);
        // The LIST's own resourceVersion: objects it no longer shows were deleted before it (a split's switch).
        versions.push(list.resourceVersion);
      }
      this.known = this.layoutOf(head, () => parts, true);
      if (this.known?.kind !== 'elastic' || this.known.parts.complete() || attempt === MAX_LAYOUT_READS - 1) break;
    }
    this.learnedFrom(...versions);
    return { layout: this.known, head };
  }

  /**
   * The bucket's layout: from the cache when it runs; else the last one seen, if
   * any (writes go ahead on it: a changed layout makes them fail and route again);
   * else from the server. `fresh`: from the server. `read`: a read is asking (the
   * cache is started for it).
   */
  private async layout(fresh: boolean, read: boolean, since?: number): Promise<{ layout: Layout | undefined; head?: Snapshot }> {
    if (!fresh && this.caching) {
      if (read) await this.startCache();
      const cached = this.cachedLayout();
      if (cached) return cached;
    }
    if (!fresh && this.known && (!read || !this.caching || this.cacheBehind())) return { layout: this.known };
    // A caller that knows of no change takes any layout read under way or just read (a stale one
    // only costs it a route again); one that learned of a change needs one read since.
    return this.freshLayout(fresh ? since : 0);
  }

  /** Starts the cache (idempotent); a refusal (no list/watch rights) leaves reads to GET. */
  private async startCache(): Promise<void> {
    await this.head.view();
  }

  /** Every object of this bucket (its own, and its shards or parts), as one LIST by label returns them, and the LIST's resourceVersion. */
  private async list(metadataOnly = false): Promise<ObjectList> {
    const { api, kind, namespace, bucket, retry } = this.s;
    return await callApi({ verb: 'list', kind, namespace }, retry, () =>
      api.list(kind, namespace, { labelSelector: bucketSelector(bucket) }, { metadataOnly }),
    );
  }

  /** The store that holds a data key in a layout (the head, when the bucket does not exist yet). */
  private storeOf(layout: Layout | undefined, dataKey: string): ObjectStore {
    if (!layout || layout.kind === 'single') return this.head;
    if (layout.kind === 'sharded') {
      const index = shardIndex(dataKey, layout.count);
      return this.storeFor(shardName(this.s.bucket, index), { shard: { index, count: layout.count } });
    }
    const part = layout.parts.route(dataKey);
    if (!part) throw new LayoutChanged(`no live part of bucket "${this.s.bucket}" is known for a key`);
    return this.storeFor(part.name, { part: { depth: part.depth, suffix: part.suffix, headUid: part.headUid } });
  }

  /** The stores of every object holding entries in a layout. */
  private holders(layout: Layout): ObjectStore[] {
    if (layout.kind === 'single') return [this.head];
    if (layout.kind === 'sharded')
      return Array.from({ length: layout.count }, (_, index) => this.storeFor(shardName(this.s.bucket, index), { shard: { index, count: layout.count } }));
    return [...layout.parts.live.values()].map((part) => this.storeFor(part.name, { part: { depth: part.depth, suffix: part.suffix, headUid: part.headUid } }));
  }

  /** After an object answered that the layout changed: what this process learned from it. */
  private async learnFrom(error: LayoutChanged, store: ObjectStore): Promise<void> {
    if (error instanceof SplitWaited) return; // the split this process ran told it all (see split())
    // A split this process runs keeps the layout it knows up to date at its switch (see split()): a
    // write that met its seal or its switch before this process heard of them waits for it, and one
    // that found its part gone after the switch routes again on that layout.
    const name = error instanceof SplitInProgress ? error.objectName : store.ref.name;
    const running = this.storeNamed(name)?.splitHold ?? this.splits.get(name);
    if (running) {
      await untilDeadline(running, 'a split of the bucket was finishing').catch(() => undefined);
      return;
    }
    if (error instanceof SplitInProgress) {
      this.known = undefined;
      await this.awaitSplit(name);
      return;
    }
    const switchedHere = store.isPart && this.gone.has(name) && this.known?.kind === 'elastic' && !this.known.parts.live.has(name);
    if (!switchedHere) this.known = undefined;
    if (store.isPart) this.noteGone(name);
  }

  /** A part this process knows is gone (split) before its cache does: layouts leave it out. */
  private noteGone(name: string): void {
    this.gone.add(name);
    this.version++;
  }

  // ---------------------------------------------------------------- routing

  /**
   * Runs `run` on the items grouped by the object that holds them, in parallel;
   * groups whose object turned out to be laid out otherwise (LayoutChanged) are
   * routed again on a fresh layout, the others keep their outcome. Rejects with
   * the first other failure once all groups have settled.
   */
  private async routed<T, R>(
    items: T[],
    dataKeyOf: (item: T) => string,
    run: (store: ObjectStore, group: T[]) => Promise<R>,
    options: { creating?: boolean; placed?: (item: T) => ObjectStore | undefined } = {},
  ): Promise<R[]> {
    const results: R[] = [];
    let pending = items;
    let last: LayoutChanged | undefined;
    /** When the groups to route again learned that the layout changed. */
    let since: number | undefined;
    for (let route = 0; route < MAX_ROUTES && pending.length > 0; route++) {
      // Routed again: on a layout read from the server, unless this process's own split kept the one it knows (learnFrom).
      const { layout } = await this.layout(route > 0 && !this.known, false, since);
      const shards = this.s.shards ?? 1;
      if (!layout && options.creating && shards > 1) {
        // This process creates the bucket: its head first. Created, or someone else was first: route again.
        await this.head.createObject({ role: 'head', shards }, undefined);
        continue;
      }
      const groups = new Map<ObjectStore, T[]>();
      try {
        for (const item of pending) {
          const store = (route === 0 ? options.placed?.(item) : undefined) ?? this.storeOf(layout, dataKeyOf(item));
          const group = groups.get(store);
          if (group) group.push(item);
          else groups.set(store, [item]);
        }
      } catch (error) {
        if (!(error instanceof LayoutChanged)) throw error;
        last = error;
        // The layout at hand does not cover every key: the next route needs one read after this.
        this.known = undefined;
        since = performance.now();
        continue;
      }
      const entries = [...groups];
      const settled = await Promise.allSettled(
        entries.map(async ([store, group]) => {
          // An object this process has sealed for a split: wait for its switch instead of meeting the seal.
          const splitting = store.splitHold;
          if (splitting) {
            await untilDeadline(splitting, 'a split of the bucket was finishing').catch(() => undefined);
            throw new SplitWaited(`${store.ref.name} was being split`);
          }
          return run(store, group);
        }),
      );
      since = performance.now();
      pending = [];
      let failure: { reason: unknown } | undefined;
      for (const [i, outcome] of settled.entries()) {
        const [store, group] = entries[i]!;
        if (outcome.status === 'fulfilled') results.push(outcome.value);
        else if (outcome.reason instanceof LayoutChanged) {
          last = outcome.reason;
          pending.push(...group);
          await this.learnFrom(outcome.reason, store);
        } else failure ??= { reason: outcome.reason };
      }
      if (failure) throw failure.reason;
      // A write that found no bucket created a format-1 one: later calls go ahead on that layout.
      if (!this.known && this.head.owning) this.known = { kind: 'single' };
    }
    if (pending.length > 0)
      throw new ConflictError(`The layout of bucket "${this.s.bucket}" kept changing under the operation (${last?.message}); try again.`, undefined, last);
    return results;
  }

  // ---------------------------------------------------------------- reads

  /** The snapshot that holds `dataKey`: the whole bucket (format 1), or its shard or part. */
  async viewOf(dataKey: string): Promise<Snapshot> {
    let last: LayoutChanged | undefined;
    for (let route = 0; route < MAX_ROUTES; route++) {
      const { layout, head } = await this.layout(route > 0, true);
      if (!layout) return head ?? (await this.head.view());
      try {
        if (layout.kind === 'single') return await this.whole(head);
        const store = this.storeOf(layout, dataKey);
        // A part that exists holds its range until it is split, which deletes it.
        if (layout.kind === 'elastic') return await this.partView(store);
        if (this.caching) return await store.view();
        // A shard without a cache: read the head beside it, to check the layout still holds.
        const [snapshot, current] = await Promise.all([store.read(), head ?? this.head.read()]);
        const now = this.layoutOf(current, () => []);
        if (now?.kind !== 'sharded' || now.count !== layout.count) throw new LayoutChanged(`bucket "${this.s.bucket}" was laid out anew`);
        return snapshot;
      } catch (error) {
        if (!(error instanceof LayoutChanged)) throw error;
        last = error;
        this.known = undefined;
      }
    }
    throw new ConflictError(`The layout of bucket "${this.s.bucket}" kept changing under the read (${last?.message}); try again.`, undefined, last);
  }

  /** The entries of a format-1 bucket (the head as just read, or as its store sees it now). */
  private async whole(head: Snapshot | undefined): Promise<Snapshot> {
    const snapshot = head ?? (await this.head.view());
    this.head.readable(snapshot);
    return snapshot;
  }

  /**
   * The whole bucket. Several objects: their snapshots merged (`parts` holds each),
   * from the caches, or from one LIST of the bucket's objects by label.
   */
  async viewAll(): Promise<Snapshot> {
    let last: LayoutChanged | undefined;
    for (let route = 0; route < MAX_ROUTES; route++) {
      try {
        if (route > 0) this.known = undefined;
        const parts = this.caching ? await this.cachedHolders(route > 0) : await this.listedHolders();
        if (!Array.isArray(parts)) return parts;
        const previous = this.merged;
        if (previous?.parts?.length === parts.length && previous.parts.every((part, i) => part === parts[i])) return previous;
        this.merged = mergeSnapshots(parts);
        return this.merged;
      } catch (error) {
        if (!(error instanceof LayoutChanged)) throw error;
        last = error;
      }
    }
    throw new ConflictError(`The layout of bucket "${this.s.bucket}" kept changing under the read (${last?.message}); try again.`, undefined, last);
  }

  /** The snapshots of the objects holding entries, from the caches (a single snapshot for a format-1 bucket). */
  private async cachedHolders(fresh: boolean): Promise<Snapshot | Snapshot[]> {
    const { layout, head } = await this.layout(fresh, true);
    if (!layout) return head ?? (await this.head.view());
    if (layout.kind === 'single') return this.whole(head);
    if (layout.kind === 'elastic') return Promise.all(this.holders(layout).map((store) => this.partView(store)));
    return Promise.all(this.holders(layout).map((store) => store.view()));
  }

  /**
   * A live part's entries: from the cache, or the server when the cache cannot serve
   * them. A part the server no longer has was split after the layout this process
   * routed by was read (an empty view of it would hide its keys): route again.
   */
  private async partView(store: ObjectStore): Promise<Snapshot> {
    const snapshot = this.caching ? await store.view() : await store.read();
    if (snapshot.exists) return snapshot;
    this.noteGone(store.ref.name);
    throw new LayoutChanged(`part ${store.ref.name} of bucket "${this.s.bucket}" was split`);
  }

  /** The snapshots of the objects holding entries: a format-1 bucket's with one GET, others' with one LIST. */
  private async listedHolders(): Promise<Snapshot | Snapshot[]> {
    if (this.known?.kind !== 'sharded' && this.known?.kind !== 'elastic') {
      const head = await this.head.read();
      this.headChecked = true;
      this.version++;
      if (!head.exists || parseRole(head.annotations).role === 'bucket') {
        this.known = head.exists ? { kind: 'single' } : undefined;
        return head;
      }
    }
    const { items: objects, resourceVersion } = await this.list();
    const byName = new Map(objects.map((object) => [object.metadata.name, object]));
    const head = this.head.adopt(byName.get(this.s.bucket));
    this.headChecked = true;
    this.learnedFrom(resourceVersion);
    const parts = objects.flatMap((object) => partInfo(object.metadata) ?? []);
    const layout = this.layoutOf(head, () => parts, true);
    this.known = layout;
    if (!layout) return head;
    if (layout.kind === 'single') return this.whole(head);
    if (layout.kind === 'elastic' && !layout.parts.complete()) throw new LayoutChanged(`the parts of bucket "${this.s.bucket}" do not cover every key`);
    return this.holders(layout).map((store) => store.adopt(byName.get(store.ref.name)));
  }

  /** The whole bucket, with how many objects hold it and the most it may hold. */
  async usage(): Promise<{ snapshot: Snapshot; objects: number; limitBytes: number; layout: 'single' | 'elastic' | 'sharded' }> {
    const snapshot = await this.viewAll();
    const layout = this.cachedLayout()?.layout ?? this.known;
    const maxBytes = this.s.maxBytes ?? DEFAULT_MAX_BYTES;
    const objects = snapshot.parts?.length ?? 1;
    if (layout?.kind === 'sharded') return { snapshot, objects, limitBytes: MAX_OBJECT_DATA_BYTES * objects, layout: 'sharded' };
    return { snapshot, objects, limitBytes: this.maxParts === 1 ? Math.min(maxBytes, MAX_OBJECT_DATA_BYTES) : maxBytes, layout: layout?.kind ?? 'single' };
  }

  // ---------------------------------------------------------------- writes

  /**
   * Writes entries: one atomic patch per object involved (format 1: one patch, with
   * group commit), in parallel; each object's part lands or not on its own, and the
   * first failure is reported once all have settled.
   */
  async put(entries: PreparedEntry[]): Promise<void> {
    // Before any API call: a value no object can hold.
    for (const entry of entries) {
      if (entry.size > MAX_OBJECT_DATA_BYTES) throw new ValueTooLargeError(entry.key, entry.size, MAX_OBJECT_DATA_BYTES);
    }
    await this.routed(
      entries,
      (e) => e.dataKey,
      (store, group) => store.put(group),
      { creating: true },
    );
  }

  /** Removes keys; per data key, whether a live entry was there. `known`: the view the caller planned on. */
  async remove(dataKeys: string[], known?: Snapshot): Promise<Map<string, boolean>> {
    // The caller's view of each object (a merged view: its parts; else the one object it saw).
    const views = new Map<string, Snapshot>();
    for (const part of known?.parts ?? (known ? [known] : [])) if (part.object) views.set(part.object, part);
    // An entry is removed from the object the caller's view found it in (a hand-made entry may
    // sit in another shard than its hash says), else from the object the layout names.
    const foundIn = new Map<string, string>();
    for (const [object, part] of views) for (const dataKey of [...part.byDataKey.keys(), ...part.corruptByDataKey.keys()]) foundIn.set(dataKey, object);
    const placed = (dataKey: string): ObjectStore | undefined => {
      const object = foundIn.get(dataKey);
      return object === undefined ? undefined : this.storeNamed(object);
    };
    const results = await this.routed(
      dataKeys,
      (k) => k,
      (store, group) => store.remove(group, views.get(store.ref.name)),
      { placed },
    );
    return new Map(results.flatMap((result) => [...result]));
  }

  /** Atomic read-modify-write of one key, on the object that holds it (which may change under it: the update's state goes along). */
  async update(key: string, dataKey: string, decide: (snapshot: Snapshot) => Promise<UpdateDecision>): Promise<Snapshot> {
    const state = newSwapState();
    const [after] = await this.routed(
      [dataKey],
      (k) => k,
      (store) => store.update(key, dataKey, decide, state),
      { creating: true },
    );
    return after!;
  }

  // ---------------------------------------------------------------- splits

  /**
   * The budget of an object: its share of `maxEntries`, and its share of `maxBytes` when
   * the bucket may not grow by splitting it and the share is under 1 MiB; undefined when
   * only the object limit applies.
   */
  private budget(name: string): ObjectBudget | undefined {
    const parts = this.partsCount();
    const entries = this.s.maxEntries === undefined ? undefined : Math.max(1, Math.floor(this.s.maxEntries / parts));
    const layout = this.cachedLayout()?.layout ?? this.known;
    let bytes: number | undefined;
    if (layout?.kind !== 'sharded' && parts >= this.maxParts) {
      const maxBytes = this.s.maxBytes ?? DEFAULT_MAX_BYTES;
      const share = name === this.s.bucket && this.maxParts === 1 ? maxBytes : maxBytes / this.maxParts;
      if (share < MAX_OBJECT_DATA_BYTES) bytes = Math.floor(share);
    }
    return bytes === undefined && entries === undefined ? undefined : { bytes: bytes ?? MAX_OBJECT_DATA_BYTES, entries };
  }

  /** Objects a split left as they were, and the size they must pass before the next try (see afterWrite). */
  private readonly splitFloor = new Map<string, number>();

  /** True when one more split keeps the bucket within maxBytes' number of parts (the splits under way count: each adds an object). */
  private mayAddPart(): boolean {
    const splitting = this.splits.size;
    return this.partsCount() + splitting < this.maxParts;
  }

  /** Objects holding entries, as this process knows the layout. */
  private partsCount(): number {
    const layout = this.cachedLayout()?.layout ?? this.known;
    if (layout) this.lastPartsCount = !layout || layout.kind === 'single' ? 1 : layout.kind === 'sharded' ? layout.count : layout.parts.size;
    // No layout at hand (forgotten after a split, until the next read of it): the last one known, and the splits done since.
    return this.lastPartsCount;
  }

  /** The objects holding entries when a layout was last at hand, plus one for each split this process finished since. */
  private lastPartsCount = 1;

  /** After an acknowledged put: an object past the split threshold is split, in the background (not a format-2 shard). */
  private afterWrite(store: ObjectStore, bytes: number): void {
    const name = store.ref.name;
    if (bytes <= (this.splitFloor.get(name) ?? SPLIT_BYTES) || this.splits.has(name) || !this.mayAddPart()) return;
    // The object the write went to, as its store knows it (the layout this process knows may be older or newer);
    // splitObject checks it is still what it was. A write to the head went to a bucket of one object (format 1).
    const target: SplitTarget | undefined = store.part ? { name, ...store.part } : store === this.head ? { name, depth: 0, suffix: 0 } : undefined;
    if (target) void this.split(target, SPLIT_BYTES).catch(() => undefined);
  }

  /**
   * Runs a split (once at a time per object in this process); reports a split it could not
   * do once. A split is background work: it runs outside the deadline of the call that
   * started it. `unlessUnder`: see split.ts (a split this process decided on an estimate).
   */
  private split(target: SplitTarget, unlessUnder?: number): Promise<void> {
    const running = this.splits.get(target.name);
    if (running) return running;
    // This process's writes to the object wait for the split from its seal to its switch only.
    let released!: () => void;
    const switched = new Promise<void>((resolve) => {
      released = resolve;
    });
    const progress = async (event: SplitProgress, children: KubeObject[] = []): Promise<void> => {
      if (event === 'sealing' || event === 'sealed') {
        // Writes not sent yet wait for the switch; the seal waits for the ones on the wire (a write the seal
        // overtook would meet it, read the object to see why, and only then wait).
        const quiet = this.storeNamed(target.name)?.holdWrites(switched);
        if (event === 'sealing') await quiet;
        return;
      }
      // The children hold the object's keys from now on: writes that waited route again, on the
      // layout this process knows with the children in the object's place (no LIST needed).
      this.noteGone(target.name);
      const split = this.storeNamed(target.name);
      if (split?.isPart) split.switchedAway();
      const made = children.flatMap((child) => {
        const part = partInfo(child.metadata);
        // Their first writes test what the creates answered (no GET before each child's first write).
        if (part) this.storeFor(part.name, { part: { depth: part.depth, suffix: part.suffix, headUid: part.headUid } }).ownCreated(child);
        return part ?? [];
      });
      this.known = this.withChildren(this.known, target.name, made);
      released();
    };
    const context: SplitContext = { ...this.s, beforeStep: this.s.beforeSplitStep, progress };
    const writes = this.storeNamed(target.name)?.writesSince(0) ?? 0;
    const run = runUnder(undefined, async () => {
      try {
        const result = await splitObject(context, target, unlessUnder);
        if (result.outcome === 'kept') {
          const store = this.storeNamed(target.name);
          if (result.bytes > SPLIT_BYTES) {
            // Past the threshold but not made smaller by a split (one large value): not again before it has grown by half a threshold.
            this.splitFloor.set(target.name, result.bytes + SPLIT_BYTES / 2);
          } else if (store && store.writesSince(writes) === 0) {
            // Below the threshold after all (an estimate was high): its size, unless writes landed since it was read.
            store.knownSize(result.bytes);
          }
          return;
        }
        if (result.outcome === 'rolled-back') this.report(result.cause);
        if (result.outcome === 'split') {
          // It told this process the new layout at its switch (progress above).
          this.lastPartsCount += 1;
          // A child still past the threshold (an object filled by large batches) is split in turn.
          for (const child of result.children) if (child.bytes > SPLIT_BYTES && this.mayAddPart()) void this.split(child, SPLIT_BYTES).catch(() => undefined);
        } else this.known = undefined;
        this.version++;
      } catch (error) {
        this.known = undefined;
        this.report(error);
        throw error;
      } finally {
        this.splits.delete(target.name);
        released();
      }
    });
    this.splits.set(target.name, run);
    // Writes that landed while the split was looking at the object: look again once it is done.
    void run.then(
      () => {
        const store = this.storeNamed(target.name);
        if (store && store.writesSince(writes) > 0) this.afterWrite(store, store.estimatedBytes);
      },
      () => undefined,
    );
    return run;
  }

  /**
   * A known layout with an object replaced by the children its split made (the root's split:
   * the children alone); undefined when that does not give a complete layout.
   */
  private withChildren(known: Layout | undefined, name: string, made: PartInfo[]): Layout | undefined {
    let others: PartInfo[] = [];
    if (name !== this.s.bucket) {
      if (known?.kind !== 'elastic' || !known.parts.live.has(name)) return undefined;
      others = [...known.parts.live.values()].filter((part) => part.name !== name);
    }
    const headUid = made[0]?.headUid;
    if (headUid === undefined) return undefined;
    const next = new ElasticLayout(this.s.bucket, headUid, [...others, ...made], this.gone);
    return next.complete() ? { kind: 'elastic', parts: next } : undefined;
  }

  /** Tidying this process started, by `<what>:<uid>` (each once): awaited by close() and teardown(), by nothing else. */
  private readonly tidying = new Map<string, Promise<void>>();
  private readonly tidied = new Set<string>();

  /** Runs a tidying step once per object (uid); it must not slow a read down, and its failure is left for a later try by anyone. */
  private tidy(key: string, step: () => Promise<void>): void {
    if (this.tidied.has(key)) return;
    this.tidied.add(key);
    const run = runUnder(undefined, step).catch(() => undefined);
    this.tidying.set(key, run);
    void run.finally(() => this.tidying.delete(key));
  }

  /** Tidies a live part that still says where it was copied from (its split's process stopped after the switch). */
  private activate(part: PartInfo): void {
    const from = part.splitFrom;
    if (!from) return;
    this.tidy(`activate:${part.uid}`, () => activatePart({ ...this.s }, part.name, part.uid, `${from.uid}@${from.resourceVersion}`));
  }

  /** Deletes a part a late copier brought back (see ElasticLayout.shadowed): it holds nothing anyone reads. */
  private removeShadowed(part: PartInfo): void {
    const { api, kind, namespace, retry } = this.s;
    this.tidy(`remove:${part.uid}`, async () => {
      await callApi(
        { verb: 'delete', kind, namespace },
        retry,
        () => api.delete({ kind, namespace, name: part.name }, { uid: part.uid }),
        (refusal) => refusal.status === 404 || refusal.status === 409,
      );
    });
  }

  /** Reports a split that could not be done through onError, once per kind of failure. */
  private report(error: unknown): void {
    const typed = toKVError(error, { verb: 'create', kind: this.s.kind, namespace: this.s.namespace });
    const key = `${typed.code}:${typed.message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.s.onError?.(typed);
  }

  /**
   * A write met an object another process sealed: wait for that process; if it is still
   * sealed after a moment (that process may have died), finish the split here.
   * Waits no longer than the call's budget (the call then fails in time, retryably).
   */
  private async awaitSplit(name: string): Promise<void> {
    await sleep(SEAL_PATIENCE_MS * (0.5 + Math.random()));
    const head = name === this.s.bucket;
    const store = this.storeNamed(name);
    const snapshot = await store?.read();
    // Split meanwhile: this process knows before its cache does.
    if (store && !head && snapshot?.exists === false) this.noteGone(name);
    if (!snapshot?.exists || !isSealed(snapshot.annotations)) return;
    const part = head ? { name, depth: 0, suffix: 0 } : partInfo({ name, uid: snapshot.uid, annotations: snapshot.annotations });
    if (part) await untilDeadline(this.split(part), 'a split of the bucket was finishing').catch(() => undefined);
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribes to changes of any key by any writer. Events are computed for the
   * bucket as a whole (not per object), so a split, which moves entries between
   * objects without changing them, raises none.
   */
  async subscribe(listener: ChangeListener): Promise<() => void> {
    await this.head.startWatching();
    if (this.listeners.size === 0) this.emitted = this.liveSnapshots();
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.emitted = undefined;
    };
  }

  /** The snapshots of the objects holding entries, as the cache shows them; undefined while it cannot tell. */
  private liveSnapshots(): Map<string, Snapshot> | undefined {
    const cached = this.cachedLayout(true);
    if (!cached) return undefined;
    const live = new Map<string, Snapshot>();
    if (!cached.layout) return live;
    for (const store of this.holders(cached.layout)) {
      const snapshot = store === this.head ? cached.head : store.lastWatched();
      if (snapshot) live.set(store.ref.name, snapshot);
    }
    return live;
  }

  /** An object's cached state changed (a watch event, or this process's write): per-key events for the bucket. */
  private changed(name: string, snapshot: Snapshot): void {
    // The layout depends on which objects exist and what their annotations say, not on their entries.
    const a = snapshot.annotations;
    const signature = snapshot.exists
      ? `${snapshot.uid}|${a[ANNOTATION_FORMAT]}|${a[ANNOTATION_SHARDS]}|${a[ANNOTATION_PART]}|${a[ANNOTATION_HEAD_UID]}|${a[ANNOTATION_SPLIT_FROM]}|${a[ANNOTATION_SEALED]}`
      : '';
    if (this.signatures.get(name) !== signature) {
      this.signatures.set(name, signature);
      this.version++;
    }
    if (!snapshot.exists) this.gone.delete(name);
    if (this.listeners.size === 0) return;
    // Computing events may make stores for objects the layout names, whose caches report at
    // once: those reports are folded into the computation under way.
    if (this.emitting) {
      this.emitAgain = true;
      return;
    }
    this.emitting = true;
    try {
      do {
        this.emitAgain = false;
        this.emitChanges();
      } while (this.emitAgain);
    } finally {
      this.emitting = false;
    }
  }

  /** Emits the per-key differences between the live objects of the last events and of now. */
  private emitChanges(): void {
    const next = this.liveSnapshots();
    if (!next) return; // the view is not complete yet: wait for the rest of the change
    const previous = this.emitted ?? new Map<string, Snapshot>();
    const before = new Map<string, string>();
    const after = new Map<string, string>();
    // Only the objects that changed or changed liveness: their key ranges are the same before and after.
    for (const [object, state] of previous) if (next.get(object) !== state) for (const entry of state.entries.values()) before.set(entry.key, entry.b64);
    for (const [object, state] of next) if (previous.get(object) !== state) for (const entry of state.entries.values()) after.set(entry.key, entry.b64);
    this.emitted = next;
    const events: KVChangeEvent[] = [];
    for (const [key, b64] of after) if (before.get(key) !== b64) events.push({ type: 'put', key });
    for (const key of before.keys()) if (!after.has(key)) events.push({ type: 'delete', key });
    for (const event of events) {
      for (const listener of [...this.listeners]) {
        try {
          listener(event);
        } catch (error) {
          this.s.onError?.(error);
        }
      }
    }
  }

  // ---------------------------------------------------------------- the whole bucket

  /** Deletes every object of this bucket that k8s-kv owns, shards and parts first. Foreign objects are refused and left alone. */
  async teardown(): Promise<void> {
    await Promise.all([...this.splits.values(), ...this.tidying.values()].map((work) => work.catch(() => undefined)));
    const { items: listed } = await this.list(true);
    // Refuses (ForeignObjectError) when the bucket's name is taken by an object k8s-kv does not own.
    await this.head.read();
    // Shards and parts first, the bucket's own object last: until it is gone, the layout stays known.
    const own = (object: KubeObject): number => Number(object.metadata.name === this.s.bucket);
    const { api, kind, namespace, retry } = this.s;
    for (const object of [...listed].sort((a, b) => own(a) - own(b))) {
      checkOwnership(object, this.s);
      const ref = { kind, namespace, name: object.metadata.name };
      // Gone already (404), or replaced since the list (409: the uid precondition failed): not ours to delete.
      await callApi(
        { verb: 'delete', kind, namespace },
        retry,
        () => api.delete(ref, { uid: object.metadata.uid! }),
        (refusal) => refusal.status === 404 || refusal.status === 409,
      );
    }
    this.head.forget();
    for (const store of this.stores.values()) store.forget();
    this.known = undefined;
    this.merged = undefined;
    this.gone.clear();
    this.version++;
  }

  /** Stops every watch, once the splits under way are over. */
  async close(): Promise<void> {
    await Promise.all([...this.splits.values(), ...this.tidying.values()].map((work) => work.catch(() => undefined)));
    this.head.close();
    for (const store of this.stores.values()) store.close();
    this.loop.close();
  }
}
