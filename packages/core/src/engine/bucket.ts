/**
 * A bucket in either layout, as `createKV` uses it. The bucket's own object
 * (its head) says which:
 * - format 1: the head holds every entry; one {@link ObjectStore} does everything;
 * - format 2 (sharded, created with `shards: N`): the head holds no entries but the
 *   shard count; entry `k` lives in object `<bucket>.shard-<i>`, i = shardIndex(k, N),
 *   each shard written by its own ObjectStore (its own patches, group commit and cache).
 *   A write to one shard costs what a write to a bucket of that shard's size costs.
 * Per bucket, this file routes keys to objects and does the work that spans
 * objects: creating a sharded head, listing a bucket's objects, teardown. Every
 * read, write and retry rule of one object is the ObjectStore's.
 */
import type { PreparedEntry } from '../codec/entry.ts';
import { shardIndex, shardName } from '../codec/shard-hash.ts';
import { ConflictError, UnsupportedFormatError, ValueTooLargeError, type KVError } from '../errors.ts';
import { MAX_OBJECT_DATA_BYTES } from '../kube/object-rules.ts';
import type { KubeObject } from '../kube/port.ts';
import type { UpdateDecision } from './compare-and-swap.ts';
import { LayoutChanged } from './layout-changed.ts';
import { isShardedHead, ObjectStore, type ObjectStoreSettings } from './object-store.ts';
import { bucketSelector, checkOwnership, parseRole } from './ownership.ts';
import { callApi, MAX_ROUTES } from './retry-policy.ts';
import { mergeSnapshots, type Snapshot } from './snapshot.ts';
import type { ChangeListener } from './watch-cache.ts';
import { WatchLoop } from './watch-loop.ts';

/** Settings of a {@link Bucket}. */
export interface BucketSettings extends ObjectStoreSettings {
  /** Shards of the bucket when this process creates it (default 1: one object, format 1). */
  shards?: number | undefined;
}

/** How the bucket is laid out, as its head says. */
type Layout = { sharded: false } | { sharded: true; count: number };

/** A bucket of either layout. */
export class Bucket {
  private readonly s: BucketSettings;
  /** The store of the bucket's own object: all entries (format 1), or the head (format 2). */
  readonly head: ObjectStore;
  private shardStores: ObjectStore[] = [];
  /** The layout last seen (uncached processes reuse it until the server contradicts it). */
  private known: Layout | undefined;
  /** The last merged view of a sharded bucket, reused while no shard changed. */
  private merged: Snapshot | undefined;
  /** `kv.watch()` listeners; the objects' events reach them through {@link fanOut}. */
  private readonly listeners = new Set<ChangeListener>();
  private stopHead: (() => void) | undefined;
  /** Subscriptions to the shards' caches, for the shard count they were made for. */
  private shardWatch: { count: number; stops: Array<() => void> } = { count: 0, stops: [] };
  /** Changes of the shard subscriptions, one after the other. */
  private following: Promise<void> = Promise.resolve();

  constructor(settings: BucketSettings) {
    // A bucket without list/watch rights says so once, not once per object (head and every shard).
    let refused = false;
    const onCacheRefused = (error: KVError): void => {
      if (refused) return;
      refused = true;
      settings.onError?.(error);
    };
    this.s = { ...settings, onCacheRefused };
    // When the head changes layout (created, torn down, created again), watchers follow.
    this.head = new ObjectStore({ ...this.s, onSnapshot: () => void this.followLayout().catch((error: unknown) => this.s.onError?.(error)) });
  }

  private get caching(): boolean {
    return this.s.cache !== false;
  }

  /** The layout a head object declares; undefined when the bucket does not exist. */
  private layoutOf(head: Snapshot): Layout | undefined {
    if (!head.exists) return undefined;
    const role = parseRole(head.annotations);
    if (role.role === 'unsupported') throw new UnsupportedFormatError(this.s.kind, this.s.bucket, this.s.namespace, role.format);
    return role.role === 'head' ? { sharded: true, count: role.shards } : { sharded: false };
  }

  /**
   * The bucket's layout: from the head's cache when it runs; else the last one seen,
   * if any (writes go ahead on it: a changed layout makes them fail and route again);
   * else the head as a read (`read`: the cache then starts) or a GET shows it.
   * `fresh`: GET the head. `head` is the head's snapshot when one was at hand.
   */
  private async layout(fresh: boolean, read: boolean): Promise<{ layout: Layout | undefined; head?: Snapshot }> {
    if (!fresh) {
      const cached = this.head.peek();
      if (cached) {
        this.known = this.layoutOf(cached);
        return { layout: this.known, head: cached };
      }
      if (this.known && (!read || !this.caching)) return { layout: this.known };
    }
    const head = fresh || !read || !this.caching ? await this.head.read() : await this.head.view();
    this.known = this.layoutOf(head);
    return { layout: this.known, head };
  }

  /**
   * The shard stores of a layout (made once per shard count). Their caches share one
   * list+watch loop selecting the bucket's objects by label: one LIST and one watch
   * for all shards, not one per shard.
   */
  private shards(count: number): ObjectStore[] {
    if (this.shardStores.length === count) return this.shardStores;
    for (const store of this.shardStores) store.close();
    this.merged = undefined;
    const watchLoop = new WatchLoop({
      api: this.s.api,
      kind: this.s.kind,
      namespace: this.s.namespace,
      selectors: { labelSelector: bucketSelector(this.s.bucket) },
      onError: this.s.onError,
    });
    this.shardStores = Array.from({ length: count }, (_, index) => new ObjectStore({
      ...this.s,
      objectName: shardName(this.s.bucket, index),
      shard: { index, count },
      beforeCreate: () => this.confirm(count),
      watchLoop,
    }));
    return this.shardStores;
  }

  /** Before a shard is created: the head must still declare this shard count (never create shards of a stale layout). */
  private async confirm(count: number): Promise<void> {
    const { layout } = await this.layout(true, false);
    if (!layout?.sharded || layout.count !== count) throw new LayoutChanged(`bucket "${this.s.bucket}" is no longer laid out in ${count} shards`);
  }

  /**
   * Runs `op` on the current layout; when the layout turns out to have changed
   * (LayoutChanged from an object's store), reads the head again and runs it again.
   */
  private async routed<T>(read: boolean, op: (layout: Layout | undefined, head: Snapshot | undefined) => Promise<T>): Promise<T> {
    let last: LayoutChanged | undefined;
    for (let attempt = 0; attempt < MAX_ROUTES; attempt++) {
      const { layout, head } = await this.layout(attempt > 0, read);
      try {
        const result = await op(layout, head);
        // A write that found no bucket created a format-1 one (or found one created meanwhile):
        // later calls go ahead on that layout instead of reading the head again.
        if (!this.known && this.head.owning) this.known = { sharded: false };
        return result;
      } catch (error) {
        if (!(error instanceof LayoutChanged)) throw error;
        last = error;
      }
    }
    throw new ConflictError(`The layout of bucket "${this.s.bucket}" kept changing under the operation (${last?.message}); try again.`, undefined, last);
  }

  /** The entries of a format-1 bucket (the head as just read, or as its store sees it now). */
  private async whole(head: Snapshot | undefined): Promise<Snapshot> {
    const snapshot = head ?? (await this.head.view());
    if (isShardedHead(snapshot)) throw new LayoutChanged(`bucket "${this.s.bucket}" is sharded`);
    return snapshot;
  }

  /** The snapshot that holds `dataKey`: the whole bucket (format 1), or its shard. */
  viewOf(dataKey: string): Promise<Snapshot> {
    return this.routed(true, async (layout, head) => {
      if (!layout?.sharded) return this.whole(head);
      const shard = this.shards(layout.count)[shardIndex(dataKey, layout.count)]!;
      if (this.caching) return shard.view();
      // Without a cache: read the shard, and the head beside it to check the layout still holds.
      const [snapshot, current] = await Promise.all([shard.read(), head ?? this.head.read()]);
      const now = this.layoutOf(current);
      if (!now?.sharded || now.count !== layout.count) throw new LayoutChanged(`bucket "${this.s.bucket}" was laid out anew`);
      return snapshot;
    });
  }

  /**
   * The whole bucket. Sharded: the shards' snapshots merged (`parts` holds each), from
   * the caches, or from one LIST of the bucket's objects by label.
   */
  viewAll(): Promise<Snapshot> {
    return this.routed(true, async (layout, head) => {
      if (!layout?.sharded) return this.whole(head);
      const stores = this.shards(layout.count);
      let parts: Snapshot[];
      if (this.caching) {
        parts = await Promise.all(stores.map((store) => store.view()));
      } else {
        const objects = await this.listObjects();
        const byName = new Map(objects.map((object) => [object.metadata.name, object]));
        const now = this.layoutOf(this.head.adopt(byName.get(this.s.bucket)));
        if (!now?.sharded || now.count !== layout.count) throw new LayoutChanged(`bucket "${this.s.bucket}" was laid out anew`);
        parts = stores.map((store) => store.adopt(byName.get(store.ref.name)));
      }
      const previous = this.merged;
      if (previous?.parts?.length === parts.length && previous.parts.every((part, i) => part === parts[i])) return previous;
      this.merged = mergeSnapshots(parts);
      return this.merged;
    });
  }

  /**
   * Writes entries. Format 1: one atomic patch (with group commit). Sharded: one
   * atomic patch per shard involved, in parallel; each shard's part lands or not on
   * its own, and the first failure is reported.
   */
  async put(entries: PreparedEntry[]): Promise<void> {
    // Before any API call: a value no object can hold.
    for (const entry of entries) {
      if (entry.size > MAX_OBJECT_DATA_BYTES) throw new ValueTooLargeError(entry.key, entry.size, MAX_OBJECT_DATA_BYTES);
    }
    return this.routed(false, async (layout) => {
      const shards = this.s.shards ?? 1;
      if (!layout && shards > 1) {
        // This process creates the bucket: its head first. Created, or someone else was first: route again.
        await this.head.createObject({ role: 'head', shards }, undefined);
        throw new LayoutChanged(`bucket "${this.s.bucket}" was just created`);
      }
      if (!layout?.sharded) return this.head.put(entries);
      const stores = this.shards(layout.count);
      const groups = this.group(entries, (e) => e.dataKey, layout.count);
      await settleAll([...groups].map(([index, group]) => stores[index]!.put(group)));
    });
  }

  /** Removes keys; per data key, whether a live entry was there. `known`: the view the caller planned on. */
  remove(dataKeys: string[], known?: Snapshot): Promise<Map<string, boolean>> {
    return this.routed(false, async (layout) => {
      if (!layout?.sharded) return this.head.remove(dataKeys, known?.parts ? undefined : known);
      const parts = known?.parts?.length === layout.count ? known.parts : undefined;
      // An entry is removed from the shard the caller's view found it in (a hand-made entry
      // may sit in another shard than its hash says), else from the shard its hash names.
      const holder = (dataKey: string): number | undefined => parts?.findIndex((p) => p.byDataKey.has(dataKey) || p.corruptByDataKey.has(dataKey));
      const stores = this.shards(layout.count);
      const groups = this.group(dataKeys, (k) => k, layout.count, holder);
      const results = await settleAll([...groups].map(([index, group]) => stores[index]!.remove(group, parts?.[index])));
      return new Map(results.flatMap((result) => [...result]));
    });
  }

  /** Atomic read-modify-write of one key, on the object that holds it. */
  update(key: string, dataKey: string, decide: (snapshot: Snapshot) => Promise<UpdateDecision>): Promise<Snapshot> {
    return this.routed(false, async (layout) => {
      if (!layout?.sharded) return this.head.update(key, dataKey, decide);
      return this.shards(layout.count)[shardIndex(dataKey, layout.count)]!.update(key, dataKey, decide);
    });
  }

  /**
   * Subscribes to changes of any key by any writer. Starts the head's cache, and
   * the shards' caches while the head says the bucket is sharded (also when that
   * happens later: the bucket created or created again by another process).
   */
  async subscribe(listener: ChangeListener): Promise<() => void> {
    this.listeners.add(listener);
    try {
      this.stopHead ??= await this.head.subscribe(this.fanOut);
      await this.followLayout();
    } catch (error) {
      this.unsubscribe(listener);
      throw error;
    }
    return () => this.unsubscribe(listener);
  }

  private unsubscribe(listener: ChangeListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size > 0) return;
    this.stopHead?.();
    this.stopHead = undefined;
    this.resetShardWatch(0);
  }

  /** Ends the shard subscriptions; new ones, if any, are for `count` shards. */
  private resetShardWatch(count: number): void {
    for (const stop of this.shardWatch.stops) stop();
    this.shardWatch = { count, stops: [] };
  }

  /** Passes an object's event to every listener (one failing listener does not keep it from the others). */
  private readonly fanOut: ChangeListener = (event) => {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.s.onError?.(error);
      }
    }
  };

  /** Subscribes to the shards the head's cache declares now (none for a format-1 bucket). */
  private followLayout(): Promise<void> {
    const step = this.following.then(async () => {
      if (this.listeners.size === 0) return;
      const head = this.head.peek();
      const layout = head && this.layoutOf(head);
      const count = layout?.sharded ? layout.count : 0;
      if (count === this.shardWatch.count) return;
      this.resetShardWatch(count);
      if (count === 0) return;
      const settled = await Promise.allSettled(this.shards(count).map((store) => store.subscribe(this.fanOut)));
      const stops = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = settled.find((r) => r.status === 'rejected');
      if (!failed && this.shardWatch.count === count && this.listeners.size > 0) {
        this.shardWatch.stops = stops;
        return;
      }
      // A shard failed to subscribe, or the layout or the listeners changed meanwhile: no shard stays subscribed.
      for (const stop of stops) stop();
      if (failed) throw failed.reason;
    });
    // A failed step (no rights to watch, say) leaves no shard subscribed; the next head change tries again.
    this.following = step.catch(() => {
      this.shardWatch = { count: 0, stops: [] };
    });
    return step;
  }

  /** Every object of this bucket (its own, and a sharded bucket's shards), as one LIST by label returns them. */
  private async listObjects(): Promise<KubeObject[]> {
    const { api, kind, namespace, bucket, retry } = this.s;
    const list = await callApi({ verb: 'list', kind, namespace }, retry, () => api.list(kind, namespace, { labelSelector: bucketSelector(bucket) }));
    return list.items;
  }

  /** Deletes every object of this bucket that k8s-kv owns, shards first. Foreign objects are refused and left alone. */
  async teardown(): Promise<void> {
    const listed = await this.listObjects();
    // Refuses (ForeignObjectError) when the bucket's name is taken by an object k8s-kv does not own.
    await this.head.read();
    // Shards first, the bucket's own object last: until it is gone, the layout stays known.
    const own = (object: KubeObject): number => Number(object.metadata.name === this.s.bucket);
    const { api, kind, namespace, retry } = this.s;
    for (const object of [...listed].sort((a, b) => own(a) - own(b))) {
      checkOwnership(object, this.s);
      const ref = { kind, namespace, name: object.metadata.name };
      // Gone already (404), or replaced since the list (409: the uid precondition failed): not ours to delete.
      await callApi({ verb: 'delete', kind, namespace }, retry, () => api.delete(ref, { uid: object.metadata.uid! }), (refusal) => refusal.status === 404 || refusal.status === 409);
    }
    this.head.forget();
    for (const store of this.shardStores) store.forget();
    this.known = undefined;
    this.merged = undefined;
  }

  /** Stops every watch. */
  close(): void {
    this.head.close();
    for (const store of this.shardStores) store.close();
  }

  /** Items grouped by the shard that holds them (`holder` may say where one was found). */
  private group<T>(items: T[], dataKeyOf: (item: T) => string, count: number, holder?: (dataKey: string) => number | undefined): Map<number, T[]> {
    const groups = new Map<number, T[]>();
    for (const item of items) {
      const dataKey = dataKeyOf(item);
      const found = holder?.(dataKey) ?? -1;
      const index = found >= 0 ? found : shardIndex(dataKey, count);
      const group = groups.get(index);
      if (group) group.push(item);
      else groups.set(index, [item]);
    }
    return groups;
  }
}

/** Waits for every promise; rejects with the first failure once all have settled (none left running unobserved). */
async function settleAll<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
